#!/usr/bin/env bash
# Issue 12, item 5: import 10M new opt-outs into a store that holds ~97M.
# Uses the peers matrix's 100M store (built by setup.sh when missing, about
# 15 minutes), writes 10M opt-outs that are not in it with pyarrow, and
# imports them into a hard-linked copy of the store (store files are never
# changed in place, so the copy costs nothing and the original stays as it
# was), RUNS times, printing wall time and peak anonymous memory.
#
#   bash benches/import_large.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
source benches/peers/setup.sh 10000000 100000000
d=bench-data/import-large
mkdir -p "$d"
if [ ! -f "$d/new.parquet" ]; then
  "$venv/bin/python" - "$d/new.parquet" <<'PY'
import random, sys
import pyarrow as pa, pyarrow.parquet as pq
n = 10_000_000
rng = random.Random(7)
# +4479…: a range gen does not draw from, so every row is a new opt-out
phones = pa.array(["+4479%08d" % p for p in rng.sample(range(10**8), n)])
senders = ["+4478600090%02d" % i for i in range(8)] + ["account"]
sender = pa.array([senders[rng.randrange(len(senders))] for _ in range(n)])
at = pa.array(["2026-11-%02dT10:00:00Z" % rng.randint(1, 28) for _ in range(n)])
pq.write_table(pa.table({"phone": phones, "sender": sender, "occurred_at": at}), sys.argv[1],
               row_group_size=1_000_000)
PY
fi
"$bin" stats --store "$data/store" | grep '^total'
for _ in $(seq "$runs"); do
  rm -rf "$d/run"; cp -al "$data/store" "$d/run"; sync
  bash benches/peak_anon.sh "$bin" ingest import --store "$d/run" "$d/new.parquet" --account acct09 --account-wide 2>&1 | tail -1
done
"$bin" stats --store "$d/run" | grep '^total'
[ -n "${KEEP_RUN:-}" ] || rm -rf "$d/run"
