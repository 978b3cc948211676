# Sourced by run.sh and matrix.sh with ROWS OPT_OUTS: builds optscrub, makes
# the peers' virtualenv, generates the data and loads the store once.
# Sets $bin, $venv and $data.
rows="$1"; optouts="$2"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optscrub-target}"
venv="$HOME/.cache/optscrub-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb, polars, pyarrow" 2>/dev/null || "$venv/bin/pip" install -q duckdb polars pyarrow
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/optscrub"
data="bench-data/peers-$rows-$optouts"
if [ ! -f "$data/gen/config.toml" ]; then
  rm -rf "$data"
  "$bin" gen --out "$data/gen" --seed 42 --recipients "$rows" --opt-outs "$optouts" --replies 0 --webforms 0 \
    --accounts 10 --senders-per-account 10 --campaigns 1 --phones e164
fi
# (re)build the store when missing or written by another store format
if ! "$bin" stats --store "$data/store" >/dev/null 2>&1; then
  rm -rf "$data/store" "$data/optouts.parquet"
  "$bin" init --store "$data/store" --config "$data/gen/config.toml"
  for f in "$data"/gen/imports/*.parquet; do
    "$bin" ingest import --store "$data/store" "$f" --account "$(basename "$f" .parquet)" --account-wide 2>/dev/null
  done
  "$bin" export --store "$data/store" --output "$data/optouts.parquet"
fi
