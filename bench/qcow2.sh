#!/bin/bash
# qcow2 written directly by mkimg vs raw + `qemu-img convert -O qcow2`:
# wall time and bytes written to the block device, cold page cache, a final
# sync inside the timing, N interleaved runs (default 3), median.
#
#   sudo bench/qcow2.sh ROOTFS.tar [N]
#
# Needs root (drop_caches). Output and work dirs are on the same device as
# the current directory; bytes written are read from /sys/block/<dev>/stat.
set -euo pipefail
rootfs=${1:?usage: bench/qcow2.sh ROOTFS.tar [N]}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
mkimg=${MKIMG:-$here/target/release/mkimg}
[ -x "$mkimg" ] || (cd "$here" && cargo build --release --locked)
work=$(mktemp -d -p "$PWD" bench-qcow2.XXXXXX)
trap 'rm -rf "$work"' EXIT

src=$(findmnt -no SOURCE --target "$work")
dev=$(basename "$(readlink -f "$src")")
sys=/sys/class/block/$dev
[ -f "$sys/stat" ] || { echo "no block stats for $src" >&2; exit 1; }
written() { awk '{printf "%.0f\n", $7 * 512}' "$sys/stat"; }

run() { # name, command...
    local name=$1; shift
    rm -rf "$work/out"
    sync; echo 3 > /proc/sys/vm/drop_caches
    local b0 t0 t1 b1
    b0=$(written); t0=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    sync
    t1=$(date +%s.%N); b1=$(written)
    echo "$name $(echo "$t1 - $t0" | bc) $((b1 - b0))" >> "$work/results"
}

direct() {
    "$mkimg" build --board qemu-riscv64 --rootfs "$rootfs" --format qcow2 -o "$work/out"
}
convert() {
    "$mkimg" build --board qemu-riscv64 --rootfs "$rootfs" --format raw -o "$work/out"
    qemu-img convert -O qcow2 "$work/out/qemu-riscv64.raw" "$work/out/converted.qcow2"
}

for i in $(seq "$runs"); do
    run direct direct
    run convert convert
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-28s %10s %14s\n' "pipeline ($runs runs)" "median s" "MiB written"
for name in direct convert; do
    t=$(awk -v n=$name '$1==n {print $2}' "$work/results" | median)
    b=$(awk -v n=$name '$1==n {print $3}' "$work/results" | median)
    label=$([ $name = direct ] && echo "qcow2 directly" || echo "raw + qemu-img convert")
    printf '%-28s %10.2f %14.0f\n' "$label" "$t" "$(echo "$b / 1048576" | bc -l)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
