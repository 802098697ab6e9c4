#!/bin/bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
# installs the system packages the tests use, then format check, clippy with
# warnings as errors, and every test with the real tools required
# (MKIMG_REQUIRE_TOOLS=1: a missing oracle tool fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh

export MKIMG_REQUIRE_TOOLS=1
export MKIMG_SLOW_TESTS=1
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# --release: the slow suites build and boot real images; a debug mkimg is
# several times slower at hashing, compressing and streaming them.
cargo test --release --locked --no-fail-fast
# ~25 s of each cargo-fuzz target from its committed seeds (fuzz/README).
bash fuzz/smoke.sh
