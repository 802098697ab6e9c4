#!/bin/bash
# Release formats from one assembly pass: wall time, peak RSS and bytes
# written for qcow2 alone, qcow2 + raw.zst, and every format at once
# (qcow2,raw,raw.zst,raw.xz,raw.gz,simg + the bmap and SHA256SUMS), on a
# real rootfs, cold page cache, a final sync inside the timing, N
# interleaved runs (default 3), median.
#
#   sudo bench/formats.sh ROOTFS.tar [N]
#
# Bytes written: what mkimg and its children dirtied on block devices
# (GNU time's %O, the kernel's per-task write_bytes in 512-byte units:
# other processes of the machine do not count, and tmpfs is not a block
# device), compared with the sum of the output files' sizes (allocated
# blocks for the sparse raw: `du`), the goal being <= 1.2x; the work
# directory is mkimg's own choice (tmpfs when the machine has the RAM, as
# on these 24 GiB machines). Peak RSS: GNU time's maximum
# resident set size of mkimg (its children, mke2fs, counted separately by
# time(1) as the largest single process). Needs root (drop_caches).
set -euo pipefail
rootfs=${1:?usage: bench/formats.sh ROOTFS.tar [N]}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
mkimg=${MKIMG:-$here/target/release/mkimg}
[ -x "$mkimg" ] || (cd "$here" && cargo build --release --locked)
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" bench-formats.XXXXXX)
trap 'rm -rf "$work"' EXIT

run() { # name, formats
    local name=$1 formats=$2
    rm -rf "$work/out"
    sync; echo 3 > /proc/sys/vm/drop_caches
    local t0 t1 rss written outputs
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M %O' -o "$work/rss" \
        "$mkimg" build --board qemu-riscv64 --rootfs "$rootfs" --format "$formats" \
        -o "$work/out" > /dev/null 2>&1
    sync
    t1=$(date +%s.%N)
    read -r rss written < <(tail -1 "$work/rss")
    outputs=$(du -B1 -s "$work/out" | cut -f1)
    echo "$name $(echo "$t1 - $t0" | bc) $((written * 512)) $rss $outputs" >> "$work/results"
}

declare -A formats=(
    [qcow2]="qcow2"
    [qcow2+raw.zst]="qcow2,raw.zst"
    [all]="qcow2,raw,raw.zst,raw.xz,raw.gz,simg"
)
order=(qcow2 qcow2+raw.zst all)
for _ in $(seq "$runs"); do
    for name in "${order[@]}"; do
        run "$name" "${formats[$name]}"
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$work/results" | median; }
echo "rootfs: $rootfs ($(($(stat -c %s "$rootfs") >> 20)) MiB); $runs runs each, medians"
printf '%-16s %9s %12s %12s %10s %12s\n' formats "wall s" "MiB written" "MiB outputs" "written/out" "peak RSS MiB"
for name in "${order[@]}"; do
    t=$(col "$name" 2); b=$(col "$name" 3); r=$(col "$name" 4); o=$(col "$name" 5)
    printf '%-16s %9.2f %12.0f %12.0f %10.2f %12.0f\n' "$name" "$t" \
        "$(echo "$b / 1048576" | bc -l)" "$(echo "$o / 1048576" | bc -l)" \
        "$(echo "$b / $o" | bc -l)" "$(echo "$r / 1024" | bc -l)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
