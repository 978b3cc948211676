"""The Polars expression gives every row the reason `optscrub scrub` gives
it (duplicates aside, which need the other rows), eagerly and under the
streaming engine, with columns or literals for the account and sender."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import polars as pl
import pytest

import optscrub_polars  # noqa: F401  (registers the namespace)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "datasets" / "demo"


def run(*args) -> None:
    binary = os.environ.get("OPTSCRUB_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "optscrub"
    )
    p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    s = tmp_path_factory.mktemp("demo") / "store"
    run("init", "--store", s, "--config", DEMO / "config.toml")
    run("ingest", "webform", "--store", s, DEMO / "webform.csv")
    run("ingest", "import", "--store", s, DEMO / "import.csv", "--account", "acme", "--senders", "+447860009123")
    run("ingest", "replies", "--store", s, DEMO / "replies.csv")
    return s


def cli_reasons(store: Path, campaign: Path, tmp: Path, *flags: str) -> dict:
    kept, gone = tmp / "kept.csv", tmp / "gone.csv"
    run("scrub", "--store", store, "--input", campaign, "--output", kept, "--suppressed", gone,
        "--keep-duplicates", *flags)
    out = {r: None for r in pl.read_csv(kept, infer_schema=False)["customer_id"]}
    for r in pl.read_csv(gone, infer_schema=False).iter_rows(named=True):
        out[r["customer_id"]] = r["reason"]
    return out


@pytest.mark.parametrize("campaign", ["spring-sale.csv", "renewals.csv"])
def test_reason_is_the_cli_reason(store, campaign, tmp_path):
    path = DEMO / "campaigns" / campaign
    want = cli_reasons(store, path, tmp_path)
    df = pl.read_csv(path, infer_schema=False)
    expr = pl.col("phone").optscrub.reason(store=store, account=pl.col("account_id"), sender=pl.col("sender"))
    got = df.with_columns(reason=expr)
    assert dict(zip(got["customer_id"], got["reason"])) == want
    lazy = pl.scan_csv(path, infer_schema=False).with_columns(reason=expr).collect(engine="streaming")
    assert lazy["reason"].to_list() == got["reason"].to_list()
    assert any(v is not None for v in want.values())  # the campaign has suppressed rows


def test_a_literal_account_is_the_cli_flag(store, tmp_path):
    path = tmp_path / "no-account.csv"
    pl.read_csv(DEMO / "campaigns" / "spring-sale.csv", infer_schema=False).drop("account_id").write_csv(path)
    want = cli_reasons(store, path, tmp_path, "--account", "acme")
    df = pl.read_csv(path, infer_schema=False)
    got = df.with_columns(reason=pl.col("phone").optscrub.reason(store=store, account="acme", sender=pl.col("sender")))
    assert dict(zip(got["customer_id"], got["reason"])) == want


def test_errors_are_polars_errors(store):
    df = pl.DataFrame({"phone": ["+447700900001"], "account_id": ["acme"], "sender": [None]})
    with pytest.raises(pl.exceptions.ComputeError, match="not an optscrub store"):
        df.select(pl.col("phone").optscrub.reason(store="/nonexistent", account=pl.col("account_id")))
    with pytest.raises(pl.exceptions.ComputeError, match="nope"):
        df.select(pl.col("phone").optscrub.reason(store=store, account="nope"))
