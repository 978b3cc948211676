#!/usr/bin/env bash
# SPEC §8: reply ingestion end to end, ≥ 1M replies a second. Generates
# ROWS replies (one Parquet file; the body variety gen makes, 10% to the
# shared number, ~0.4% unusable), then ingests them RUNS times, each into a
# new store, with outbox, review and rejects; prints every run and the
# median wall time and peak memory.
#
#   bash benches/replies.sh [ROWS] [RUNS]      (defaults 1000000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"; runs="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optscrub-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/optscrub"
d="bench-data/replies-$rows"
[ -f "$d/gen/config.toml" ] || "$bin" gen --out "$d/gen" --seed 5 --recipients 1000 --opt-outs 1000 \
  --replies "$rows" --campaigns 1 >/dev/null 2>&1
echo "replies $rows, $runs runs, $(nproc) cores, $(date -u +%F)"
times=(); peaks=()
for _ in $(seq "$runs"); do
  rm -rf "$d/store" "$d/out"; mkdir -p "$d/out"
  "$bin" init --store "$d/store" --config "$d/gen/config.toml" >/dev/null 2>&1
  /usr/bin/time -o "$d/time.txt" -f "%e %M" "$bin" ingest replies --store "$d/store" "$d/gen/replies" \
    --outbox "$d/out/outbox.parquet" --review "$d/out/review.parquet" --rejects "$d/out/rejects.parquet" 2>"$d/log.txt"
  r=$(tail -1 "$d/time.txt"); times+=("${r% *}"); peaks+=("${r#* }")
  echo "  ${r% *} s, $(( ${r#* } / 1024 )) MiB"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t=$(median "${times[@]}"); m=$(median "${peaks[@]}")
echo "median $t s ($(awk -v t="$t" -v n="$rows" 'BEGIN {printf "%.2f", n / t / 1e6}')M replies/s), peak $(( m / 1024 )) MiB"
head -2 "$d/log.txt"
