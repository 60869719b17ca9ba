"""The store's connection: open, configure, migrate, flush and close, and the write transaction.

:class:`StoreBase` is what :class:`~comet.core.storage.Store` adds its queries to. The query methods
are ``@timed`` (:mod:`comet.core.storage.timing`), which checks the store is open and turns an
``sqlite3.Error`` into a :class:`StorageError`; the plumbing here lets ``sqlite3.Error`` through.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import aiosqlite
from prometheus_client import CollectorRegistry

from comet.core.storage import migrations
from comet.core.storage.errors import StorageError, classify
from comet.core.storage.records import utc_now
from comet.core.storage.timing import recorders_for
from instrumentation.decorators import CallRecorder
from instrumentation.metrics import default_registry

log = logging.getLogger("comet.core.storage")

T = TypeVar("T")

#: How long a failed open waits for aiosqlite's worker thread to end (it has one no-op left to run).
_WORKER_JOIN_TIMEOUT = 5.0
#: Seconds between two tries of setting up a file that another process is setting up too.
SET_UP_RETRY_DELAY = 0.02


async def _wait_for_worker(connection: aiosqlite.Connection) -> None:
    """Wait, off the event loop, until the worker thread of a connection that failed to open ends.

    When connecting fails, aiosqlite queues the stop of its worker thread but does not wait for it;
    the thread then resolves that stop's future on the event loop. If the loop is closed by then (the
    process is exiting because the database could not be opened), the thread dies with
    "RuntimeError: Event loop is closed" and Python prints its traceback after our clean message.
    """
    # aiosqlite >= 0.21 runs the worker as ``Connection._thread``; older versions were the Thread.
    thread = connection if isinstance(connection, threading.Thread) else getattr(connection, "_thread", None)
    if isinstance(thread, threading.Thread) and thread.is_alive():
        await asyncio.to_thread(thread.join, _WORKER_JOIN_TIMEOUT)


def _read_only_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


class StoreBase:
    """The connection's lifecycle and transactions; :class:`Store` holds the queries."""

    def __init__(
        self, conn: aiosqlite.Connection, path: Path, *, read_only: bool, registry: CollectorRegistry | None
    ) -> None:
        self._conn = conn
        self.path = path
        self.read_only = read_only
        # One connection, so concurrent commands must not interleave statements inside each
        # other's transaction: writes take this lock for the whole BEGIN..COMMIT.
        self._write_lock = asyncio.Lock()
        self._closed = False
        # The registry is known here, so every timed method's series is created right away.
        registry = registry if registry is not None else default_registry()
        self._timers: Mapping[str, CallRecorder] = recorders_for(type(self), registry)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        registry: CollectorRegistry | None = None,
        busy_timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        read_only: bool = False,
    ) -> Self:
        """Open (creating if needed) the database at ``path`` and apply pending migrations.

        ``read_only`` opens the file with SQLite's ``mode=ro`` (what SQLite falls back to when the
        file is not writable): reads work, writes raise ``StorageError("read_only")``.
        Raises StorageError when the file cannot be opened or migrated.
        """
        if synchronous not in ("FULL", "NORMAL"):  # goes into a PRAGMA: only the two safe values
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        db_path = Path(path)
        try:
            if read_only:
                pending = aiosqlite.connect(_read_only_uri(db_path), uri=True, isolation_level=None)
            else:
                db_path.parent.mkdir(parents=True, exist_ok=True)
                pending = aiosqlite.connect(db_path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(classify(exc), "open", f"{db_path}: {exc}") from exc
        try:
            conn = await pending
        except BaseException as exc:
            await _wait_for_worker(pending)
            if isinstance(exc, sqlite3.Error | OSError):
                raise StorageError(classify(exc), "open", f"{db_path}: {exc}") from exc
            raise
        store = cls(conn, db_path, read_only=read_only, registry=registry)
        try:
            await store._set_up(busy_timeout, synchronous)
        except sqlite3.Error as exc:
            await conn.close()
            raise StorageError(classify(exc), "open", f"{db_path}: {exc}") from exc
        except BaseException:
            await conn.close()
            raise
        log.info(
            "storage opened: %s (schema v%d, journal=wal, synchronous=%s%s)",
            db_path,
            migrations.MIGRATIONS[-1][0],
            synchronous,
            ", read-only" if read_only else "",
        )
        return store

    async def _set_up(self, busy_timeout: float, synchronous: str) -> None:
        """Configure the connection and migrate, again while another process holds the file, for at
        most ``busy_timeout``.

        SQLite answers "database is locked" at once, without waiting in its busy handler, where
        waiting could deadlock: two shard processes starting on one new file, one switching it to
        WAL or migrating while the other reads it (seen here about once in ten starts of four
        processes). Both steps are idempotent, so the one that lost tries again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + busy_timeout
        while True:
            try:
                await self._configure(busy_timeout, synchronous)
                await self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if classify(exc) != "locked" or loop.time() >= deadline:
                    raise
                log.info("storage open: %s is busy (%s); trying again", self.path, exc)
                await asyncio.sleep(SET_UP_RETRY_DELAY)  # the other process's step takes milliseconds

    async def _configure(self, busy_timeout: float, synchronous: str) -> None:
        await self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not self.read_only:
            row = await self._fetchone("PRAGMA journal_mode = WAL")
            if row is None or str(row[0]).lower() != "wal":
                raise StorageError("other", "open", f"could not enable WAL mode (got {row!r})")
        await self._conn.execute(f"PRAGMA synchronous = {synchronous}")
        await self._conn.execute("PRAGMA foreign_keys = ON")

    async def _migrate(self) -> None:
        if not self.read_only:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        current = await self.schema_version()
        known = migrations.MIGRATIONS
        pending = [m for m in known if m[0] > current]
        if not pending:
            return
        if self.read_only:
            detail = f"schema is v{current}, v{known[-1][0]} needed, and the file is read-only"
            raise StorageError("read_only", "migrate", detail)
        for version, name, statements in pending:
            async with self._write_lock:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    # Read again under the write lock: another process (a second shard starting on
                    # the same file) may have applied it since we looked.
                    if await self.schema_version() >= version:
                        await self._conn.execute("COMMIT")
                        continue
                    for statement in statements:
                        await self._conn.execute(statement)
                    await self._conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, utc_now()),
                    )
                    await self._conn.execute("COMMIT")
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
            log.info("storage migration %d applied: %s", version, name)

    async def schema_version(self) -> int:
        """The highest applied migration (0 for a new file)."""
        exists = await self._fetchone(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        if exists is None:
            return 0
        row = await self._fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row is not None else 0

    async def flush(self) -> None:
        """Fold the write-ahead log into the database file (at shutdown, before :meth:`close`).

        Every acknowledged write is already committed (``synchronous=FULL``); this makes the ``.db``
        file complete by itself. A failure (another process reading, a full disk) is logged: the WAL
        stays valid and SQLite folds it in on the next open.
        """
        if self._closed or self.read_only:
            return
        try:
            async with self._write_lock:
                await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except (sqlite3.Error, ValueError) as exc:
            log.warning("storage: could not checkpoint the write-ahead log at shutdown: %s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- plumbing -----------------------------------------------------------------------------

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def _write(self, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one IMMEDIATE transaction; returns only once it is committed.

        On any failure the transaction is rolled back before the exception goes on to the caller's
        ``@timed`` boundary, which reports an ``sqlite3.Error`` as the operation's StorageError.
        """
        async with self._write_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = await body(self._conn)
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
            return result

    async def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                await self._conn.execute("ROLLBACK")
        except sqlite3.Error:  # the transaction may already be gone (e.g. SQLITE_FULL rolls back)
            log.debug("rollback failed", exc_info=True)
