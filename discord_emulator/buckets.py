"""Discord's per-route rate limits, as the emulator answers them.

Every REST answer carries Discord's headers (``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``,
``-Reset-After``, ``-Bucket``), from a bucket per route and major parameter (the channel, guild or
webhook in the path), as Discord keys them. discord.py reads them: it spaces its calls by them
(sleeping *before* the next call of an exhausted bucket, with no 429) and, should a call arrive
anyway, the emulator answers 429 with ``X-RateLimit-Scope: user``, as Discord does.

By default a bucket is far larger than any test or benchmark sends (``DEFAULT_LIMIT`` per
``DEFAULT_WINDOW``), so the headers are there but never hold anything back; ``limit()`` gives a
route a real one (e.g. 5 per 5 s, Discord's limit for creating messages in a channel).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

DEFAULT_LIMIT = 10_000
DEFAULT_WINDOW = 1.0
#: The path parameters Discord keeps separate buckets for.
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id")
#: Windows kept before the expired ones are dropped (one per route and channel/guild seen).
PRUNE_AT = 10_000


@dataclass(slots=True)
class _Window:
    remaining: int
    resets_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class Answer:
    """The rate-limit headers of one call, and ``retry_after`` when the call must get a 429."""

    headers: dict[str, str]
    retry_after: float | None


class RouteBuckets:
    def __init__(self) -> None:
        self._limits: dict[tuple[str | None, str], tuple[int, float]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._hashes: dict[tuple[str, str], str] = {}

    def limit(self, template: str, limit: int, per: float, method: str | None = None) -> None:
        """Give ``template`` (``/channels/{channel_id}/messages``; only ``method``'s calls, if given)
        a bucket of ``limit`` calls per ``per`` seconds, for each channel, guild or webhook."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if not per > 0:
            raise ValueError("per must be > 0 seconds")
        self._limits[(method, template)] = (int(limit), float(per))
        self._windows.clear()

    def clear(self) -> None:
        """Every route back to the default bucket, every window fresh."""
        self._limits.clear()
        self._windows.clear()

    def take(self, method: str, template: str, params: dict[str, str]) -> Answer:
        limit, per = self._limits.get((method, template)) or self._limits.get(
            (None, template), (DEFAULT_LIMIT, DEFAULT_WINDOW)
        )
        bucket = self._bucket_hash(method, template)
        major = next((params[name] for name in MAJOR_PARAMETERS if name in params), "")
        now = time.monotonic()
        window = self._windows.get((bucket, major))
        if window is None or now >= window.resets_at:
            if len(self._windows) >= PRUNE_AT:
                self._windows = {k: w for k, w in self._windows.items() if w.resets_at > now}
            window = self._windows[(bucket, major)] = _Window(limit, now + per)
        reset_after = window.resets_at - now
        limited = window.remaining <= 0
        if not limited:
            window.remaining -= 1
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(window.remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        return Answer(headers, reset_after if limited else None)

    def _bucket_hash(self, method: str, template: str) -> str:
        key = (method, template)
        bucket = self._hashes.get(key)
        if bucket is None:
            bucket = self._hashes[key] = hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]
        return bucket
