""":class:`Store`: the bot's queries on oshi registrations, warnings and the moderation log.

Every public data method is ``@timed``: timed as ``storage.<method>``, refused once the store is
closed, its SQLite failures raised as :class:`StorageError` naming the method. Writes run in one
transaction each (:meth:`StoreBase._write`) and return only once it is committed.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from comet.core.storage.connection import StoreBase
from comet.core.storage.errors import StorageError
from comet.core.storage.records import ModAction, OshiEntry, WarningRecord, utc_now
from comet.core.storage.timing import timed


class Store(StoreBase):
    """The bot's database. Create with ``await Store.open(path)``; ``await store.close()`` at exit."""

    # -- oshi ---------------------------------------------------------------------------------

    @timed
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
                (guild_id, user_id, talent_key, utc_now()),
            )
            return str(row[0]) if row is not None else None

        return await self._write(body)

    @timed
    async def get_oshi(self, guild_id: int, user_id: int) -> OshiEntry | None:
        row = await self._fetchone(
            "SELECT guild_id, user_id, talent_key, set_at FROM oshi WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return OshiEntry(*row) if row is not None else None

    @timed
    async def remove_oshi(self, guild_id: int, user_id: int) -> str | None:
        """Forget the member's oshi; returns the removed talent key (None if there was none)."""

        async def body(conn: aiosqlite.Connection) -> str | None:
            async with conn.execute(
                "DELETE FROM oshi WHERE guild_id = ? AND user_id = ? RETURNING talent_key",
                (guild_id, user_id),
            ) as cursor:
                row = await cursor.fetchone()
            return str(row[0]) if row is not None else None

        return await self._write(body)

    @timed
    async def oshi_ranking(self, guild_id: int, limit: int = 10) -> list[tuple[str, int]]:
        """The guild's most registered talents: ``[(talent_key, members), ...]``, most first."""
        rows = await self._fetchall(
            "SELECT talent_key, COUNT(*) AS n FROM oshi WHERE guild_id = ? "
            "GROUP BY talent_key ORDER BY n DESC, talent_key ASC LIMIT ?",
            (guild_id, limit),
        )
        return [(str(key), int(n)) for key, n in rows]

    # -- warnings -----------------------------------------------------------------------------

    @timed
    async def add_warning(self, guild_id: int, user_id: int, moderator_id: int, reason: str) -> WarningRecord:
        """Record a warning (and the matching ``warn`` moderation action) atomically."""

        async def body(conn: aiosqlite.Connection) -> WarningRecord:
            created = utc_now()
            async with conn.execute(
                "INSERT INTO warnings (guild_id, user_id, moderator_id, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (guild_id, user_id, moderator_id, reason, created),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await self._insert_action(conn, guild_id, "warn", user_id, moderator_id, reason, created)
            return WarningRecord(int(row[0]), guild_id, user_id, moderator_id, reason, created)

        return await self._write(body)

    @timed
    async def list_warnings(self, guild_id: int, user_id: int) -> list[WarningRecord]:
        rows = await self._fetchall(
            "SELECT id, guild_id, user_id, moderator_id, reason, created_at FROM warnings "
            "WHERE guild_id = ? AND user_id = ? ORDER BY id",
            (guild_id, user_id),
        )
        return [WarningRecord(*row) for row in rows]

    @timed
    async def clear_warnings(self, guild_id: int, user_id: int, moderator_id: int) -> int:
        """Delete the member's warnings (recording a ``clearwarns`` action); returns how many."""

        async def body(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "DELETE FROM warnings WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            removed = cursor.rowcount
            await cursor.close()
            await self._insert_action(
                conn, guild_id, "clearwarns", user_id, moderator_id, f"{removed} cleared", utc_now()
            )
            return int(removed)

        return await self._write(body)

    # -- moderation log -----------------------------------------------------------------------

    @timed
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
            created = utc_now()
            action_id = await self._insert_action(
                conn, guild_id, action, target_id, moderator_id, reason, created
            )
            return ModAction(action_id, guild_id, action, target_id, moderator_id, reason, created)

        return await self._write(body)

    @timed
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
        rows = await self._fetchall(sql, params)
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


def store_of(bot: object) -> Store:
    """``bot.store``, or StorageError("unavailable") when the bot runs without a database."""
    store = getattr(bot, "store", None)
    if not isinstance(store, Store):
        raise StorageError("unavailable", "lookup", "the bot has no Store (database not opened)")
    return store
