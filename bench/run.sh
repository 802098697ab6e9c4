#!/bin/bash
# mkimg against the classic pipeline, on a real rootfs, in one run.
#
# Usage: sudo bench/run.sh [-n RUNS] [--rootfs TAR] [--grub-rootfs TAR]
#                          [--workdir DIR] [--mkimg PATH] [--no-big]
#
#   -n RUNS          runs of each pipeline, interleaved (default 3)
#   --rootfs TAR     riscv64 Debian trixie rootfs tarball (default:
#                    $MKIMG_TEST_ROOTFS_RISCV64, else
#                    /var/cache/mkimg-dev/rootfs-riscv64.tar, else
#                    `mkimg rootfs --board qemu-riscv64`, cached in the bench cache)
#   --grub-rootfs TAR  the same rootfs plus grub-mkconfig (grub-common): what
#                    every pipeline is timed on. Default: rootfs-riscv64-grub.tar
#                    beside --rootfs, made by bench/grub-rootfs.sh when absent.
#   --workdir DIR    where the pipelines write (default /var/tmp/mkimg-bench);
#                    its block device's write counter is the "bytes written"
#   --mkimg PATH     the mkimg binary (default target/release/mkimg, built
#                    with `cargo build --release` when absent)
#   --no-big         skip the 4x rootfs runs
#
# Pipelines, each run with a cold page cache (sync; drop_caches) and a final
# `sync` inside the timing:
#   classic          bench/classic.sh: tar -x as root, fstab/hostname, genimage
#                    (vfat ESP + mke2fs ext4 + GPT), loop mount, chroot
#                    grub-mkconfig through binfmt, mcopy grub.cfg, qemu-img convert
#   mkimg-template   mkimg build --board qemu-riscv64 --rootfs TAR
#   mkimg-mkconfig   the same with --grub mkconfig ("n/a" while mkimg rejects it
#                    as "not available yet")
# then mkimg again on a 4x rootfs (bench/replicate.py: every entry plus three
# copies under /replica1..3), cached in the bench cache.
#
# Measures per run: wall time; bytes written to the work directory's block
# device (/sys/class/block/DEV/stat field 7 x 512, sampled after the pre-run
# sync and after the final sync: other writers on the machine add to it);
# write_bytes accounted to the pipeline's own processes (GNU time "File
# system outputs" x 512); peak RSS (GNU time "Maximum resident set size" of
# the whole process tree: the largest single process, children included);
# output qcow2 size; the 1-minute load average before the run.
# Results: WORKDIR/results.tsv, WORKDIR/steps.tsv; table: bench/report.py.
# Needs root (classic pipeline; drop_caches), binfmt riscv64 (F flag).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=3
rootfs=
grub_rootfs=
workdir=/var/tmp/mkimg-bench
mkimg=
big=1
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=$2; shift 2 ;;
        --rootfs) rootfs=$2; shift 2 ;;
        --grub-rootfs) grub_rootfs=$2; shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        --mkimg) mkimg=$2; shift 2 ;;
        --no-big) big=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (classic pipeline, drop_caches)" >&2; exit 1; }
for tool in genimage mcopy qemu-img mke2fs losetup partx python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool missing; run scripts/setup-debian.sh" >&2; exit 1; }
done
grep -qs '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-riscv64 \
    || { echo "run.sh: binfmt riscv64 (F) not registered; run scripts/setup-debian.sh" >&2; exit 1; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/mkimg/bench
mkdir -p "$cache" "$workdir"
workdir=$(cd "$workdir" && pwd)
log() { echo "bench: $*" >&2; }

# mkimg binary.
if [ -z "$mkimg" ]; then
    mkimg=${CARGO_TARGET_DIR:-$repo/target}/release/mkimg
    if [ ! -x "$mkimg" ]; then
        log "building mkimg (cargo build --release)"
        (cd "$repo" && cargo build --release --quiet)
    fi
fi
mkimg=$(realpath "$mkimg")

# Inputs: rootfs, rootfs with grub-mkconfig, 4x rootfs.
if [ -z "$rootfs" ]; then
    rootfs=${MKIMG_TEST_ROOTFS_RISCV64:-/var/cache/mkimg-dev/rootfs-riscv64.tar}
    if [ ! -f "$rootfs" ]; then
        rootfs=$cache/rootfs-riscv64.tar
        [ -f "$rootfs" ] || { log "bootstrapping $rootfs"; "$mkimg" rootfs --board qemu-riscv64 -o "$rootfs"; }
    fi
fi
[ -n "$grub_rootfs" ] || grub_rootfs=$(dirname "$rootfs")/rootfs-riscv64-grub.tar
if [ ! -f "$grub_rootfs" ]; then
    log "making $grub_rootfs (apt-get install grub-common grub2-common in a chroot)"
    "$here/grub-rootfs.sh" "$rootfs" "$grub_rootfs"
fi
big_rootfs=$cache/$(basename "$grub_rootfs" .tar)-x4.tar
if [ "$big" = 1 ] && { [ ! -f "$big_rootfs" ] || [ "$grub_rootfs" -nt "$big_rootfs" ]; }; then
    log "making $big_rootfs (4x, bench/replicate.py)"
    python3 "$here/replicate.py" "$grub_rootfs" "$big_rootfs" 4
fi

# The block device under the work directory.
source=$(findmnt -no SOURCE --target "$workdir")
dev=$(basename "$(realpath "$source")")
stat_file=/sys/class/block/$dev/stat
[ -r "$stat_file" ] || { echo "run.sh: no $stat_file for $source (workdir on $source)" >&2; exit 1; }
sectors_written() { awk '{ print $7 }' "$stat_file"; }

results=$workdir/results.tsv
steps=$workdir/steps.tsv
printf 'set\tpipeline\trun\trc\twall_s\tdev_bytes\tproc_bytes\tmaxrss_kib\tout_bytes\tload1\tcheck\n' >"$results"
printf 'set\tpipeline\trun\tstep\tseconds\tmaxrss_kib\n' >"$steps"
{
    echo "machine: $(nproc) cpus, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
    echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "disk: $source ($dev, rotational=$(cat "/sys/class/block/$dev/queue/rotational" 2>/dev/null || echo '?')), workdir $workdir"
    echo "mkimg: $mkimg ($("$mkimg" --version)), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "genimage $(dpkg-query -W -f='${Version}' genimage 2>/dev/null), e2fsprogs $(dpkg-query -W -f='${Version}' e2fsprogs 2>/dev/null), qemu-img $(qemu-img --version | awk 'NR == 1 { print $3 }')"
    echo "rootfs: $grub_rootfs ($(($(stat -c %s "$grub_rootfs") >> 20)) MiB, $(tar -tf "$grub_rootfs" | wc -l) entries)"
    [ "$big" = 1 ] && echo "rootfs 4x: $big_rootfs ($(($(stat -c %s "$big_rootfs") >> 20)) MiB)"
    echo "runs: $runs, interleaved; started $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$workdir/machine.txt"
cat "$workdir/machine.txt" >&2

mkconfig_state=unknown   # unknown | ok | na

# measure SET PIPELINE RUN ROOTFS: one cold-cache run; appends to results/steps.
measure() {
    local set=$1 name=$2 run=$3 input=$4
    local dir=$workdir/$set-$name out rc t0 t1 w0 w1 load check
    rm -rf "$dir"
    mkdir -p "$dir/tmp"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    load=$(cut -d' ' -f1 /proc/loadavg)
    w0=$(sectors_written)
    t0=$(date +%s.%N)
    set +e
    case $name in
        classic)
            out=$dir/classic.qcow2
            /usr/bin/time -v -o "$dir/time.txt" "$here/classic.sh" "$input" "$dir/work" "$out" >"$dir/log" 2>&1
            ;;
        mkimg-template)
            out=$dir/out/qemu-riscv64.qcow2
            TMPDIR=$dir/tmp /usr/bin/time -v -o "$dir/time.txt" \
                "$mkimg" build --board qemu-riscv64 --rootfs "$input" -o "$dir/out" >"$dir/log" 2>&1
            ;;
        mkimg-mkconfig)
            out=$dir/out/qemu-riscv64.qcow2
            TMPDIR=$dir/tmp /usr/bin/time -v -o "$dir/time.txt" \
                "$mkimg" build --board qemu-riscv64 --rootfs "$input" --grub mkconfig -o "$dir/out" >"$dir/log" 2>&1
            ;;
    esac
    rc=$?
    sync
    t1=$(date +%s.%N)
    w1=$(sectors_written)
    set -e
    if [ "$name" = mkimg-mkconfig ] && [ "$rc" -ne 0 ] && grep -q "not available yet" "$dir/log"; then
        mkconfig_state=na
        log "$set $name: not implemented in this mkimg ($(grep -o 'not available yet' "$dir/log" | head -1)); column n/a"
        rm -rf "$dir"
        return 0
    fi
    [ "$name" = mkimg-mkconfig ] && [ "$rc" -eq 0 ] && mkconfig_state=ok
    check=failed
    if [ "$rc" -eq 0 ] && [ -f "$out" ]; then
        if qemu-img check -q "$out" >/dev/null 2>&1; then check=ok; else check=qemu-img-check-failed; fi
    fi
    local rss proc_blocks size
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$dir/time.txt" 2>/dev/null)
    proc_blocks=$(awk -F': ' '/File system outputs/ { print $2 }' "$dir/time.txt" 2>/dev/null)
    size=$(stat -c %s "$out" 2>/dev/null || echo 0)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$name" "$run" "$rc" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
        $(((w1 - w0) * 512)) $((${proc_blocks:-0} * 512)) "${rss:-0}" "$size" "$load" "$check" >>"$results"
    # Per-step times: classic.sh's steps.tsv; mkimg's "[  12.3s] what" lines
    # (elapsed at the end of each step, turned into durations).
    if [ "$name" = classic ]; then
        awk -v s="$set" -v n="$name" -v r="$run" -F'\t' '{ print s "\t" n "\t" r "\t" $1 "\t" $2 "\t" $3 }' \
            "$dir/work/steps.tsv" >>"$steps" 2>/dev/null || true
    else
        sed -n 's/^mkimg: \[ *\([0-9.]*\)s\] \(.*\)$/\1\t\2/p' "$dir/log" | awk -F'\t' \
            -v s="$set" -v n="$name" -v r="$run" '{
                what = $2; sub(/:.*/, "", what); sub(/ \/.*/, "", what); sub(/ \(.*/, "", what)
                printf "%s\t%s\t%s\t%s\t%.2f\t-\n", s, n, r, what, $1 - prev; prev = $1 }' >>"$steps"
    fi
    log "$set $name run $run: rc=$rc $(tail -1 "$results" | cut -f5)s check=$check"
    [ "$rc" -eq 0 ] || { log "log of the failed run:"; tail -20 "$dir/log" >&2; }
    # Keep only the logs: the images go before the next run (outside the timing).
    rm -rf "$dir/work" "$dir/out" "$dir/tmp" "$out"
    sync
}

pipelines() {
    echo classic mkimg-template
    [ "$mkconfig_state" = na ] || echo mkimg-mkconfig
}

for ((i = 1; i <= runs; i++)); do
    for name in $(pipelines); do
        measure 1x "$name" "$i" "$grub_rootfs"
    done
done
if [ "$big" = 1 ]; then
    for ((i = 1; i <= runs; i++)); do
        for name in $(pipelines); do
            [ "$name" = classic ] && continue
            measure 4x "$name" "$i" "$big_rootfs"
        done
    done
fi
echo "finished $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$workdir/machine.txt"

python3 "$here/report.py" "$workdir" --mkconfig "$mkconfig_state" | tee "$workdir/report.md"
