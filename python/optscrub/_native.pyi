# Type stubs of optscrub's compiled engine; the documented API is
# optscrub.Store in __init__.py, which wraps NativeStore.
from os import PathLike
from typing import Any, Dict, Optional, Tuple, Union

import pyarrow as pa

_Path = Union[str, PathLike[str]]

class OptscrubError(Exception): ...
class UsageError(OptscrubError): ...
class InputError(OptscrubError): ...
class ConfigError(OptscrubError): ...
class StoreLockedError(OptscrubError): ...
class StoreDamagedError(OptscrubError): ...
class UnsafeStoreError(OptscrubError): ...
class StoreIoError(OptscrubError): ...
class OutputError(OptscrubError): ...

def version() -> str: ...

class NativeStore:
    def __init__(self, path: _Path) -> None: ...
    def generation(self) -> int: ...
    def exposed(self) -> Optional[str]: ...
    def opt_outs(self) -> int: ...
    def scrub(
        self,
        data: Any,
        account: Optional[str] = None,
        sender: Optional[str] = None,
        default_country: Optional[str] = None,
        keep_duplicates: bool = False,
        phone_column: Optional[str] = None,
        account_column: Optional[str] = None,
        sender_column: Optional[str] = None,
        country_column: Optional[str] = None,
    ) -> Tuple[pa.Table, pa.Table, str]: ...
    def decide(
        self,
        data: Any,
        account: Optional[str] = None,
        sender: Optional[str] = None,
        default_country: Optional[str] = None,
        phone_column: Optional[str] = None,
        account_column: Optional[str] = None,
        sender_column: Optional[str] = None,
        country_column: Optional[str] = None,
    ) -> pa.Table: ...
    def check(
        self,
        phone: str,
        account: Optional[str] = None,
        sender: Optional[str] = None,
        default_country: Optional[str] = None,
    ) -> str: ...
    def ingest_replies(
        self,
        data: Any,
        outbox: Optional[_Path] = None,
        review: Optional[_Path] = None,
        rejects: Optional[_Path] = None,
        columns: Optional[Dict[str, str]] = None,
        timezone: Optional[str] = None,
    ) -> str: ...
    def ingest_webform(
        self,
        data: Any,
        rejects: Optional[_Path] = None,
        columns: Optional[Dict[str, str]] = None,
        default_country: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> str: ...
    def ingest_signals(
        self,
        data: Any,
        kind: str = "send-log",
        provider: Optional[str] = None,
        profile: Optional[str] = None,
        rejects: Optional[_Path] = None,
        columns: Optional[Dict[str, str]] = None,
        default_country: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> str: ...
    def ingest_import(
        self,
        data: Any,
        account: str,
        senders: Optional[str] = None,
        rejects: Optional[_Path] = None,
        columns: Optional[Dict[str, str]] = None,
        default_country: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> str: ...
