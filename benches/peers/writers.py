"""Rewrite a Parquet file as another tool writes it, for benches/peers/matrix.sh.

Each writer keeps the rows and their order and uses zstd and row groups of
1M rows, as a data engineer's pipeline would; the encodings, page sizes,
statistics and the Arrow types recorded are each tool's own.

Spark (pyspark, local[2]) writes with its own defaults but zstd: row
groups by size (128 MB), one part file (`coalesce(1)` keeps the order),
moved to DST.

usage: writers.py {polars|pyarrow|duckdb|spark} SRC DST
"""
import sys


def polars(src, dst):
    import polars as pl

    pl.read_parquet(src).write_parquet(dst, compression="zstd", row_group_size=1_000_000)


def pyarrow(src, dst):
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(src), dst, compression="zstd", row_group_size=1_000_000)


def duckdb(src, dst):
    import duckdb as d

    d.connect().execute(
        f"COPY (SELECT * FROM read_parquet('{src}')) TO '{dst}' "
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
    )


def spark(src, dst):
    import glob
    import os
    import shutil
    import tempfile

    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .getOrCreate()
    )
    tmp = tempfile.mkdtemp()
    try:
        out = os.path.join(tmp, "out")
        s.read.parquet(os.path.abspath(src)).coalesce(1).write.parquet(out)
        (part,) = glob.glob(os.path.join(out, "part-*.parquet"))
        shutil.move(part, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        s.stop()


if __name__ == "__main__":
    writer, src, dst = sys.argv[1:4]
    {"polars": polars, "pyarrow": pyarrow, "duckdb": duckdb, "spark": spark}[writer](src, dst)
