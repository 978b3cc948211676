#!/usr/bin/env bash
# optscrub from Python and on Spark, against the CLI and Spark's own
# anti-joins, on the peers' generated data (benches/peers/setup.sh):
#
#   bash benches/python/run.sh [ROWS] [OPT_OUTS] [RUNS]   (defaults 10000000 1000000 3)
#
# The campaign is the generated one rewritten by Polars (WRITER=pyarrow,
# duckdb or spark for another writer's copy; WRITER=optscrub-gen for the
# generator's own file), as benches/peers/matrix.sh writes it.
#
# Needs the wheel installed in the peers' venv (see the README, "From
# Python") and pyspark with Java 17 for the Spark rows. Each pair runs
# RUNS times, interleaved; prints medians and peak memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-10000000}"; optouts="${2:-1000000}"; runs="${3:-3}"
source benches/peers/setup.sh "$rows" "$optouts"
campaign="$data/gen/campaigns/campaign-00.parquet"
writer="${WRITER:-polars}"
if [ "$writer" != optscrub-gen ]; then
  f="$data/written-by-$writer.parquet"
  [ -f "$f" ] || "$venv/bin/python" benches/peers/writers.py "$writer" "$campaign" "$f"
  campaign="$f"
fi
out="$data/out-python"; mkdir -p "$out"
bundle="$out/bundle.tar.gz"
[ -f "$bundle" ] || "$bin" bundle --store "$data/store" --output "$bundle"
py="$venv/bin/python benches/python/jobs.py"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A cmd=(
  [cli]="$bin scrub --store $data/store --input $campaign --output $out/cli.parquet --keep-duplicates"
  [polars-copy]="$py polars-copy $campaign $data/store $data/optouts.parquet $out/polars-copy.parquet"
  [polars-optscrub]="$py polars-optscrub $campaign $data/store $data/optouts.parquet $out/polars.parquet"
  [polars-plugin]="$py polars-plugin $campaign $data/store $data/optouts.parquet $out/polars-plugin.parquet"
  [spark-optscrub]="$py spark-optscrub $campaign $bundle $data/optouts.parquet $out/spark-optscrub"
  [spark-antijoin]="$py spark-antijoin $campaign $bundle $data/optouts.parquet $out/spark-antijoin"
)
jobs=(cli polars-copy polars-optscrub)
# the Polars plugin when its wheel is installed (polars-plugin/)
"$venv/bin/python" -c "import optscrub_polars" 2>/dev/null && jobs+=(polars-plugin)
jobs+=(spark-optscrub spark-antijoin)
echo "rows $rows, opt-outs $optouts, file written by $writer, $runs runs each (interleaved), $(nproc) cores, $(date -u '+%F %H:%M') UTC" >&2
declare -A times=() peaks=()
for _ in $(seq "$runs"); do
  for j in "${jobs[@]}"; do
    /usr/bin/time -o "$out/time.txt" -f "%e %M" ${cmd[$j]} >/dev/null 2>&1 || { echo "$j failed" >&2; exit 1; }
    r=$(tail -1 "$out/time.txt"); times[$j]+="${r% *} "; peaks[$j]+="${r#* } "
  done
done
kept() { "$venv/bin/python" -c "import pyarrow.parquet as pq, sys; print(pq.read_table(sys.argv[1]).num_rows)" "$1"; }
echo "| job | median s | peak MiB (driver process) | kept rows |"
echo "|---|---|---|---|"
for j in "${jobs[@]}"; do
  case "$j" in cli) f="$out/cli.parquet" ;; polars-copy) f="$out/polars-copy.parquet" ;; polars-optscrub) f="$out/polars.parquet" ;; polars-plugin) f="$out/polars-plugin.parquet" ;; *) f="$out/$j" ;; esac
  echo "| $j | $(median ${times[$j]}) | $(( $(median ${peaks[$j]}) / 1024 )) | $(kept "$f") |"
done
