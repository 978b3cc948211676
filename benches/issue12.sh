#!/usr/bin/env bash
# Every target of issue 12 measured in one sitting, on this machine:
#
#   1  any writer: 10M rows x 1M opt-outs, the file written by gen, Polars,
#      pyarrow and DuckDB; optscrub <= 0.5x DuckDB and Polars, <= 1.0x a
#      Polars copy (benches/peers/matrix.sh)
#   2  1M and 10M rows against 1M, 20M and 100M opt-outs: <= 0.5x DuckDB;
#      opening the store and deciding one row <= 50 ms; peak heap at 100M
#      <= 1 GB
#   3  `check` at 100M: <= 10 ms and <= 30 MB
#   4  `export` of 100M as Parquet and CSV: <= 500 MB heap, >= 5M opt-outs/s
#   5  10M opt-outs imported into the store of 100M: <= 10 s, <= 1.5 GB
#      heap; derived files <= 24 bytes per opt-out after a merge (measured
#      after `rebuild`, which writes one file of each kind; the figure
#      right after the import, with its layers and runs, is printed too)
#   6  100M recipient rows (a folder of ten parts) at the rows/s of 10M,
#      memory flat
#
# Each figure is a median of RUNS whole-process runs, the tools run in
# turn. "heap" is the peak anonymous memory (benches/peak_anon.sh: mapped
# store pages not counted), "peak" the peak RSS from /usr/bin/time. Prints
# the tables as markdown and ends with one line per target; also writes
# them to bench-data/issue12-<time>.md. The 20M and 100M stores are built
# by benches/peers/setup.sh the first time (the 100M one in about 15
# minutes, 6.4 GB).
#
#   bash benches/issue12.sh [RUNS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
# a count of runs, else the usage above
case "$runs" in
  '' | *[!0-9]* | 0) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 1 ;;
esac
report="bench-data/issue12-$(date -u +%Y%m%dT%H%M).md"
mkdir -p bench-data
exec > >(tee "$report")
echo "# issue 12, every target in one sitting: $(date -u '+%F %H:%M') UTC, $(nproc) cores, $runs runs each"
verdicts=()
verdict() { verdicts+=("| $1 | $2 | $3 | $4 |"); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# seconds (to the millisecond) and peak RSS (MiB) of one run of a command
timed() {
  local start end
  start=$(date +%s%N)
  /usr/bin/time -o bench-data/time.txt -f "%M" "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  awk -v t="$(( (end - start) / 1000000 ))" '{printf "%.3f %d\n", t / 1000, $1 / 1024}' bench-data/time.txt
}
# seconds of one run of a command, timed by the shell itself: for runs of a
# few milliseconds, where forking `date` and /usr/bin/time around the
# command would add about 3 ms of their own
quick() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.4f\n", e - s}'
}
# peak anonymous memory (MiB) of one run of a command
heap() { bash benches/peak_anon.sh "$@" 2>&1 >/dev/null | sed -n 's/.*memory \([0-9]*\) MiB.*/\1/p' | tail -1; }
ok() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {print ((op == "<=" ? v <= t : v >= t) ? "yes" : "**no**")}'; }

echo
echo "## 1. Any writer (10M rows x 1M opt-outs)"
echo
bash benches/peers/matrix.sh 10000000 1000000 "$runs" 2>/dev/null
weakest=$(awk -F'\t' '{d = $3 / $2; p = $4 / $2; c = $5 / $2; print (d < p ? d : p), c}' \
  bench-data/peers-10000000-1000000/out/matrix.tsv | sort -n | head -1)
copy=$(awk -F'\t' '{print $5 / $2}' bench-data/peers-10000000-1000000/out/matrix.tsv | sort -n | head -1)
lead=${weakest% *}
verdict 1 "optscrub <= 0.5x DuckDB and Polars, <= 1.0x a Polars copy, every writer" \
  "weakest lead $(printf %.2f "$lead")x, weakest against a copy $(printf %.2f "$copy")x" \
  "$( [ "$(ok "$lead" '>=' 2)" = yes ] && [ "$(ok "$copy" '>=' 1)" = yes ] && echo yes || echo '**no**')"

echo
echo "## 2. The suppression side (1M and 10M rows against 1M, 20M and 100M opt-outs)"
echo
echo "| opt-outs | rows | optscrub s | DuckDB s (×) | Polars s (×) | optscrub heap MiB | one row s |"
echo "|---|---|---|---|---|---|---|"
worst2=99; first_worst=0; heap100=0
for optouts in 1000000 20000000 100000000; do
  source benches/peers/setup.sh 10000000 "$optouts" >/dev/null 2>&1
  campaign="$data/gen/campaigns/campaign-00.parquet"
  # the first 1M rows, and the first row alone as CSV (open and decide)
  [ -f "$data/campaign-1m.parquet" ] || "$venv/bin/python" - "$campaign" "$data" <<'PY'
import sys, pyarrow.parquet as pq, pyarrow.csv as pc
t = pq.read_table(sys.argv[1])
pq.write_table(t.slice(0, 1_000_000), f"{sys.argv[2]}/campaign-1m.parquet", compression="zstd")
pc.write_csv(t.slice(0, 1), f"{sys.argv[2]}/campaign-1row.csv")
PY
  out="$data/out"; mkdir -p "$out"
  py="$venv/bin/python benches/peers/jobs.py"
  for input in "$data/campaign-1m.parquet" "$campaign"; do
    o=(); d=(); p=()
    for _ in $(seq "$runs"); do
      r=$(timed "$bin" scrub --store "$data/store" --input "$input" --output "$out/optscrub.parquet" --keep-duplicates); o+=("${r% *}")
      r=$(timed $py duckdb "$input" "$data/optouts.parquet" "$out/duckdb.parquet"); d+=("${r% *}")
      r=$(timed $py polars "$input" "$data/optouts.parquet" "$out/polars.parquet"); p+=("${r% *}")
    done
    mo=$(median "${o[@]}"); md=$(median "${d[@]}"); mp=$(median "${p[@]}")
    h=$(heap "$bin" scrub --store "$data/store" --input "$input" --output "$out/optscrub.parquet" --keep-duplicates)
    one=()
    for _ in 1 2 3 4 5 6 7; do
      r=$(timed "$bin" scrub --store "$data/store" --input "$data/campaign-1row.csv" --output "$out/one.parquet"); one+=("${r% *}")
    done
    m1=$(median "${one[@]}")
    rows=$("$venv/bin/python" -c "import pyarrow.parquet as pq, sys; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)" "$input")
    n=$("$bin" stats --store "$data/store" | sed -n 's/^total: \([0-9]*\) opt-outs.*/\1/p')
    printf '| %s | %s | %.2f | %.2f (%.2f×) | %.2f (%.2f×) | %s | %s |\n' "$n" "$rows" "$mo" "$md" \
      "$(awk -v a="$md" -v b="$mo" 'BEGIN {print a / b}')" "$mp" "$(awk -v a="$mp" -v b="$mo" 'BEGIN {print a / b}')" "$h" "$m1"
    worst2=$(awk -v w="$worst2" -v a="$md" -v b="$mo" 'BEGIN {r = a / b; print (r < w ? r : w)}')
    first_worst=$(awk -v w="$first_worst" -v a="$m1" 'BEGIN {print (a > w ? a : w)}')
    [ "$optouts" = 100000000 ] && heap100=$(( h > heap100 ? h : heap100 ))
  done
done
verdict 2 "<= 0.5x DuckDB in every cell" "weakest $(printf %.2f "$worst2")x" "$(ok "$worst2" '>=' 2)"
verdict 2 "open the store and decide one row <= 50 ms, any size" "slowest $(awk -v s="$first_worst" 'BEGIN {printf "%d", s * 1000}') ms" "$(ok "$first_worst" '<=' 0.05)"
verdict 2 "heap at 100M opt-outs <= 1 GB" "$heap100 MiB" "$(ok "$heap100" '<=' 953)"

# the 100M store ($data, $bin, $venv still name it)
n100=$("$bin" stats --store "$data/store" | sed -n 's/^total: \([0-9]*\) opt-outs.*/\1/p')
echo
echo "## 3. \`check\` at $n100 opt-outs"
echo
phone=$("$venv/bin/python" -c "import pyarrow.parquet as pq, sys; print(pq.read_table(sys.argv[1], columns=['phone']).slice(0, 1)['phone'][0])" "$data/optouts.parquet")
echo "| contact | ms | peak MiB |"
echo "|---|---|---|"
worst3=0; peak3=0
for who in "with events:$phone" "without events:+447999999999"; do
  t=(); m=()
  for _ in 1 2 3 4 5 6 7; do
    t+=("$(quick "$bin" check --store "$data/store" "${who#*:}")")
    r=$(timed "$bin" check --store "$data/store" "${who#*:}"); m+=("${r#* }")
  done
  mt=$(median "${t[@]}"); mm=$(median "${m[@]}")
  echo "| ${who%%:*} | $(awk -v s="$mt" 'BEGIN {printf "%.1f", s * 1000}') | $mm |"
  worst3=$(awk -v w="$worst3" -v a="$mt" 'BEGIN {print (a > w ? a : w)}'); peak3=$(( mm > peak3 ? mm : peak3 ))
done
verdict 3 "check <= 10 ms and <= 30 MB" "$(awk -v s="$worst3" 'BEGIN {printf "%.1f", s * 1000}') ms, $peak3 MiB" \
  "$( [ "$(ok "$worst3" '<=' 0.01)" = yes ] && [ "$(ok "$peak3" '<=' 28)" = yes ] && echo yes || echo '**no**')"

echo
echo "## 4. \`export\` of $n100 opt-outs"
echo
echo "| format | s | opt-outs/s | heap MiB |"
echo "|---|---|---|---|"
slow4=0; heap4=0
for f in parquet csv roaring; do
  dest="$data/out/export.$f"; rm -rf "$dest"
  args=(--output "$dest"); [ "$f" = roaring ] && args=(--output "$dest" --format roaring)
  r=$(timed "$bin" export --store "$data/store" "${args[@]}"); s=${r% *}; rm -rf "$dest"
  h=$(heap "$bin" export --store "$data/store" "${args[@]}"); rm -rf "$dest"
  rate=$(awk -v n="$n100" -v s="$s" 'BEGIN {printf "%.1fM", n / s / 1e6}')
  echo "| $f | $s | $rate | $h |"
  heap4=$(( h > heap4 ? h : heap4 ))
  [ "$f" = roaring ] || slow4=$(awk -v w="$slow4" -v a="$s" 'BEGIN {print (a > w ? a : w)}')
done
rate4=$(awk -v n="$n100" -v s="$slow4" 'BEGIN {print n / s / 1e6}')
verdict 4 "export >= 5M opt-outs/s, heap <= 500 MB" "$(printf %.1f "$rate4")M/s, $heap4 MiB" \
  "$( [ "$(ok "$rate4" '>=' 5)" = yes ] && [ "$(ok "$heap4" '<=' 476)" = yes ] && echo yes || echo '**no**')"

echo
echo "## 5. 10M opt-outs imported into the store of $n100"
echo
d=bench-data/import-large
# the 10M new opt-outs, written once
[ -f "$d/new.parquet" ] || bash benches/import_large.sh 1 >/dev/null 2>&1
t=(); h=()
for _ in $(seq "$runs"); do
  rm -rf "$d/run"; cp -al "$data/store" "$d/run"; sync
  r=$(bash benches/peak_anon.sh "$bin" ingest import --store "$d/run" "$d/new.parquet" --account acct09 --account-wide 2>&1 >/dev/null | tail -1)
  t+=("$(echo "$r" | sed -n 's/^wall \([0-9.]*\) s.*/\1/p')"); h+=("$(echo "$r" | sed -n 's/.*memory \([0-9]*\) MiB.*/\1/p')")
done
# bytes per opt-out of the derived files, from a `stats` total line
derived_of() {
  echo "$1" | awk '{
    n = $2; for (i = 1; i <= NF; i++) if ($i == "snapshot" || $i == "probe" || $i == "index" || $i == "ids") s += $(i + 1)
    printf "%.1f", s / n }'
}
total=$("$bin" stats --store "$d/run" | grep '^total')
derived_now=$(derived_of "$total")
"$bin" rebuild --store "$d/run" >/dev/null 2>&1
merged=$("$bin" stats --store "$d/run" | grep '^total')
derived=$(derived_of "$merged")
rm -rf "$d/run"
mt=$(median "${t[@]}"); mh=$(median "${h[@]}")
echo "runs: ${t[*]} s; heap ${h[*]} MiB"
echo
echo "- right after the import ($derived_now bytes per opt-out): $total"
echo "- after a merge (\`rebuild\`, $derived bytes per opt-out): $merged"
verdict 5 "import 10M into ~100M <= 10 s, heap <= 1.5 GB" "$mt s, $mh MiB" \
  "$( [ "$(ok "$mt" '<=' 10)" = yes ] && [ "$(ok "$mh" '<=' 1430)" = yes ] && echo yes || echo '**no**')"
verdict 5 "derived files <= 24 bytes per opt-out after a merge (key runs, id runs, probe, snapshot)" "$derived ($derived_now right after the import)" "$(ok "$derived" '<=' 24)"

echo
echo "## 6. 100M recipient rows (ten parts) against 1M opt-outs"
echo
source benches/peers/setup.sh 10000000 1000000 >/dev/null 2>&1
parts="$data/parts-100m"
if [ ! -d "$parts" ]; then
  mkdir -p "$parts"
  for i in 0 1 2 3 4 5 6 7 8 9; do ln "$data/gen/campaigns/campaign-00.parquet" "$parts/part-$i.parquet"; done
fi
echo "| rows | s | rows/s | heap MiB |"
echo "|---|---|---|---|"
rate6=(); heap6=()
for input in "$data/gen/campaigns/campaign-00.parquet" "$parts"; do
  t=()
  for _ in $(seq "$runs"); do
    r=$(timed "$bin" scrub --store "$data/store" --input "$input" --output "$data/out/rows.parquet" --keep-duplicates); t+=("${r% *}")
  done
  s=$(median "${t[@]}")
  h=$(heap "$bin" scrub --store "$data/store" --input "$input" --output "$data/out/rows.parquet" --keep-duplicates)
  n=$([ -d "$input" ] && echo 100000000 || echo 10000000)
  rate6+=("$(awk -v n="$n" -v s="$s" 'BEGIN {print n / s}')"); heap6+=("$h")
  echo "| $n | $s | $(awk -v n="$n" -v s="$s" 'BEGIN {printf "%.1fM", n / s / 1e6}') | $h |"
done
ratio6=$(awk -v a="${rate6[1]}" -v b="${rate6[0]}" 'BEGIN {print a / b}')
verdict 6 "100M rows at the rows/s of 10M, memory flat" \
  "$(printf %.2f "$ratio6")x the rate of 10M; heap ${heap6[0]} -> ${heap6[1]} MiB" \
  "$( [ "$(ok "$ratio6" '>=' 0.95)" = yes ] && [ "$(ok "${heap6[1]}" '<=' "$(( heap6[0] * 5 / 4 + 16 ))")" = yes ] && echo yes || echo '**no**')"

echo
echo "## Targets"
echo
echo "| item | target | measured | met |"
echo "|---|---|---|---|"
printf '%s\n' "${verdicts[@]}"
