#!/bin/bash
# The classic pipeline mkimg replaces, for the qemu-riscv64 board, as board
# porters run it today inside a privileged container:
#
#   unpack the rootfs tarball as root (owners, modes, xattrs, ACLs)
#   write /etc/fstab, /etc/hostname, /etc/default/grub's kernel command line
#   move /boot/efi out, add the EFI binary (EFI/BOOT/BOOTRISCV64.EFI)
#   genimage: ESP vfat 1 GiB at 2 MiB (mkdosfs + mcopy), ext4 root (mke2fs -d),
#             GPT disk image of 10 GiB
#   loop-mount the root partition (partitioned loop device), bind /dev /proc /sys,
#   chroot grub-mkconfig (riscv64 binaries through qemu-user binfmt)
#   copy grub.cfg into the ESP with mtools (mcopy -i disk@@offset)
#   qemu-img convert -O qcow2
#
# Usage: bench/classic.sh ROOTFS.tar WORKDIR OUT.qcow2
#   ROOTFS must contain grub-mkconfig (Debian's grub-common); see grub-rootfs.sh.
#   Needs root. WORKDIR must not exist or be empty; it is left for the caller
#   to inspect and delete. Each step's wall time (s) and peak RSS (KiB, GNU
#   time) go to WORKDIR/steps.tsv.
#
# The layout is the one `mkimg plan --board qemu-riscv64` prints: same
# offsets, sizes, labels and filesystem UUIDs, so the two images compare.
set -euo pipefail

rootfs=${1:?usage: classic.sh ROOTFS.tar WORKDIR OUT.qcow2}
work=${2:?usage: classic.sh ROOTFS.tar WORKDIR OUT.qcow2}
out=${3:?usage: classic.sh ROOTFS.tar WORKDIR OUT.qcow2}
[ "$(id -u)" -eq 0 ] || { echo "classic.sh: needs root" >&2; exit 1; }

esp_offset=2097152          # 2 MiB
root_offset=1075838976      # 2 MiB + 1 GiB
root_size=9660530688        # 9213 MiB: up to the backup GPT, 1 MiB aligned
root_uuid=78662d6f-706f-6570-6f72-742d726f6f74
esp_serial=00455350         # vfat volume id 0045-5350
efi_binary=/usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi

mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$work/root
esp=$work/esp
mnt=$work/mnt
steps=$work/steps.tsv
: >"$steps"

# step NAME CMD...: run CMD under GNU time, log "NAME<TAB>wall<TAB>maxrss_kib".
# A shell function runs in this shell: wall time only, RSS "-".
step() {
    local name=$1 wall rss t0
    shift
    if [ "$(type -t "$1")" = function ]; then
        t0=$(date +%s.%N)
        "$@"
        wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        rss=-
    else
        /usr/bin/time -f "%e %M" -o "$work/.step-time" "$@"
        read -r wall rss <"$work/.step-time"
    fi
    printf '%s\t%s\t%s\n' "$name" "$wall" "$rss" >>"$steps"
}

mounts=()
loops=()
links=()
cleanup() {
    local i
    for ((i = ${#links[@]} - 1; i >= 0; i--)); do
        if [ -d "${links[$i]}" ] && [ ! -L "${links[$i]}" ]; then
            rmdir "${links[$i]}" 2>/dev/null || true
        else
            rm -f "${links[$i]}"
        fi
    done
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
    done
    for i in "${loops[@]}"; do
        partx -d "$i" 2>/dev/null || true
        losetup -d "$i" 2>/dev/null || true
    done
    mounts=()
    loops=()
    links=()
}
trap cleanup EXIT

# 1. Unpack as root.
mkdir -p "$root"
step unpack tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$rootfs" -C "$root"

# 2. Configure: fstab, hostname, grub's kernel command line.
configure() {
    cat >"$root/etc/fstab" <<FSTAB
UUID=$root_uuid / ext4 defaults 0 1
UUID=${esp_serial:0:4}-${esp_serial:4:4} /boot/efi vfat umask=0077 0 2
FSTAB
    echo mkimg-riscv64 >"$root/etc/hostname"
    if [ -f "$root/etc/default/grub" ]; then
        sed -i 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0"/' "$root/etc/default/grub"
    else
        mkdir -p "$root/etc/default"
        # shellcheck disable=SC2016  # GRUB_DISTRIBUTOR is expanded by grub-mkconfig
        printf '%s\n' 'GRUB_DEFAULT=0' 'GRUB_TIMEOUT=5' \
            'GRUB_DISTRIBUTOR=`( . /etc/os-release; echo ${NAME:-Debian} ) 2>/dev/null || echo Debian`' \
            'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' 'GRUB_CMDLINE_LINUX="console=ttyS0"' \
            >"$root/etc/default/grub"
    fi
    # Move /boot/efi out: it becomes the ESP's content.
    mkdir -p "$esp" "$root/boot/efi"
    find "$root/boot/efi" -mindepth 1 -maxdepth 1 -exec mv -t "$esp" {} +
    mkdir -p "$esp/EFI/BOOT" "$esp/EFI/debian"
    cp "$root$efi_binary" "$esp/EFI/BOOT/BOOTRISCV64.EFI"
}
step configure configure

# 3. genimage: ESP, root ext4, GPT disk.
cat >"$work/genimage.cfg" <<CFG
image esp.vfat {
    vfat {
        label = "ESP"
        extraargs = "-i $esp_serial"
    }
    size = 1G
    srcpath = "$esp"
}

image root.ext4 {
    ext4 {
        use-mke2fs = true
        label = "rootfs"
        extraargs = "-U $root_uuid"
    }
    size = $root_size
    srcpath = "$root"
}

image disk.img {
    hdimage {
        partition-table-type = "gpt"
    }
    size = 10G
    partition esp {
        image = "esp.vfat"
        offset = $esp_offset
        partition-type-uuid = "U"
    }
    partition rootfs {
        image = "root.ext4"
        offset = $root_offset
        partition-type-uuid = "L"
    }
}
CFG
mkdir -p "$work/images" "$work/genimage-tmp" "$work/genimage-root"
step genimage genimage --config "$work/genimage.cfg" --rootpath "$work/genimage-root" \
    --tmppath "$work/genimage-tmp" --inputpath "$work/images" --outputpath "$work/images"
disk=$work/images/disk.img

# 4. Loop-mount the root partition; chroot grub-mkconfig.
# Not `mount -o loop,offset=`: grub-mkconfig_lib sees a whole /dev/loopN,
# takes it for a loopback *file* and probes the backing file's path, which
# does not exist in the chroot ("failed to get canonical path"). So: a
# partitioned loop device; partx -a adds the partitions where the kernel
# did not scan them (no udev, or no GPT parser in a container's kernel).
loop=$(losetup --find --show --partscan "$disk")
loops+=("$loop")
[ -b "${loop}p2" ] || partx -a "$loop"
mkdir -p "$mnt"
mount "${loop}p2" "$mnt"
mounts+=("$mnt")
for fs in dev proc sys; do
    mount --bind "/$fs" "$mnt/$fs"
    mounts+=("$mnt/$fs")
done
# grub-mkconfig writes root=UUID=… only when /dev/disk/by-uuid/UUID exists;
# without udev (a container) it would write root=/dev/loopNp2, which does
# not boot. Make the link udev would have made, for the chroot's /dev.
byuuid=/dev/disk/by-uuid/$root_uuid
if [ ! -e "$byuuid" ]; then
    [ -d /dev/disk ] || links+=(/dev/disk)
    [ -d /dev/disk/by-uuid ] || links+=(/dev/disk/by-uuid)
    mkdir -p /dev/disk/by-uuid
    ln -s "${loop}p2" "$byuuid"
    links+=("$byuuid")
fi
mkdir -p "$mnt/boot/grub"
step grub-mkconfig chroot "$mnt" grub-mkconfig -o /boot/grub/grub.cfg
cp "$mnt/boot/grub/grub.cfg" "$work/grub.cfg"
cleanup

# 5. grub.cfg into the ESP, with mtools, through the image offset.
step mcopy mcopy -o -i "$disk@@$esp_offset" "$work/grub.cfg" ::EFI/debian/grub.cfg

# 6. qcow2.
step qemu-img qemu-img convert -O qcow2 "$disk" "$out"
