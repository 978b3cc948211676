"""Spark local[2] with optscrub.spark gives the CLI's kept and suppressed
rows for a folder of Parquet parts, duplicates across parts included."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

import optscrub
from conftest import rows, run

try:
    import pyspark  # noqa: F401
except ImportError:  # CI installs it and sets OPTSCRUB_REQUIRE_SPARK
    if os.environ.get("OPTSCRUB_REQUIRE_SPARK"):
        raise
    pytest.skip("pyspark is not installed", allow_module_level=True)

import optscrub.spark


@pytest.fixture(scope="module")
def spark():
    import sys

    from pyspark.sql import SparkSession

    # the workers run this interpreter (with optscrub and pyarrow)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("optscrub-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield s
    s.stop()


def test_spark_scrubs_a_folder_as_the_cli(spark, generated, tmp_path):
    store, campaign, _ = generated
    parts = tmp_path / "parts"
    parts.mkdir()
    # four parts, so that duplicates cross files and partitions
    n = campaign.num_rows
    for i in range(4):
        pq.write_table(campaign.slice(i * n // 4, n // 4 if i < 3 else n - 3 * (n // 4)), parts / f"part-{i}.parquet",
                       row_group_size=1000)
    kept, gone = tmp_path / "kept.parquet", tmp_path / "gone.parquet"
    run("scrub", "--store", store, "--input", parts, "--output", kept, "--suppressed", gone)
    want_kept, want_gone = pq.read_table(kept), pq.read_table(gone)
    assert "duplicate" in want_gone.column("reason").to_pylist()

    bundle = tmp_path / "bundle.tar.gz"
    run("bundle", "--store", store, "--output", bundle)
    df = spark.read.parquet(str(parts))
    got_kept, got_gone = optscrub.spark.scrub(df, str(bundle), keep_order=True)
    got_kept = got_kept.toArrow()
    got_gone = got_gone.toArrow()
    assert got_kept.column_names == want_kept.column_names
    assert got_gone.column_names == want_gone.column_names
    assert rows(got_kept) == rows(want_kept)
    assert rows(got_gone) == rows(want_gone)

    # a bundle scrubs from Python as its store does
    py_kept, py_gone = optscrub.Store(bundle).scrub(campaign)
    direct_kept, direct_gone = optscrub.Store(store).scrub(campaign)
    assert rows(py_kept) == rows(direct_kept) and rows(py_gone) == rows(direct_gone)
    with pytest.raises(optscrub.UsageError, match="is a bundle"):
        optscrub.Store(bundle).check("+447700900001")


def test_spark_keeps_duplicates_as_the_cli(spark, generated, tmp_path):
    # without the duplicate rule and the order, the input order is not
    # carried: the same rows, in Spark's order
    store, campaign, _ = generated
    parts = tmp_path / "parts"
    parts.mkdir()
    half = campaign.num_rows // 2
    pq.write_table(campaign.slice(0, half), parts / "part-0.parquet", row_group_size=1000)
    pq.write_table(campaign.slice(half), parts / "part-1.parquet", row_group_size=1000)
    kept, gone = tmp_path / "kept.parquet", tmp_path / "gone.parquet"
    run("scrub", "--store", store, "--input", parts, "--output", kept, "--suppressed", gone, "--keep-duplicates")
    bundle = tmp_path / "bundle.tar.gz"
    run("bundle", "--store", store, "--output", bundle)
    got_kept, got_gone = optscrub.spark.scrub(spark.read.parquet(str(parts)), str(bundle), keep_duplicates=True)
    got_kept, got_gone = got_kept.toArrow(), got_gone.toArrow()
    assert got_kept.column_names == pq.read_table(kept).column_names
    assert sorted(rows(got_kept), key=repr) == sorted(rows(pq.read_table(kept)), key=repr)
    assert sorted(rows(got_gone), key=repr) == sorted(rows(pq.read_table(gone)), key=repr)
