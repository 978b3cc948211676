#!/usr/bin/env bash
# Runs a command and prints its wall time and its peak anonymous memory
# (RssAnon, sampled every 20 ms): the heap and stacks, without the pages
# of mapped store files that the peak RSS of /usr/bin/time also counts.
#
#   bash benches/peak_anon.sh optscrub export --store S --output f.parquet
set -uo pipefail
start=$(date +%s.%N)
"$@" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a
  sleep 0.02
done
wait "$pid"; rc=$?
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v p="$peak" 'BEGIN {printf "wall %.2f s, peak anonymous memory %.0f MiB\n", e - s, p / 1024}' >&2
exit $rc
