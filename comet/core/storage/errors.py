"""``StorageError``: a database failure classified into a ``kind`` the cogs can explain to users."""

from __future__ import annotations

import sqlite3
from typing import Literal

from instrumentation.failures import allow_error_class

StorageErrorKind = Literal["locked", "read_only", "full", "io", "corrupt", "closed", "unavailable", "other"]

_ERROR_KINDS: dict[int, StorageErrorKind] = {
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_IOERR: "io",
    sqlite3.SQLITE_CANTOPEN: "io",
    sqlite3.SQLITE_CORRUPT: "corrupt",
    sqlite3.SQLITE_NOTADB: "corrupt",
}

_MESSAGE_KEYS: dict[str, str] = {
    "locked": "storage.locked",
    "read_only": "storage.read_only",
    "full": "storage.full",
    "unavailable": "storage.unavailable",
}


class StorageError(Exception):
    """A database failure with a ``kind`` the cogs can explain to users."""

    def __init__(self, kind: StorageErrorKind, operation: str, detail: str) -> None:
        super().__init__(f"storage {operation} failed ({kind}): {detail}")
        self.kind: StorageErrorKind = kind
        self.operation = operation
        self.detail = detail

    @property
    def message_key(self) -> str:
        """The i18n key (comet/locales/*/community.json) of the message users see for this error."""
        return _MESSAGE_KEYS.get(self.kind, "storage.other")


# A command that fails on the database counts as comet_command_errors_total{error="StorageError"}.
allow_error_class(StorageError)


def classify(exc: BaseException) -> StorageErrorKind:
    """The kind of a ``sqlite3`` (or ``OSError``) failure, from its SQLite result code if it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        # Extended result codes (SQLITE_IOERR_WRITE, ...) keep the primary code in the low byte.
        return _ERROR_KINDS.get(code & 0xFF, "other")
    text = str(exc).lower()
    if "locked" in text:
        return "locked"
    if "readonly" in text or "read-only" in text:
        return "read_only"
    return "other"
