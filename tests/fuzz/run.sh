#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 300), seeded from datasets/.
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
# An input that takes over 30 s, or asks for over 1 GB at once, counts as
# a crash (a timeout, an out-of-memory).
# A crash leaves its input in tests/fuzz/artifacts/<target>/: fix the bug,
# then copy the input to tests/fuzz/regressions/<target>/ so that
# `cargo test --test fuzz_regressions` replays it forever.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(phone keywords config csv parquet snapshot)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/optscrub-fuzz-target}
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/$t
  mkdir -p "$corpus"
  case $t in
    csv) cp datasets/demo/*.csv datasets/demo/campaigns/*.csv datasets/invalid/*.csv "$corpus"/ ;;
    parquet) cp datasets/invalid/*.parquet tests/fuzz/regressions/parquet/* "$corpus"/; find bench-data -maxdepth 2 -name '*.parquet' -size -200k -exec cp {} "$corpus"/ \; 2>/dev/null || true ;;
    config) cp datasets/demo/config.toml datasets/invalid/*.toml "$corpus"/ ;;
    phone|keywords) cut -d, -f2- datasets/demo/replies.csv | split -l 1 - "$corpus"/line- ;;
    snapshot) find "${SNAP_SEEDS:-/nonexistent}" -name '*.snap' -exec cp {} "$corpus"/ \; 2>/dev/null || true ;;
  esac
  echo "== $t: ${secs}s"
  cargo +nightly fuzz run --fuzz-dir tests/fuzz -O "$t" "$corpus" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -malloc_limit_mb=1024 -timeout=30 -print_final_stats=1 2>&1 | tail -25
done
