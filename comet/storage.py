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

Every database method is wrapped with ``monitor_performance`` as ``storage.<method>`` on the
registry given to :meth:`Store.open`, so the dashboards show storage time and errors.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
from prometheus_client import CollectorRegistry

from instrumentation.decorators import monitor_performance
from instrumentation.failures import allow_error_class
from instrumentation.metrics import default_registry

log = logging.getLogger(__name__)

T = TypeVar("T")

StorageErrorKind = Literal["locked", "read_only", "full", "io", "corrupt", "closed", "unavailable", "other"]

#: Versioned schema migrations, applied in order at start-up, each in its own transaction.
#: Never edit a released migration: append a new one.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "oshi, warnings and moderation actions",
        (
            """CREATE TABLE oshi (
                guild_id   INTEGER NOT NULL,
                user_id    INTEGER NOT NULL,
                talent_key TEXT    NOT NULL,
                set_at     TEXT    NOT NULL,
                PRIMARY KEY (guild_id, user_id)
            )""",
            "CREATE INDEX oshi_by_talent ON oshi (guild_id, talent_key)",
            """CREATE TABLE warnings (
                id           INTEGER PRIMARY KEY AUTOINCREMENT,
                guild_id     INTEGER NOT NULL,
                user_id      INTEGER NOT NULL,
                moderator_id INTEGER NOT NULL,
                reason       TEXT    NOT NULL,
                created_at   TEXT    NOT NULL
            )""",
            "CREATE INDEX warnings_by_member ON warnings (guild_id, user_id)",
            """CREATE TABLE mod_actions (
                id           INTEGER PRIMARY KEY AUTOINCREMENT,
                guild_id     INTEGER NOT NULL,
                action       TEXT    NOT NULL,
                target_id    INTEGER,
                moderator_id INTEGER NOT NULL,
                reason       TEXT,
                created_at   TEXT    NOT NULL
            )""",
            "CREATE INDEX mod_actions_by_guild ON mod_actions (guild_id, id)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]

#: A database call slower than this (seconds) counts in comet_slow_calls_total and logs a warning.
SLOW_THRESHOLD = 0.5

#: Methods timed as ``storage.<name>``.
TIMED_METHODS = (
    "set_oshi",
    "get_oshi",
    "remove_oshi",
    "oshi_ranking",
    "add_warning",
    "list_warnings",
    "clear_warnings",
    "record_action",
    "list_actions",
)

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

_MESSAGE_KEYS: dict[str, str] = {
    "locked": "storage.locked",
    "read_only": "storage.read_only",
    "full": "storage.full",
    "unavailable": "storage.unavailable",
}


def store_of(bot: object) -> Store:
    """``bot.store``, or StorageError("unavailable") when the bot runs without a database."""
    store = getattr(bot, "store", None)
    if not isinstance(store, Store):
        raise StorageError("unavailable", "lookup", "the bot has no Store (database not opened)")
    return store


def _classify(exc: BaseException) -> StorageErrorKind:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _ERROR_KINDS.get(code & 0xFF, "other")
    text = str(exc).lower()
    if "locked" in text:
        return "locked"
    if "readonly" in text or "read-only" in text:
        return "read_only"
    return "other"


#: How long a failed open waits for aiosqlite's worker thread to end (it has one no-op left to run).
_WORKER_JOIN_TIMEOUT = 5.0


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class OshiEntry:
    guild_id: int
    user_id: int
    talent_key: str
    set_at: str


@dataclass(frozen=True)
class WarningRecord:
    id: int
    guild_id: int
    user_id: int
    moderator_id: int
    reason: str
    created_at: str


@dataclass(frozen=True)
class ModAction:
    id: int
    guild_id: int
    action: str
    target_id: int | None
    moderator_id: int
    reason: str | None
    created_at: str


class Store:
    """The bot's database. Create with ``await Store.open(path)``; ``await store.close()`` at exit."""

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
        # The registry is given, so monitor_performance creates each method's series right away:
        # the storage panels show 0 rather than nothing before the first call.
        registry = registry if registry is not None else default_registry()
        for name in TIMED_METHODS:
            label = f"storage.{name}"
            bound = getattr(self, name)
            setattr(
                self,
                name,
                monitor_performance(bound, name=label, slow_threshold=SLOW_THRESHOLD, registry=registry),
            )

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        registry: CollectorRegistry | None = None,
        busy_timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        read_only: bool = False,
    ) -> Store:
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
            raise StorageError(_classify(exc), "open", f"{db_path}: {exc}") from exc
        try:
            conn = await pending
        except BaseException as exc:
            await _wait_for_worker(pending)
            if isinstance(exc, sqlite3.Error | OSError):
                raise StorageError(_classify(exc), "open", f"{db_path}: {exc}") from exc
            raise
        store = cls(conn, db_path, read_only=read_only, registry=registry)
        try:
            await store._configure(busy_timeout, synchronous)
            await store._migrate()
        except sqlite3.Error as exc:
            await conn.close()
            raise StorageError(_classify(exc), "open", f"{db_path}: {exc}") from exc
        except BaseException:
            await conn.close()
            raise
        log.info(
            "storage opened: %s (schema v%d, journal=wal, synchronous=%s%s)",
            db_path,
            MIGRATIONS[-1][0],
            synchronous,
            ", read-only" if read_only else "",
        )
        return store

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
        pending = [m for m in MIGRATIONS if m[0] > current]
        if not pending:
            return
        if self.read_only:
            wanted = MIGRATIONS[-1][0]
            detail = f"schema is v{current}, v{wanted} needed, and the file is read-only"
            raise StorageError("read_only", "migrate", detail)
        for version, name, statements in pending:
            async with self._write_lock:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements:
                        await self._conn.execute(statement)
                    await self._conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, _now()),
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

    async def __aenter__(self) -> Store:
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

    async def _read(self, operation: str, query: Callable[[], Awaitable[T]]) -> T:
        self._ensure_open(operation)
        try:
            return await query()
        except sqlite3.Error as exc:
            raise StorageError(_classify(exc), operation, str(exc)) from exc

    async def _write(self, operation: str, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one IMMEDIATE transaction; returns only once it is committed."""
        self._ensure_open(operation)
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(_classify(exc), operation, str(exc)) from exc
            try:
                result = await body(self._conn)
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(_classify(exc), operation, str(exc)) from exc
                raise
            return result

    async def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                await self._conn.execute("ROLLBACK")
        except sqlite3.Error:  # the transaction may already be gone (e.g. SQLITE_FULL rolls back)
            log.debug("rollback failed", exc_info=True)

    def _ensure_open(self, operation: str) -> None:
        if self._closed:
            raise StorageError("closed", operation, "the store is closed")

    # -- oshi ---------------------------------------------------------------------------------

    async def set_oshi(self, guild_id: int, user_id: int, talent_key: str) -> str | None:
        """Register ``talent_key`` as the member's oshi; returns the previous one (or None)."""

        async def body(conn: aiosqlite.Connection) -> str | None:
            async with conn.execute(
                "SELECT talent_key FROM oshi WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            ) as cursor:
                row = await cursor.fetchone()
            await conn.execute(
                "INSERT INTO oshi (guild_id, user_id, talent_key, set_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET talent_key = excluded.talent_key, "
                "set_at = excluded.set_at",
                (guild_id, user_id, talent_key, _now()),
            )
            return str(row[0]) if row is not None else None

        return await self._write("set_oshi", body)

    async def get_oshi(self, guild_id: int, user_id: int) -> OshiEntry | None:
        row = await self._read(
            "get_oshi",
            lambda: self._fetchone(
                "SELECT guild_id, user_id, talent_key, set_at FROM oshi WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            ),
        )
        return OshiEntry(*row) if row is not None else None

    async def remove_oshi(self, guild_id: int, user_id: int) -> str | None:
        """Forget the member's oshi; returns the removed talent key (None if there was none)."""

        async def body(conn: aiosqlite.Connection) -> str | None:
            async with conn.execute(
                "DELETE FROM oshi WHERE guild_id = ? AND user_id = ? RETURNING talent_key",
                (guild_id, user_id),
            ) as cursor:
                row = await cursor.fetchone()
            return str(row[0]) if row is not None else None

        return await self._write("remove_oshi", body)

    async def oshi_ranking(self, guild_id: int, limit: int = 10) -> list[tuple[str, int]]:
        """The guild's most registered talents: ``[(talent_key, members), ...]``, most first."""
        rows = await self._read(
            "oshi_ranking",
            lambda: self._fetchall(
                "SELECT talent_key, COUNT(*) AS n FROM oshi WHERE guild_id = ? "
                "GROUP BY talent_key ORDER BY n DESC, talent_key ASC LIMIT ?",
                (guild_id, limit),
            ),
        )
        return [(str(key), int(n)) for key, n in rows]

    # -- warnings -----------------------------------------------------------------------------

    async def add_warning(self, guild_id: int, user_id: int, moderator_id: int, reason: str) -> WarningRecord:
        """Record a warning (and the matching ``warn`` moderation action) atomically."""

        async def body(conn: aiosqlite.Connection) -> WarningRecord:
            created = _now()
            async with conn.execute(
                "INSERT INTO warnings (guild_id, user_id, moderator_id, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (guild_id, user_id, moderator_id, reason, created),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await self._insert_action(conn, guild_id, "warn", user_id, moderator_id, reason, created)
            return WarningRecord(int(row[0]), guild_id, user_id, moderator_id, reason, created)

        return await self._write("add_warning", body)

    async def list_warnings(self, guild_id: int, user_id: int) -> list[WarningRecord]:
        rows = await self._read(
            "list_warnings",
            lambda: self._fetchall(
                "SELECT id, guild_id, user_id, moderator_id, reason, created_at FROM warnings "
                "WHERE guild_id = ? AND user_id = ? ORDER BY id",
                (guild_id, user_id),
            ),
        )
        return [WarningRecord(*row) for row in rows]

    async def clear_warnings(self, guild_id: int, user_id: int, moderator_id: int) -> int:
        """Delete the member's warnings (recording a ``clearwarns`` action); returns how many."""

        async def body(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "DELETE FROM warnings WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            removed = cursor.rowcount
            await cursor.close()
            await self._insert_action(
                conn, guild_id, "clearwarns", user_id, moderator_id, f"{removed} cleared", _now()
            )
            return int(removed)

        return await self._write("clear_warnings", body)

    # -- moderation log -----------------------------------------------------------------------

    async def record_action(
        self,
        guild_id: int,
        action: str,
        target_id: int | None,
        moderator_id: int,
        reason: str | None = None,
    ) -> ModAction:
        """Record a moderation action (timeout, purge, automod_timeout, ...)."""

        async def body(conn: aiosqlite.Connection) -> ModAction:
            created = _now()
            action_id = await self._insert_action(
                conn, guild_id, action, target_id, moderator_id, reason, created
            )
            return ModAction(action_id, guild_id, action, target_id, moderator_id, reason, created)

        return await self._write("record_action", body)

    async def list_actions(
        self, guild_id: int, *, target_id: int | None = None, limit: int = 20
    ) -> list[ModAction]:
        """The guild's latest moderation actions, newest first."""
        sql = (
            "SELECT id, guild_id, action, target_id, moderator_id, reason, created_at FROM mod_actions "
            "WHERE guild_id = ?"
        )
        params: list[Any] = [guild_id]
        if target_id is not None:
            sql += " AND target_id = ?"
            params.append(target_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = await self._read("list_actions", lambda: self._fetchall(sql, params))
        return [ModAction(*row) for row in rows]

    @staticmethod
    async def _insert_action(
        conn: aiosqlite.Connection,
        guild_id: int,
        action: str,
        target_id: int | None,
        moderator_id: int,
        reason: str | None,
        created: str,
    ) -> int:
        async with conn.execute(
            "INSERT INTO mod_actions (guild_id, action, target_id, moderator_id, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (guild_id, action, target_id, moderator_id, reason, created),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])
