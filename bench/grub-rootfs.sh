#!/bin/bash
# Make a copy of a riscv64 Debian rootfs tarball that also contains Debian's
# grub-mkconfig (grub-common, grub2-common), the way the classic pipeline
# gets it: `apt-get install` inside a chroot through qemu-user binfmt.
#
# Usage: bench/grub-rootfs.sh IN.tar OUT.tar     (as root; needs network to
# the Debian mirror and binfmt riscv64 registered with the F flag)
#
# Writes OUT.tar.tmp.$$ and renames it, so a concurrent reader never sees a
# half-written tarball; does nothing when OUT.tar already exists.
set -euo pipefail

in=${1:?usage: grub-rootfs.sh IN.tar OUT.tar}
out=${2:?usage: grub-rootfs.sh IN.tar OUT.tar}
[ "$(id -u)" -eq 0 ] || { echo "grub-rootfs.sh: needs root (unpacks with owners, chroot)" >&2; exit 1; }
if [ -e "$out" ]; then
    echo "grub-rootfs.sh: $out exists; keeping it"
    exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/var/tmp}/grub-rootfs.XXXXXX")
cleanup() {
    mountpoint -q "$dir/proc" && umount "$dir/proc"
    rm -rf "$dir" "$out.tmp.$$"
}
trap cleanup EXIT

tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$in" -C "$dir"
# Keep the rootfs's own resolv.conf; borrow the host's for the download.
[ -e "$dir/etc/resolv.conf" ] || [ -L "$dir/etc/resolv.conf" ] && mv "$dir/etc/resolv.conf" "$dir/etc/resolv.conf.bench-orig"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
mount -t proc proc "$dir/proc"
chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends grub-common grub2-common
chroot "$dir" apt-get clean
find "$dir/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
umount "$dir/proc"
rm -f "$dir/etc/resolv.conf"
[ -e "$dir/etc/resolv.conf.bench-orig" ] || [ -L "$dir/etc/resolv.conf.bench-orig" ] && mv "$dir/etc/resolv.conf.bench-orig" "$dir/etc/resolv.conf"
chroot "$dir" test -x /usr/sbin/grub-mkconfig
tar --numeric-owner --xattrs --xattrs-include='*' --acls -cpf "$out.tmp.$$" -C "$dir" .
mv "$out.tmp.$$" "$out"
echo "grub-rootfs.sh: wrote $out ($(du -m "$out" | cut -f1) MiB)"
