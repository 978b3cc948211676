#!/usr/bin/env bash
# Side-by-side: optscrub vs DuckDB vs Polars (two anti-joins) vs a plain
# Polars Parquet copy, on the same generated files, RUNS runs each; prints
# the median wall time, the ratio to optscrub and the peak memory of each.
#
#   bash benches/peers/run.sh [ROWS] [OPT_OUTS] [RUNS]     (defaults 10000000 1000000 3)
#
# Needs the package registries once: the peers come from PyPI into a
# virtualenv under ~/.cache. Data goes to bench-data/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-10000000}"; optouts="${2:-1000000}"; runs="${3:-3}"
source benches/peers/setup.sh "$rows" "$optouts"
campaign="$data/gen/campaigns/campaign-00.parquet"
out="$data/out"; mkdir -p "$out"
py="$venv/bin/python benches/peers/jobs.py"
declare -A cmd=(
  [optscrub]="$bin scrub --store $data/store --input $campaign --output $out/optscrub.parquet --keep-duplicates"
  [duckdb]="$py duckdb $campaign $data/optouts.parquet $out/duckdb.parquet"
  [polars]="$py polars $campaign $data/optouts.parquet $out/polars.parquet"
  [copy]="$py copy $campaign $data/optouts.parquet $out/copy.parquet"
)
echo "rows $rows, opt-outs $optouts, $runs runs each, $(nproc) cores, $(date -u +%F)"
declare -A med mem
for name in optscrub duckdb polars copy; do
  times=(); peaks=()
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$out/time.txt" -f "%e %M" ${cmd[$name]} >/dev/null 2>&1
    r=$(tail -1 "$out/time.txt")
    times+=("${r% *}"); peaks+=("${r#* }")
  done
  med[$name]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  mem[$name]=$(printf '%s\n' "${peaks[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
done
printf '%-10s %10s %14s %12s\n' tool "median s" "vs optscrub" "peak MiB"
for name in optscrub duckdb polars copy; do
  ratio=$(awk -v a="${med[$name]}" -v b="${med[optscrub]}" 'BEGIN {printf "%.2fx", a / b}')
  printf '%-10s %10s %14s %12d\n' "$name" "${med[$name]}" "$ratio" "$(( ${mem[$name]} / 1024 ))"
done
"$venv/bin/python" - "$out" <<'PY'
import sys, pyarrow.parquet as pq
out = sys.argv[1]
n = {k: pq.ParquetFile(f"{out}/{k}.parquet").metadata.num_rows for k in ("optscrub", "duckdb", "polars")}
print("kept rows:", n, "(all equal)" if len(set(n.values())) == 1 else "(DIFFER!)")
PY
