#!/bin/bash
# CI smoke run of every fuzz target: builds them (nightly, debug assertions
# and overflow checks on, no sanitizer: the code under test is safe Rust, so
# a panic or an arithmetic wrap is what a crash means here, and the target
# runs ~2x faster without ASan), then fuzzes each for FUZZ_SECONDS (default
# 25) from the committed seeds. Any crash, timeout or OOM fails the script;
# libFuzzer leaves the input in fuzz/artifacts/<target>/.
# New corpus entries go to a temporary directory, never into fuzz/corpus.
# Needs the nightly toolchain (preinstalled on the project's machines;
# it is not downloadable from the CI network) and cargo-fuzz
# (scripts/setup-debian.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-25}
targets=(board_plan rootfs_pass partition_tables ebr_chain qcow2_inspect grub_image genimage_config bmap_read ld_so_cache)

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz/smoke.sh: no nightly toolchain (rustup toolchain list); cargo-fuzz needs it" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/smoke.sh: cargo-fuzz missing; run scripts/setup-debian.sh" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo +nightly fuzz build -s none
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "fuzz/smoke.sh: $t for ${seconds}s"
    # Inputs that once crashed are replayed first, with the seeds.
    extra=()
    [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
    [ -f "fuzz/$t.dict" ] && extra+=(-- -dict="fuzz/$t.dict") || extra+=(--)
    cargo +nightly fuzz run -s none "$t" "$work/$t" "fuzz/corpus/$t" "${extra[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$work/$t.log" 2>&1 || {
        tail -n 60 "$work/$t.log" >&2
        echo "fuzz/smoke.sh: $t FAILED (input saved under fuzz/artifacts/$t/)" >&2
        exit 1
    }
    grep -E '^(Done|stat::number_of_executed_units)' "$work/$t.log" || true
done
echo "fuzz/smoke.sh: ${#targets[@]} targets, no crash"
