"""SQLite storage for oshi registrations and moderation records (aiosqlite, WAL).

Durability: a write method returns only after its transaction is committed, and the commands
answer the user only after the write method returned, so whatever a user was told is on disk.
The database runs in WAL mode with ``synchronous=FULL``: every commit fsyncs the WAL. WAL with
``synchronous=NORMAL`` already survives a killed process (SIGKILL: the committed frames are in
the OS page cache and the next opener replays the WAL); FULL also survives power loss and
kernel crashes, at the cost of one fsync per write, which a community bot's write rate (a few per
second at most) does not notice. ``Store.open(..., synchronous="NORMAL")`` trades that back.

Failures the operator must act on (another process holding the lock past ``busy_timeout``, a
read-only file or file system, a full disk) raise :class:`StorageError` with a ``kind``; the cogs
turn it into a clear message for the user and a log line, never a crash.

Every public data method of :class:`Store` is ``@timed``: recorded as ``storage.<method>`` in the
``comet_function_*`` series (as ``monitor_performance`` records them) on the registry given to
:meth:`Store.open`, so the dashboards show storage time and errors.

Modules: :mod:`~comet.core.storage.connection` (open, migrate, flush, close, transactions),
:mod:`~comet.core.storage.store` (the queries), :mod:`~comet.core.storage.timing` (``@timed``),
:mod:`~comet.core.storage.errors`, :mod:`~comet.core.storage.records`, :mod:`~comet.core.storage.migrations`.
"""

from __future__ import annotations

from comet.core.storage.errors import StorageError, StorageErrorKind
from comet.core.storage.migrations import MIGRATIONS, SCHEMA_VERSION
from comet.core.storage.records import ModAction, OshiEntry, WarningRecord
from comet.core.storage.store import Store, store_of
from comet.core.storage.timing import SLOW_THRESHOLD, timed

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SLOW_THRESHOLD",
    "ModAction",
    "OshiEntry",
    "StorageError",
    "StorageErrorKind",
    "Store",
    "WarningRecord",
    "store_of",
    "timed",
]
