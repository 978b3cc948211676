"""Scrub jobs from Python and Spark, for benches/python/run.sh.

Each job reads a campaign (Parquet), keeps the rows that may be messaged,
and writes them as zstd Parquet:

  polars-copy       Polars reads the file and writes it back: the floor
                    under polars-optscrub
  polars-optscrub   Polars reads the file, optscrub.Store.scrub decides,
                    Polars writes the kept rows
  polars-plugin     Polars streaming: scan_parquet, the optscrub_polars
                    expression, filter, sink_parquet (duplicates kept only)
  spark-optscrub    Spark local[2], optscrub.spark.scrub with a bundle
  spark-antijoin    Spark local[2], two anti-joins against the
                    suppression list that `optscrub export` wrote

usage: jobs.py JOB CAMPAIGN STORE_OR_BUNDLE OPTOUTS OUT [--dedupe]

Duplicates are kept (as the peers' jobs in benches/peers do) unless
--dedupe is given.
"""
import os
import sys


def polars_copy(campaign, _store, _optouts, out, _dedupe):
    import polars as pl

    pl.read_parquet(campaign).write_parquet(out, compression="zstd")


def polars_optscrub(campaign, store, _optouts, out, dedupe):
    import polars as pl

    import optscrub

    df = pl.read_parquet(campaign)
    kept, _ = optscrub.Store(store).scrub(df, keep_duplicates=not dedupe)
    kept.write_parquet(out, compression="zstd")


def polars_plugin(campaign, store, _optouts, out, _dedupe):
    import polars as pl

    import optscrub_polars  # noqa: F401

    reason = pl.col("phone").optscrub.reason(store=store, account=pl.col("account_id"), sender=pl.col("sender"))
    (
        pl.scan_parquet(campaign)
        .with_columns(reason=reason)
        .filter(pl.col("reason").is_null())
        .drop("reason")
        .sink_parquet(out, compression="zstd")
    )


def spark_session():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def spark_optscrub(campaign, bundle, _optouts, out, dedupe):
    import optscrub.spark

    spark = spark_session()
    kept, _ = optscrub.spark.scrub(spark.read.parquet(campaign), bundle, keep_duplicates=not dedupe)
    kept.write.mode("overwrite").option("compression", "zstd").parquet(out)


def spark_antijoin(campaign, _store, optouts, out, dedupe):
    spark = spark_session()
    spark.read.parquet(campaign).createOrReplaceTempView("r")
    spark.read.parquet(optouts).createOrReplaceTempView("o")
    kept = spark.sql("""
        SELECT r.* FROM r
        LEFT ANTI JOIN (SELECT account_id, phone FROM o WHERE scope = 'account') a
          ON r.account_id = a.account_id AND r.phone = a.phone
        LEFT ANTI JOIN (SELECT account_id, scope, phone FROM o WHERE scope <> 'account') s
          ON r.account_id = s.account_id AND r.sender = s.scope AND r.phone = s.phone
    """)
    kept.write.mode("overwrite").option("compression", "zstd").parquet(out)


if __name__ == "__main__":
    job, campaign, store, optouts, out = sys.argv[1:6]
    dedupe = "--dedupe" in sys.argv[6:]
    {
        "polars-copy": polars_copy,
        "polars-optscrub": polars_optscrub,
        "polars-plugin": polars_plugin,
        "spark-optscrub": spark_optscrub,
        "spark-antijoin": spark_antijoin,
    }[job](campaign, store, optouts, out, dedupe)
