#!/usr/bin/env bash
# SPEC §8: a 10k-reply batch into a store of 10M events, "well under a
# second". Builds two stores under bench-data/ (not committed):
#   keys    10M import events over the keys gen draws (about 220k keys)
#   distinct 10M webform events, each its own key (a 320 MB key run)
# then ingests gen's 10k replies into a copy of each, three times.
#
#   bash benches/incremental.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optscrub-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/optscrub"
d=bench-data/incremental
rm -rf "$d"; mkdir -p "$d"
"$bin" gen --out "$d/gen" --seed 5 --recipients 1000 --opt-outs 10000000 --replies 10000 --webforms 10
"$bin" init --store "$d/keys" --config "$d/gen/config.toml"
for f in "$d"/gen/imports/*.parquet; do
  /usr/bin/time -f "  import $(basename "$f"): %e s, %M KB" \
    "$bin" ingest import --store "$d/keys" "$f" --account "$(basename "$f" .parquet)" --account-wide 2>&1 | tail -1
done
mkdir -p "$d/wf"
for part in 0 1 2 3 4 5 6 7 8 9; do
  awk -v p="$part" 'BEGIN {
    print "account_id,phone,submitted_at,submission_id"
    for (i = p * 1000000; i < (p + 1) * 1000000; i++)
      printf "acct%02d,+4477%08d,2026-10-01T09:00:00Z,s%d\n", i % 10, i, i
  }' > "$d/wf/part$part.csv"
done
"$bin" init --store "$d/distinct" --config "$d/gen/config.toml"
for f in "$d"/wf/*.csv; do
  /usr/bin/time -f "  webform $(basename "$f"): %e s, %M KB" "$bin" ingest webform --store "$d/distinct" "$f" 2>&1 | tail -1
done
for s in keys distinct; do
  "$bin" stats --store "$d/$s" | tail -1
  for _ in 1 2 3; do
    rm -rf "$d/run"; cp -r "$d/$s" "$d/run"
    /usr/bin/time -f "$s: 10k replies in %e s, peak %M KB" "$bin" ingest replies --store "$d/run" "$d/gen/replies" 2>&1 | tail -1
  done
done
rm -rf "$d/run"
