"""The rows the store returns, and the timestamp format of every ``*_at`` column."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def utc_now() -> str:
    """Now, as stored in ``set_at`` / ``created_at`` / ``applied_at`` (ISO 8601, UTC, milliseconds)."""
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
