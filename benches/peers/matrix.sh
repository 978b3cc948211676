#!/usr/bin/env bash
# The scrub against its peers on files written by the tools users use:
# the campaign `optscrub gen` writes, rewritten by Polars, pyarrow and
# DuckDB (same rows, each tool's own encodings and Arrow types). For each
# file, optscrub, DuckDB and Polars (two anti-joins) and a plain Polars
# copy run RUNS times, interleaved; prints one markdown table, weakest
# case first, with medians, ratios to optscrub, peak memory and whether
# every tool kept the same rows.
#
#   bash benches/peers/matrix.sh [ROWS] [OPT_OUTS] [RUNS]   (defaults 10000000 1000000 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-10000000}"; optouts="${2:-1000000}"; runs="${3:-3}"
source benches/peers/setup.sh "$rows" "$optouts"
src="$data/gen/campaigns/campaign-00.parquet"
declare -A file=([optscrub-gen]="$src")
# Spark too when pyspark is installed (pip install pyspark; Java 17)
writers=(polars pyarrow duckdb)
"$venv/bin/python" -c "import pyspark" 2>/dev/null && writers+=(spark)
for w in "${writers[@]}"; do
  f="$data/written-by-$w.parquet"
  [ -f "$f" ] || "$venv/bin/python" benches/peers/writers.py "$w" "$src" "$f"
  file[$w]="$f"
done
out="$data/out"; mkdir -p "$out"
py="$venv/bin/python benches/peers/jobs.py"
tools=(optscrub duckdb polars copy)
command_for() { # tool input output
  case "$1" in
    optscrub) echo "$bin scrub --store $data/store --input $2 --output $3 --keep-duplicates" ;;
    *) echo "$py $1 $2 $data/optouts.parquet $3" ;;
  esac
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "rows $rows, opt-outs $optouts, $runs runs each (interleaved), $(nproc) cores, $(date -u '+%F %H:%M') UTC" >&2
table="$out/matrix.tsv"; : > "$table"
for w in optscrub-gen "${writers[@]}"; do
  declare -A times=() peaks=()
  for _ in $(seq "$runs"); do
    for t in "${tools[@]}"; do
      /usr/bin/time -o "$out/time.txt" -f "%e %M" $(command_for "$t" "${file[$w]}" "$out/$t.parquet") >/dev/null 2>&1
      r=$(tail -1 "$out/time.txt")
      times[$t]+="${r% *} "; peaks[$t]+="${r#* } "
    done
  done
  declare -A med=() mem=()
  for t in "${tools[@]}"; do
    med[$t]=$(median ${times[$t]}); mem[$t]=$(( $(median ${peaks[$t]}) / 1024 ))
  done
  agree=$("$venv/bin/python" - "$out" <<'PY'
import sys, pyarrow.parquet as pq
n = {pq.ParquetFile(f"{sys.argv[1]}/{k}.parquet").metadata.num_rows for k in ("optscrub", "duckdb", "polars")}
print(f"yes ({n.pop()})" if len(n) == 1 else "NO")
PY
)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "${med[optscrub]}" "${med[duckdb]}" "${med[polars]}" \
    "${med[copy]}" "${mem[optscrub]}" "${mem[duckdb]}" "${mem[polars]}" "$agree" >> "$table"
  unset times peaks med mem
done
echo "| file written by | optscrub s | DuckDB s (×) | Polars s (×) | Polars copy s (×) | peak MiB optscrub / DuckDB / Polars | same kept rows |"
echo "|---|---|---|---|---|---|---|"
# weakest case first: the smallest lead over the nearer peer
awk -F'\t' '{
  d = $3 / $2; p = $4 / $2; c = $5 / $2; lead = (d < p ? d : p)
  printf "%.4f|| %s | %.2f | %.2f (%.2f×) | %.2f (%.2f×) | %.2f (%.2f×) | %d / %d / %d | %s |\n", lead, $1, $2, $3, d, $4, p, $5, c, $6, $7, $8, $9
}' "$table" | sort -n | cut -d'|' -f3- | sed 's/^/|/'
