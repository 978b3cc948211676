#!/usr/bin/env bash
# The worked example of the README: a store in a temporary folder, the
# example webform and import ingested, the example recipients scrubbed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/optscrub"
work="$(mktemp -d)"
store="$work/store"
"$bin" init --store "$store" --config "$here/config.toml"
"$bin" ingest replies --store "$store" "$here/replies.csv" --outbox "$work/outbox.csv" \
  --review "$work/review.csv" --rejects "$work/replies.rejects.csv"
"$bin" ingest webform --store "$store" "$here/webform.csv" --rejects "$work/webform.rejects.csv"
"$bin" ingest import --store "$store" "$here/import.csv" --account acme --senders +447860009123 \
  --rejects "$work/import.rejects.csv"
"$bin" scrub --store "$store" --input "$here/recipients.csv" \
  --output "$work/kept.csv" --suppressed "$work/suppressed.csv"
echo; echo "== kept ($work/kept.csv)"; cat "$work/kept.csv"
echo; echo "== suppressed ($work/suppressed.csv)"; cat "$work/suppressed.csv"
echo; echo "== outbox ($work/outbox.csv)"; cat "$work/outbox.csv"
echo; echo "== review ($work/review.csv)"; cat "$work/review.csv"
echo; echo "== check +447700900003 from wa:acme"
"$bin" check --store "$store" --account acme --sender wa:acme +447700900003
