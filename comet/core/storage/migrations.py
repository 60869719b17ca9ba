"""The schema, as versioned migrations.

:meth:`Store.open` reads ``MIGRATIONS`` from this module when it runs, so a test that adds a
migration patches ``comet.core.storage.migrations.MIGRATIONS`` (the package's re-export is a copy).
"""

from __future__ import annotations

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
