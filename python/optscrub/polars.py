"""optscrub in Polars plans, lazy and streaming.

:func:`decide` adds the decision columns to a LazyFrame through
``map_batches``, batch by batch (it runs under the streaming engine), and
:func:`scrub` adds the duplicate rule after it, as Polars expressions:

>>> import polars as pl
>>> lf = pl.scan_csv(recipients_csv)
>>> out = optscrub.polars.scrub(lf, store).collect(engine="streaming")
>>> out.filter(pl.col("reason").is_null()).height
4
>>> out.group_by("reason").len().sort("reason").rows()[:3]
[(None, 4), ('account_opt_out', 2), ('duplicate', 1)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

import optscrub as _optscrub

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl


def decided_schema(schema: Any) -> "pl.Schema":
    """The schema of :func:`decide`'s frames: the input's, then
    ``reason``, ``scope``, ``contact`` (text) and ``dedupe_key`` (u64)."""
    import polars as pl

    out = dict(schema)
    for name in _optscrub.DECISION_COLUMNS:
        if name in out:
            raise _optscrub.InputError(
                f"the data: has a column '{name}', which the decision adds; rename it first"
            )
    out.update(reason=pl.String, scope=pl.String, contact=pl.String, dedupe_key=pl.UInt64)
    return pl.Schema(out)


def decide(
    lf: "pl.LazyFrame",
    store: "_optscrub.Store",
    account: Optional[str] = None,
    sender: Optional[str] = None,
    default_country: Optional[str] = None,
    columns: Optional[Mapping[str, str]] = None,
) -> "pl.LazyFrame":
    """``lf`` with :meth:`optscrub.Store.decide`'s columns added, batch
    by batch (``map_batches(..., streamable=True)``). Duplicates are not
    marked: use :func:`optscrub.mark_duplicates` or :func:`scrub`."""

    def one(df: "pl.DataFrame") -> "pl.DataFrame":
        return store.decide(
            df, account=account, sender=sender, default_country=default_country, columns=columns
        )

    return lf.map_batches(one, schema=decided_schema(lf.collect_schema()), streamable=True)


def scrub(lf: "pl.LazyFrame", store: "_optscrub.Store", **kwargs: Any) -> "pl.LazyFrame":
    """:func:`decide` then the duplicate rule: every row, with ``reason``
    null for the rows that may be messaged. Filter on it for the kept
    rows; the CLI's kept and suppressed outputs are the two sides."""
    return _optscrub.mark_duplicates(decide(lf, store, **kwargs))
