"""Shared fixtures: the optscrub binary, a store loaded with the demo data
(the same steps `optscrub demo` takes), and helpers that run the CLI and
compare its outputs with the Python package's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "datasets" / "demo"


def binary() -> str:
    """The optscrub CLI: $OPTSCRUB_BIN, else the build in the cargo target."""
    if os.environ.get("OPTSCRUB_BIN"):
        return os.environ["OPTSCRUB_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("release", "debug"):
        b = target / profile / "optscrub"
        if b.exists():
            return str(b)
    raise RuntimeError("no optscrub binary: build it (cargo build --release) or set OPTSCRUB_BIN")


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"optscrub {' '.join(map(str, args))} failed: {p.stderr}")
    return p


def load_demo_store(path: Path) -> Path:
    """A store with the demo config, webform, import and replies in."""
    run("init", "--store", path, "--config", DEMO / "config.toml")
    run("ingest", "webform", "--store", path, DEMO / "webform.csv")
    run("ingest", "import", "--store", path, DEMO / "import.csv", "--account", "acme",
        "--senders", "+447860009123")
    run("ingest", "replies", "--store", path, DEMO / "replies.csv")
    return path


def text_table(csv: Path) -> pa.Table:
    """A CSV read with every column as text, as the CLI reads it."""
    names = csv.read_text().splitlines()[0].split(",")
    return pcsv.read_csv(
        csv,
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False
        ),
    )


def rows(table) -> list:
    """Rows as tuples of text (None for null), whatever the column types."""
    if not isinstance(table, (pa.Table, pa.RecordBatch)):
        table = table.to_arrow() if hasattr(table, "to_arrow") else pa.table(table)
    cols = [c.cast(pa.string()) if not pa.types.is_dictionary(c.type) else c.cast(pa.string())
            for c in table.columns]
    return list(zip(*[c.to_pylist() for c in cols])) if cols else []


def cli_scrub(store: Path, data: pa.Table, work: Path, *flags: str):
    """The CLI's (kept, suppressed) for a table, written to Parquet first."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "input.parquet"
    pq.write_table(data, src)
    kept, gone = work / "kept.parquet", work / "gone.parquet"
    for f in (kept, gone):
        f.unlink(missing_ok=True)
    run("scrub", "--store", store, "--input", src, "--output", kept, "--suppressed", gone, *flags)
    return pq.read_table(kept), pq.read_table(gone)


def cli_json(*args: str) -> dict:
    return json.loads(run(*args).stdout)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    return load_demo_store(tmp_path_factory.mktemp("demo") / "store")


@pytest.fixture()
def fresh_store(tmp_path) -> Path:
    """A demo store of the test's own, to ingest into."""
    return load_demo_store(tmp_path / "store")


@pytest.fixture(scope="session")
def spring_sale() -> pa.Table:
    return text_table(DEMO / "campaigns" / "spring-sale.csv")


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """Generated data: a store with every import and the replies in, and
    one campaign of 20,000 rows (duplicates, every reason)."""
    d = tmp_path_factory.mktemp("gen")
    run("gen", "--out", d / "g", "--seed", "7", "--recipients", "20000", "--opt-outs", "3000",
        "--replies", "3000", "--accounts", "3", "--senders-per-account", "3", "--campaigns", "1",
        "--phones", "mixed")
    store = d / "store"
    run("init", "--store", store, "--config", d / "g" / "config.toml")
    for imp in sorted((d / "g" / "imports").glob("*.parquet")):
        run("ingest", "import", "--store", store, imp, "--account", imp.stem, "--account-wide")
    run("ingest", "replies", "--store", store, d / "g" / "replies")
    campaign = next((d / "g" / "campaigns").glob("*.parquet"))
    return store, pq.read_table(campaign), d


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
