#!/bin/bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
# installs the system packages the tests use, then format check, clippy with
# warnings as errors, and every test with the real tools required
# (MKIMG_REQUIRE_TOOLS=1: a missing oracle tool fails instead of skipping;
# tests/support/tools.rs is where the tests read it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh

export MKIMG_REQUIRE_TOOLS=1
export MKIMG_SLOW_TESTS=1
export CARGO_TERM_COLOR=never
# Every locked crate, for every target: tests/cli/install.rs reads the
# whole lock with `cargo metadata --offline`, which needs the crates that
# only other platforms build too.
cargo fetch --locked
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# No import cycles among the top-level modules, nor among the files of any
# of them (stages call downward only: STYLE.md).
python3 scripts/check-module-cycles.py src >/dev/null ||
    python3 scripts/check-module-cycles.py src
for dir in src/*/; do
    python3 scripts/check-module-cycles.py src "$(basename "$dir")" >/dev/null ||
        python3 scripts/check-module-cycles.py src "$(basename "$dir")"
done
# The rootfs tarballs the slow suites boot, bootstrapped two at a time
# (riscv64 and aarch64 in parallel) before the tests need them.
cargo build --release --locked
scripts/prefetch-rootfs.sh >target/rootfs.env
while IFS='=' read -r name value; do
    export "$name=$value"
done <target/rootfs.env
# --release: the slow suites build and boot real images; a debug mkimg is
# several times slower at hashing, compressing and streaming them.
cargo test --release --locked --no-fail-fast
# ~25 s of each cargo-fuzz target from its committed seeds (fuzz/README).
bash fuzz/smoke.sh
