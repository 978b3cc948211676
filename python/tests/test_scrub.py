"""Python scrubs make the CLI's decisions, from every kind of frame."""

from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import optscrub
from conftest import cli_scrub, rows


def frames(table: pa.Table):
    """The same rows as each tool hands them over."""
    yield "pyarrow string", table
    yield "pyarrow large_string", table.cast(
        pa.schema([pa.field(f.name, pa.large_string()) for f in table.schema])
    )
    yield "pyarrow dictionary", pa.table(
        {n: table.column(n).dictionary_encode() for n in table.column_names}
    )
    yield "polars string_view", pl.from_arrow(table)
    yield "polars categorical", pl.from_arrow(table).with_columns(
        pl.col(c).cast(pl.Categorical) for c in table.column_names if c != "phone"
    )
    yield "pandas object", table.to_pandas()
    yield "pandas arrow strings", table.to_pandas(types_mapper=pd.ArrowDtype)
    rel = duckdb.from_arrow(table)
    yield "duckdb relation", rel
    yield "pyarrow reader", pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))
    yield "pyarrow record batch", table.combine_chunks().to_batches()[0]


@pytest.mark.parametrize("keep", [False, True])
def test_every_frame_scrubs_as_the_cli(demo_store, spring_sale, tmp_path, keep):
    flags = ["--keep-duplicates"] if keep else []
    want_kept, want_gone = cli_scrub(demo_store, spring_sale, tmp_path, *flags)
    store = optscrub.Store(demo_store)
    for name, frame in frames(spring_sale):
        kept, gone = store.scrub(frame, keep_duplicates=keep)
        assert rows(kept) == rows(want_kept), name
        assert rows(gone) == rows(want_gone), name
        if isinstance(frame, pl.DataFrame):
            assert isinstance(kept, pl.DataFrame) and isinstance(gone, pl.DataFrame), name


def test_generated_data_scrubs_as_the_cli(generated, tmp_path):
    store_dir, campaign, _ = generated
    want_kept, want_gone = cli_scrub(store_dir, campaign, tmp_path)
    reasons = set(want_gone.column("reason").to_pylist())
    assert {"duplicate", "sender_opt_out", "account_opt_out", "invalid_phone"} <= reasons
    store = optscrub.Store(store_dir)
    for name, frame in [("pyarrow", campaign), ("polars", pl.from_arrow(campaign))]:
        result = store.scrub(frame)
        assert rows(result.kept) == rows(want_kept), name
        assert rows(result.suppressed) == rows(want_gone), name
        assert result.stats.rows_in == campaign.num_rows
        assert result.stats.kept == want_kept.num_rows
        assert result.stats.reasons["duplicate"] == want_gone.column("reason").to_pylist().count("duplicate")


def test_decide_then_the_duplicate_rule_matches_the_cli(generated, tmp_path):
    store_dir, campaign, _ = generated
    want_kept, want_gone = cli_scrub(store_dir, campaign, tmp_path)
    store = optscrub.Store(store_dir)
    want = want_gone.column("reason").to_pylist()
    # pyarrow, in batches
    decided = store.decide(campaign)
    assert decided.num_rows == campaign.num_rows
    marked = optscrub.mark_duplicates(decided)
    got = [r for r in marked.column("reason").to_pylist() if r is not None]
    assert got == want
    # Polars, eager
    marked = optscrub.mark_duplicates(store.decide(pl.from_arrow(campaign)))
    assert marked.filter(pl.col("reason").is_not_null())["reason"].to_list() == want
    # Polars, lazy under the streaming engine, read from the file
    src = tmp_path / "input.parquet"
    out = optscrub.polars.scrub(pl.scan_parquet(src), store).collect(engine="streaming")
    assert out.filter(pl.col("reason").is_not_null())["reason"].to_list() == want
    kept = out.filter(pl.col("reason").is_null()).drop(optscrub.DECISION_COLUMNS)
    assert rows(kept) == rows(want_kept)


def test_flags_and_columns(demo_store, spring_sale, tmp_path):
    store = optscrub.Store(demo_store)
    renamed = spring_sale.rename_columns(
        ["id", "msisdn", "acct", "from_number", "first_name", "segment"]
    )
    want_kept, want_gone = cli_scrub(
        demo_store, renamed, tmp_path, "--phone-column", "msisdn", "--account-column", "acct",
        "--sender-column", "from_number",
    )
    kept, gone = store.scrub(
        renamed, columns={"phone": "msisdn", "account": "acct", "sender": "from_number"}
    )
    assert rows(kept) == rows(want_kept) and rows(gone) == rows(want_gone)
    # --account / --sender for rows that name none
    bare = spring_sale.drop(["account_id", "sender"])
    want_kept, want_gone = cli_scrub(
        demo_store, bare, tmp_path / "b", "--account", "acme", "--sender", "+447860009123"
    )
    kept, gone = store.scrub(bare, account="acme", sender="+447860009123")
    assert rows(kept) == rows(want_kept) and rows(gone) == rows(want_gone)
    # --default-country reads the national number
    want_kept, _ = cli_scrub(demo_store, spring_sale, tmp_path / "c", "--default-country", "GB")
    kept, _ = store.scrub(spring_sale, default_country="GB")
    assert rows(kept) == rows(want_kept)


def test_bad_arguments_and_data_are_errors_with_the_cli_words(demo_store, spring_sale):
    store = optscrub.Store(demo_store)
    with pytest.raises(optscrub.InputError, match=r"the data: no column 'msisdn' \(columns: customer_id, phone"):
        store.scrub(spring_sale, columns={"phone": "msisdn"})
    with pytest.raises(optscrub.UsageError, match="--account 'nope' is not an account"):
        store.scrub(spring_sale, account="nope")
    with pytest.raises(optscrub.UsageError, match="is not an ISO 3166"):
        store.scrub(spring_sale, default_country="Britain")
    with pytest.raises(optscrub.UsageError, match="'telephone' not known"):
        store.scrub(spring_sale, columns={"telephone": "x"})
    with pytest.raises(optscrub.InputError, match="binary data"):
        store.scrub(pa.table({"phone": pa.array([b"+447700900001"]), "account_id": ["acme"]}))
    with pytest.raises(optscrub.InputError, match="which the decision adds"):
        store.decide(spring_sale.append_column("reason", pa.array([""] * spring_sale.num_rows)))
    with pytest.raises(TypeError, match="LazyFrame"):
        store.scrub(pl.from_arrow(spring_sale).lazy())
    with pytest.raises(TypeError, match="cannot read list"):
        store.scrub([1, 2])
    # every error is an OptscrubError
    assert issubclass(optscrub.StoreDamagedError, optscrub.OptscrubError)


def test_empty_data(demo_store, spring_sale):
    store = optscrub.Store(demo_store)
    kept, gone = store.scrub(spring_sale.slice(0, 0))
    assert kept.num_rows == 0 and gone.num_rows == 0
    assert gone.column_names[-2:] == ["reason", "scope"]
    assert kept.schema == spring_sale.schema
