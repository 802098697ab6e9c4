#!/bin/bash
# Bootstrap (or find in the cache) every rootfs the slow test suites use,
# riscv64 and aarch64 side by side: each bootstrap is mostly one emulated
# dpkg at a time, so two in parallel use both cores and roughly halve the
# wall time of a fresh machine's first run. Cached ones return at once.
# Called by scripts/test.sh after the release build. Prints one
# MKIMG_TEST_ROOTFS_<ARCH>=<tarball> line per architecture: the variables
# the slow suites read (without them some skip, others bootstrap alone).
# One rootfs per architecture serves every suite: the default recipes of
# qemu-riscv64 and qemu-aarch64 carry grub-efi, which --grub mkconfig needs.
set -euo pipefail
cd "$(dirname "$0")/.."
mkimg=target/release/mkimg
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

chain() { # BOARD VARIABLE
    local tar
    tar=$("$mkimg" rootfs --board "$1" 2>"$log/$1.err") &&
        printf '%s=%s\n' "$2" "$tar" >"$log/$1.out"
}
started=$(date +%s)
chain qemu-riscv64 MKIMG_TEST_ROOTFS_RISCV64 & riscv=$!
chain qemu-aarch64 MKIMG_TEST_ROOTFS_AARCH64 & arm=$!
status=0
wait "$riscv" || { echo "prefetch-rootfs: riscv64 failed:" >&2; tail -n 40 "$log/qemu-riscv64.err" >&2; status=1; }
wait "$arm" || { echo "prefetch-rootfs: aarch64 failed:" >&2; tail -n 40 "$log/qemu-aarch64.err" >&2; status=1; }
cat "$log"/*.out
echo "prefetch-rootfs: $(( $(date +%s) - started )) s" >&2
exit "$status"
