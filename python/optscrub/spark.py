"""optscrub on Spark: scrub a DataFrame on the executors, with a bundle.

:func:`scrub` ships a bundle (``optscrub bundle --store S --output B``)
to the executors, decides every row there with ``mapInArrow`` (the
engine's Arrow kernel, one open store per Python worker), and then applies
the duplicate rule across the whole DataFrame: of the rows that may be
messaged, the first of each (account, contact) in input order is kept.
Input order is the order ``optscrub scrub`` reads the same files in: by
file path, then row in the file (Spark's ``_metadata.file_path`` and
``_metadata.row_index``), so that the kept and suppressed rows are the
CLI's.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping, Optional, Tuple

import optscrub as _optscrub

#: The decision columns a scrub needs (the contact is only for decide).
_SCRUB_FIELDS = ("reason", "scope", "dedupe_key")

#: Hidden columns that carry the input order through the plan.
_FILE, _ROW = "__optscrub_file", "__optscrub_row"


def _ship(spark: Any, bundle: str) -> str:
    """Send the bundle to every executor; the name they find it under."""
    name = os.path.basename(bundle)
    for ext in (".tar.gz", ".tgz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    alias = f"{name}-{os.stat(bundle).st_size}"
    try:
        sc = spark.sparkContext
    except Exception:  # Spark Connect has no SparkContext
        sc = None
    if sc is not None:
        added = getattr(_ship, "_added", set())
        if (id(sc), alias) not in added:
            sc.addArchive(f"{os.path.abspath(bundle)}#{alias}")
            added.add((id(sc), alias))
            _ship._added = added  # type: ignore[attr-defined]
    else:
        spark.addArtifacts(os.path.abspath(bundle), archive=True)
        alias = os.path.basename(bundle)
    return alias


def _ordered(df: Any) -> Any:
    """``df`` with the input order as two columns: file path and row
    within the file for a DataFrame read from files, else the order of
    its partitions and rows."""
    from pyspark.sql import functions as F

    try:
        return df.select(
            "*",
            F.col("_metadata.file_path").alias(_FILE),
            F.col("_metadata.row_index").alias(_ROW),
        )
    except Exception:
        return df.select("*", F.lit("").alias(_FILE), F.monotonically_increasing_id().alias(_ROW))


def decide(
    df: Any,
    bundle: str,
    account: Optional[str] = None,
    sender: Optional[str] = None,
    default_country: Optional[str] = None,
    columns: Optional[Mapping[str, str]] = None,
) -> Any:
    """``df`` with :meth:`optscrub.Store.decide`'s columns (``reason``,
    ``scope``, ``contact``, ``dedupe_key``; duplicates not marked), worked
    out on the executors, one partition at a time."""
    return _decide(_ordered(df), bundle, account, sender, default_country, columns)


def _decide(df, bundle, account, sender, default_country, columns, fields=None):
    """``df`` with the decision columns ``fields`` (all four by default)."""
    from pyspark.sql import types as T

    for name in _optscrub.DECISION_COLUMNS:
        if name in df.columns:
            raise _optscrub.InputError(
                f"the data: has a column '{name}', which the decision adds; rename it first"
            )
    alias = _ship(df.sparkSession, bundle)
    fields = list(fields or _optscrub.DECISION_COLUMNS)
    decision = [
        T.StructField(name, T.LongType() if name == "dedupe_key" else T.StringType(), True)
        for name in _optscrub.DECISION_COLUMNS
        if name in fields
    ]
    kwargs = dict(account=account, sender=sender, default_country=default_country, columns=columns)

    def open_store():
        from pyspark import SparkFiles

        import optscrub

        where = os.path.join(SparkFiles.getRootDirectory(), alias)
        optscrub._owner_only(where)
        return optscrub.Store(where)

    def decided(store, table):
        import pyarrow as pa

        out = store.decide(table, **kwargs)
        # Spark has no unsigned integers: the key fits an int64
        at = out.schema.get_field_index("dedupe_key")
        out = out.set_column(at, pa.field("dedupe_key", pa.int64()), out.column(at).cast(pa.int64()))
        return out.drop_columns([c for c in _optscrub.DECISION_COLUMNS if c not in fields])

    # mapInArrow, not a scalar Arrow UDF on the decision's columns: the
    # UDF sends less to Python but queues and zips every row in the JVM,
    # and measured 1.1-1.2x slower on 10M rows (benches/python)
    schema = T.StructType(df.schema.fields + decision)

    def per_partition(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        store = open_store()
        for batch in batches:
            yield from decided(store, pa.Table.from_batches([batch])).to_batches()

    return df.mapInArrow(per_partition, schema)


def scrub(
    df: Any,
    bundle: str,
    account: Optional[str] = None,
    sender: Optional[str] = None,
    default_country: Optional[str] = None,
    keep_duplicates: bool = False,
    columns: Optional[Mapping[str, str]] = None,
    keep_order: bool = False,
) -> Tuple[Any, Any]:
    """``(kept, suppressed)`` DataFrames, as ``optscrub scrub`` writes
    them for the same files: ``kept`` has ``df``'s columns, ``suppressed``
    those plus ``reason`` and ``scope``. ``bundle`` is the path of a
    bundle on the driver. Rows come in no particular order unless
    ``keep_order`` (a sort by input order, one more shuffle). Both come
    from one plan: cache them if both are written and the input is
    expensive to read.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    names = list(df.columns)
    # the order columns cross into Python and back with every row (the
    # file path as text): only carried when the duplicate rule or the
    # order needs them
    if keep_duplicates and not keep_order:
        decided = _decide(df, bundle, account, sender, default_country, columns, _SCRUB_FIELDS)
    else:
        decided = _decide(_ordered(df), bundle, account, sender, default_country, columns, _SCRUB_FIELDS)
    if not keep_duplicates:
        # the first row of each key in input order is kept; only the rows
        # that may be messaged have a key, so only they are shuffled
        open_ = decided.filter(F.col("reason").isNull())
        first = Window.partitionBy("dedupe_key").orderBy(_FILE, _ROW)
        marked = open_.withColumn(
            "reason",
            F.when(F.row_number().over(first) > 1, F.lit("duplicate")).otherwise(F.col("reason")),
        )
        decided = decided.filter(F.col("reason").isNotNull()).unionByName(marked)
    if keep_order:
        decided = decided.orderBy(_FILE, _ROW)
    kept = decided.filter(F.col("reason").isNull()).select(*names)
    suppressed = decided.filter(F.col("reason").isNotNull()).select(*names, "reason", "scope")
    return kept, suppressed
