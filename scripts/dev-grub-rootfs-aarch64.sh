#!/bin/sh
# Dev shortcut (not used by CI): the cached Debian trixie arm64 rootfs plus
# grub-efi-arm64 (grub-mkconfig), installed in a binfmt chroot in ~1 minute
# instead of a full bootstrap. tests/mkconfig.rs finds the result at
# /var/cache/mkimg-dev/rootfs-aarch64-grub-efi.tar, else bootstraps with
# `mkimg rootfs --board qemu-aarch64 --packages grub-efi-arm64`.
set -eux
SRC=${1:?usage: dev-grub-rootfs-aarch64.sh ROOTFS-ARM64.tar}
OUT=/var/cache/mkimg-dev/rootfs-aarch64-grub-efi.tar
D=/var/tmp/mkconfig-prep-arm/root
rm -rf "$D"; mkdir -p "$D"
tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$SRC" -C "$D"
cp /etc/resolv.conf "$D/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$D/usr/sbin/policy-rc.d"; chmod 755 "$D/usr/sbin/policy-rc.d"
unshare --mount --propagation private sh -eux -c "
  mount -t proc proc '$D/proc'
  chroot '$D' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive apt-get update -q
  chroot '$D' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends grub-efi-arm64
  chroot '$D' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get clean
"
rm -f "$D/usr/sbin/policy-rc.d" "$D/etc/resolv.conf"
rm -rf "$D"/var/lib/apt/lists/*
(cd "$D" && tar --numeric-owner --xattrs --xattrs-include='*' --acls --sort=name -cpf "$OUT.partial" .)
mv "$OUT.partial" "$OUT"
rm -rf /var/tmp/mkconfig-prep-arm
echo done
