#!/bin/bash
# The main job on a fresh Debian 12 machine: install what mkimg needs, build
# mkimg, bootstrap the board's default rootfs (Debian trixie riscv64, cached
# under ~/.cache/mkimg/rootfs) and build the qemu-riscv64 image into
# output/qemu-riscv64/. Extra arguments go to `mkimg build`
# (e.g. --rootfs my-rootfs.tar.zst, --format raw,qcow2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --locked
exec target/release/mkimg build --board qemu-riscv64 "$@"
