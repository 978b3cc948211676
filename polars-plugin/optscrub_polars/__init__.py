"""optscrub as a Polars expression.

Importing this package adds an ``optscrub`` namespace to Polars
expressions::

    import polars as pl
    import optscrub_polars  # noqa: F401

    df.with_columns(
        reason=pl.col("phone").optscrub.reason(
            store="/data/optscrub", account=pl.col("account_id"), sender=pl.col("sender")
        )
    )

``reason`` is null for a row that may be messaged and otherwise says why
not (``account_opt_out``, ``sender_opt_out``, ``invalid_phone``, ...), as
``optscrub scrub`` decides it for the same row. The duplicate rule needs
the other rows, so it is not part of the expression (``optscrub.polars``
applies it in a lazy plan).

``account`` and ``sender`` are each an expression (a column) or a string
(one account or sender for every row, as ``--account`` and ``--sender``:
used where the column is null or absent). The store is opened once per
process and reopened when another process has ingested into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import polars as pl
from polars.plugins import register_plugin_function

__all__ = ["reason"]

_HERE = Path(__file__).parent

IntoExpr = Union[pl.Expr, str, None]


def _column(value: IntoExpr) -> tuple:
    """(an expression for the plugin, a literal for the kwargs)."""
    if isinstance(value, pl.Expr):
        return value, None
    return pl.lit(None, dtype=pl.String), value


def reason(
    phone: pl.Expr,
    store: Union[str, Path],
    account: IntoExpr = None,
    sender: IntoExpr = None,
    default_country: Optional[str] = None,
) -> pl.Expr:
    """The reason a row may not be messaged (null if it may)."""
    account_expr, account_lit = _column(account)
    sender_expr, sender_lit = _column(sender)
    return register_plugin_function(
        plugin_path=_HERE,
        function_name="reason",
        args=[phone, account_expr, sender_expr],
        kwargs={
            "store": str(store),
            "account": account_lit,
            "sender": sender_lit,
            "default_country": default_country,
        },
        is_elementwise=True,
    )


@pl.api.register_expr_namespace("optscrub")
class OptscrubNamespace:
    """``pl.col("phone").optscrub.reason(store=..., account=..., sender=...)``."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def reason(
        self,
        store: Union[str, Path],
        account: IntoExpr = None,
        sender: IntoExpr = None,
        default_country: Optional[str] = None,
    ) -> pl.Expr:
        """The reason a row may not be messaged (null if it may)."""
        return reason(self._expr, store, account=account, sender=sender, default_country=default_country)
