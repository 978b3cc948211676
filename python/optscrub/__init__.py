"""optscrub from Python: scrub recipient lists against an opt-out store.

The engine is optscrub's Rust library, the one the ``optscrub`` command
runs: a frame scrubbed here gets the same kept rows, suppressed rows,
reasons and scopes as ``optscrub scrub`` gives for the same rows in the
same order. Data is handed over through Arrow's C stream interface, so a
pyarrow Table, a Polars DataFrame, a DuckDB relation or a pandas DataFrame
goes in without being copied; the work runs with the GIL released, on all
cores.

>>> store = optscrub.Store(store_path)
>>> kept, suppressed = store.scrub(recipients)
>>> kept.num_rows, suppressed.num_rows
(4, 9)
>>> suppressed.column("reason").to_pylist()[:3]
['account_opt_out', 'sender_opt_out', 'sender_opt_out']
>>> store.check("+447700900001", account="acme")["reason"]
'account_opt_out'
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from . import _native
from ._native import (
    ConfigError,
    InputError,
    OptscrubError,
    OutputError,
    StoreDamagedError,
    StoreIoError,
    StoreLockedError,
    UnsafeStoreError,
    UsageError,
)

__all__ = [
    "Store",
    "Scrubbed",
    "ScrubStats",
    "RepliesSummary",
    "WebformSummary",
    "SignalsSummary",
    "ImportSummary",
    "DECISION_COLUMNS",
    "mark_duplicates",
    "OptscrubError",
    "UsageError",
    "InputError",
    "ConfigError",
    "StoreLockedError",
    "StoreDamagedError",
    "UnsafeStoreError",
    "StoreIoError",
    "OutputError",
    "__version__",
]

__version__: str = _native.version()

#: The columns :meth:`Store.decide` adds to every row, in order.
DECISION_COLUMNS: Tuple[str, ...] = ("reason", "scope", "contact", "dedupe_key")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ScrubStats:
    """What a scrub did: rows in, kept, suppressed per reason."""

    rows_in: int
    kept: int
    suppressed: int
    #: Suppressed rows per reason, every reason named.
    reasons: Dict[str, int]
    #: Account or sender ids written with another case than the config's,
    #: as (written, configured): their rows were suppressed as unknown.
    case_hints: List[Tuple[str, str]]
    #: The store generation the rows were decided against.
    store_generation: int


class _ScrubbedPair(NamedTuple):
    kept: Any
    suppressed: Any


class Scrubbed(_ScrubbedPair):
    """``(kept, suppressed)``, which unpacks as a pair; ``.stats`` says what
    the scrub did."""

    stats: ScrubStats


@dataclass(frozen=True)
class RepliesSummary:
    """What :meth:`Store.ingest_replies` did (the CLI's ``--summary``)."""

    messages: int
    new_opt_outs: int
    new_opt_ins: int
    already_known: int
    outbox: int
    outbox_by_kind: Dict[str, int]
    handed_over: Optional[int]
    pending_replies: int
    review: int
    rejected: int
    new_by_source_and_scope: Dict[str, Any] = field(default_factory=dict)
    command: str = "ingest replies"


@dataclass(frozen=True)
class WebformSummary:
    """What :meth:`Store.ingest_webform` did."""

    events_read: int
    new_events: int
    already_known: int
    rejected: int
    new_by_source_and_scope: Dict[str, Any] = field(default_factory=dict)
    command: str = "ingest webform"


@dataclass(frozen=True)
class SignalsSummary:
    """What :meth:`Store.ingest_signals` did."""

    events_read: int
    new_events: int
    already_known: int
    not_signals: int
    rejected: int
    new_by_source_and_scope: Dict[str, Any] = field(default_factory=dict)
    command: str = "ingest signals"


@dataclass(frozen=True)
class ImportSummary:
    """What :meth:`Store.ingest_import` did."""

    account: str
    events_read: int
    new_events: int
    already_known: int
    rejected: int
    command: str = "ingest import"


def _summary(cls, text: str):
    raw = json.loads(text)
    names = {f for f in cls.__dataclass_fields__}
    return cls(**{k: v for k, v in raw.items() if k in names})


def _is_polars(data: Any) -> bool:
    return type(data).__module__.startswith("polars")


def _arrow_input(data: Any) -> Any:
    """Something the engine can read as an Arrow stream."""
    if _is_polars(data) and type(data).__name__ == "LazyFrame":
        raise TypeError(
            "a Polars LazyFrame is scrubbed by the engine that runs it: use "
            "optscrub.polars.decide(lf, store) (then .collect(engine='streaming')), "
            "or store.scrub(lf.collect())"
        )
    if _is_polars(data) and type(data).__name__ == "DataFrame":
        # its chunks as they are (string_view, no copy); the frame's own
        # Arrow stream would rechunk it, a copy of every column per call
        try:
            import polars as pl

            return data.to_arrow(compat_level=pl.CompatLevel.newest())
        except (AttributeError, TypeError):
            pass
    if hasattr(data, "__arrow_c_stream__"):
        return data
    import pyarrow as pa

    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "arrow") and type(data).__module__.startswith("duckdb"):
        return data.arrow()
    raise TypeError(
        f"cannot read {type(data).__name__} as Arrow data: pass a pyarrow Table or "
        "RecordBatchReader, a Polars or pandas DataFrame, or a DuckDB relation"
    )


def _like_input(data: Any, table: Any) -> Any:
    """The answer in the kind of frame the data came in: Polars for Polars,
    a RecordBatch for a RecordBatch, else a pyarrow Table."""
    if _is_polars(data):
        import polars as pl

        return pl.from_arrow(table, rechunk=False)
    import pyarrow as pa

    if isinstance(data, pa.RecordBatch):
        return table.combine_chunks().to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], schema=table.schema)
    return table


_COLUMN_KEYS = ("phone", "account", "sender", "country")


def _columns(columns: Optional[Mapping[str, str]]) -> Dict[str, Optional[str]]:
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(_COLUMN_KEYS))
    if unknown:
        raise UsageError(
            f"columns: {', '.join(repr(k) for k in unknown)} not known; "
            f"the keys are {', '.join(_COLUMN_KEYS)}"
        )
    return {f"{k}_column": columns.get(k) for k in _COLUMN_KEYS}


class Store:
    """An optscrub store folder (made by ``optscrub init``), opened for
    scrubbing and checking.

    ``path`` may also be a bundle (``optscrub bundle``): its ``.tar.gz``
    is unpacked once into the temporary folder, or give the folder it was
    unpacked into. A bundle scrubs and decides as its store does; ``check``
    and the ``ingest_*`` methods need the store itself.

    A store is opened once per process and kept while its generation is
    current: ``Store(path)`` again, or any call after another process
    ingested, reopens it only if the store has moved on.

    Raises :class:`StoreDamagedError`, :class:`UnsafeStoreError` or
    :class:`StoreIoError` when it cannot be opened, with the CLI's
    message and remedy.
    """

    def __init__(self, path: PathLike) -> None:
        self.path: str = _unpacked(os.fspath(path))
        self._native = _native.NativeStore(self.path)
        exposed = self._native.exposed()
        if exposed:
            warnings.warn(exposed, stacklevel=2)

    def __repr__(self) -> str:
        return f"optscrub.Store({self.path!r}, generation={self.generation})"

    @property
    def generation(self) -> int:
        """The store's current generation (one more per commit)."""
        return self._native.generation()

    @property
    def opt_outs(self) -> int:
        """Opted-out (account, scope, contact) keys in the store."""
        return self._native.opt_outs()

    def scrub(
        self,
        data: Any,
        account: Optional[str] = None,
        sender: Optional[str] = None,
        default_country: Optional[str] = None,
        keep_duplicates: bool = False,
        columns: Optional[Mapping[str, str]] = None,
    ) -> Scrubbed:
        """Split recipient rows into those that may be messaged and those
        that may not, as ``optscrub scrub`` does.

        ``data`` is a pyarrow Table or RecordBatchReader, a Polars or
        pandas DataFrame, a DuckDB relation, or anything with
        ``__arrow_c_stream__``. ``account`` and ``sender`` apply to rows
        that name none (``--account``, ``--sender``); ``columns`` renames
        the columns read, as ``{"phone": ..., "account": ..., "sender":
        ..., "country": ...}`` (defaults ``phone``, ``account_id``,
        ``sender``; a ``country`` column is read only when named).

        Returns ``(kept, suppressed)``: Polars DataFrames for a Polars
        frame, pyarrow Tables otherwise. ``suppressed`` has the input's
        columns plus ``reason`` and ``scope``; ``.stats`` on the result
        says what was done.

        >>> result = store.scrub(recipients)
        >>> result.stats.reasons["duplicate"]
        1
        >>> kept, _ = store.scrub(recipients, keep_duplicates=True)
        >>> kept.num_rows
        5
        """
        kept, suppressed, stats = self._native.scrub(
            _arrow_input(data),
            account=account,
            sender=sender,
            default_country=default_country,
            keep_duplicates=keep_duplicates,
            **_columns(columns),
        )
        raw = json.loads(stats)
        raw["case_hints"] = [tuple(h) for h in raw["case_hints"]]
        out = Scrubbed(_like_input(data, kept), _like_input(data, suppressed))
        out.stats = ScrubStats(**raw)
        return out

    def decide(
        self,
        data: Any,
        account: Optional[str] = None,
        sender: Optional[str] = None,
        default_country: Optional[str] = None,
        columns: Optional[Mapping[str, str]] = None,
    ) -> Any:
        """Every row with its decision added, for engines that run their own
        plan (Polars ``map_batches``, Spark ``mapInArrow``): rows are not
        dropped or reordered, and four columns are added:

        - ``reason``: why the row may not be messaged; null if it may
          (before the duplicate rule);
        - ``scope``: the scope of the opt-out that applies (a sender, or
          ``account`` for the whole account);
        - ``contact``: the phone in E.164 form, null if it is not a number;
        - ``dedupe_key``: set on the rows that may be messaged, equal for
          two rows exactly when they have the same account and contact.

        The duplicate rule is then the engine's: of the rows with one
        ``dedupe_key``, the first in input order is kept and the others are
        duplicates (:func:`mark_duplicates` does it for Polars and
        pyarrow). Returns the kind of frame given (Polars, RecordBatch, or
        a pyarrow Table).

        >>> decided = store.decide(recipients)
        >>> decided.column_names[-4:]
        ['reason', 'scope', 'contact', 'dedupe_key']
        >>> decided.column("reason").null_count
        5
        """
        table = self._native.decide(
            _arrow_input(data),
            account=account,
            sender=sender,
            default_country=default_country,
            **_columns(columns),
        )
        return _like_input(data, table)

    def check(
        self,
        phone: str,
        account: Optional[str] = None,
        sender: Optional[str] = None,
        default_country: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Whether one contact may be messaged, as ``optscrub check --json``
        answers: for ``account`` (every account when ``None``) and
        ``sender`` (any of its senders when ``None``), with the events that
        decided.

        >>> answer = store.check("+447700900001", account="acme")
        >>> answer["sendable"], answer["scope"], answer["events"][0]["source"]
        (False, 'account', 'webform')
        """
        return json.loads(self._native.check(phone, account, sender, default_country))

    def ingest_replies(
        self,
        data: Any,
        outbox: Optional[PathLike] = None,
        review: Optional[PathLike] = None,
        rejects: Optional[PathLike] = None,
        columns: Optional[Mapping[str, str]] = None,
        timezone: Optional[str] = None,
    ) -> RepliesSummary:
        """Ingest inbound replies, as ``optscrub ingest replies`` does:
        opt-outs and opt-ins are committed with the replies to send.
        With ``outbox`` (a .csv or .parquet path), every pending reply is
        handed over to that file; without it they stay pending in the store
        (nothing is lost). ``columns`` renames ``id``, ``time``, ``from``,
        ``to``, ``body``, ``channel``."""
        return _summary(
            RepliesSummary,
            self._native.ingest_replies(
                _arrow_input(data),
                outbox=_path(outbox),
                review=_path(review),
                rejects=_path(rejects),
                columns=dict(columns) if columns else None,
                timezone=timezone,
            ),
        )

    def ingest_webform(
        self,
        data: Any,
        rejects: Optional[PathLike] = None,
        columns: Optional[Mapping[str, str]] = None,
        default_country: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> WebformSummary:
        """Ingest webform opt-outs (account-wide), as ``optscrub ingest
        webform`` does. ``columns`` renames ``account``, ``phone``,
        ``time``, ``id``."""
        return _summary(
            WebformSummary,
            self._native.ingest_webform(
                _arrow_input(data),
                rejects=_path(rejects),
                columns=dict(columns) if columns else None,
                default_country=default_country,
                timezone=timezone,
            ),
        )

    def ingest_signals(
        self,
        data: Any,
        kind: str = "send-log",
        provider: Optional[str] = None,
        profile: Optional[str] = None,
        rejects: Optional[PathLike] = None,
        columns: Optional[Mapping[str, str]] = None,
        default_country: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> SignalsSummary:
        """Ingest provider signals, as ``optscrub ingest signals`` does:
        ``kind="send-log"`` (error codes that mean an opt-out; ``provider``
        for rows without a provider column), ``"deactivations"`` (account-wide
        opt-outs of disconnected numbers) or ``"whatsapp"`` (flattened
        ``user_preferences`` rows; ``profile`` names the sender).
        ``columns`` renames ``id``, ``provider``, ``code``, ``from``,
        ``to`` (or ``phone``), ``time``, ``account``.

        >>> import pyarrow as pa
        >>> log = pa.table({"message_id": ["SM9"], "provider": ["twilio"], "error_code": ["21610"],
        ...                 "from": ["+447860009123"], "to": ["+447700900777"],
        ...                 "sent_at": ["2026-11-01T10:00:00Z"]})
        >>> store.ingest_signals(log).new_events
        1
        >>> store.check("+447700900777", account="acme", sender="+447860009123")["sendable"]
        False
        """
        return _summary(
            SignalsSummary,
            self._native.ingest_signals(
                _arrow_input(data),
                kind=kind,
                provider=provider,
                profile=profile,
                rejects=_path(rejects),
                columns=dict(columns) if columns else None,
                default_country=default_country,
                timezone=timezone,
            ),
        )

    def ingest_import(
        self,
        data: Any,
        account: str,
        senders: Optional[Union[str, List[str]]] = None,
        rejects: Optional[PathLike] = None,
        columns: Optional[Mapping[str, str]] = None,
        default_country: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> ImportSummary:
        """Import opt-outs for one account, as ``optscrub ingest import``
        does: account-wide without ``senders``, else mapped to those senders
        (a list, or comma-separated; rows with a ``sender`` column name
        their own). ``columns`` renames ``phone``, ``sender``, ``time``."""
        if isinstance(senders, (list, tuple)):
            senders = ",".join(senders)
        return _summary(
            ImportSummary,
            self._native.ingest_import(
                _arrow_input(data),
                account,
                senders=senders,
                rejects=_path(rejects),
                columns=dict(columns) if columns else None,
                default_country=default_country,
                timezone=timezone,
            ),
        )


def _unpacked(path: str) -> str:
    """A bundle's folder: ``path`` itself, or the folder its ``.tar.gz``
    is unpacked into (once; a bundle's name says its generation and
    checksum, so one name is one content)."""
    if not (os.path.isfile(path) and path.endswith((".tar.gz", ".tgz"))):
        return path
    import tarfile
    import tempfile

    name = os.path.basename(path)
    for ext in (".tar.gz", ".tgz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    stat = os.stat(path)
    root = os.path.join(tempfile.gettempdir(), f"optscrub-bundles-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    into = os.path.join(root, f"{name}-{stat.st_size}-{int(stat.st_mtime)}")
    if os.path.isdir(into):
        return into
    work = tempfile.mkdtemp(dir=root)
    with tarfile.open(path, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(work, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(work)
    _owner_only(work)
    try:
        os.rename(work, into)
    except OSError:
        # another process unpacked it first
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return into


def _owner_only(folder: str) -> None:
    """Folders 0700 and files 0600 under ``folder``, as a store's are
    (unpackers give folders the umask's modes): a bundle holds phone
    numbers. Best effort: a folder this user does not own is left."""
    for top, dirs, files in os.walk(folder):
        for name, mode in [(top, 0o700)] + [(os.path.join(top, f), 0o600) for f in files]:
            try:
                os.chmod(name, mode)
            except OSError:
                pass


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


def mark_duplicates(decided: Any) -> Any:
    """Apply the duplicate rule to rows from :meth:`Store.decide`, in their
    order: a row that may be messaged whose ``dedupe_key`` an earlier row
    has gets ``reason`` ``duplicate``. Takes and returns a Polars
    DataFrame or LazyFrame, or a pyarrow Table.

    >>> marked = optscrub.mark_duplicates(store.decide(recipients))
    >>> marked.column("reason").null_count
    4
    """
    if _is_polars(decided):
        import polars as pl

        first = pl.col("dedupe_key").is_first_distinct()
        dup = pl.col("reason").is_null() & ~first
        return decided.with_columns(
            reason=pl.when(dup).then(pl.lit("duplicate")).otherwise(pl.col("reason"))
        )
    import pyarrow as pa
    import pyarrow.compute as pc

    n = decided.num_rows
    try:
        import numpy as np

        place = pa.array(np.arange(n, dtype=np.int64))
    except ImportError:  # pragma: no cover - pyarrow without numpy
        place = pa.array(range(n), type=pa.int64())
    keys = decided.column("dedupe_key")
    # rows that may be messaged (the others have no key), first of each key
    rows = pa.table({"key": keys, "place": place}).filter(pc.is_valid(keys))
    first = rows.group_by("key", use_threads=False).aggregate([("place", "min")])
    later = pc.and_(pc.is_valid(keys), pc.invert(pc.is_in(place, value_set=first["place_min"])))
    reason = pc.if_else(later, pa.scalar("duplicate"), decided.column("reason"))
    at = decided.schema.get_field_index("reason")
    return decided.set_column(at, decided.schema.field(at), reason)
