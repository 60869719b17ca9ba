"""Anti-spam rule: N messages within T seconds from one member.

Only the detection lives here (pure, clock injectable, unit-tested); the moderation cog's listener
applies the consequence (Discord timeout, mod-log entry, stored action,
``comet_automod_actions_total{action="timeout"}``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MemberKey = tuple[int, int]  # (guild_id, user_id)


class SpamDetector:
    """Counts each member's recent messages in a sliding window.

    ``hit()`` returns True for the message that brings a member to ``max_messages`` within
    ``per_seconds``; the member's window is then emptied, so one burst triggers once and the
    next trigger needs another ``max_messages`` messages.
    """

    #: Forget idle members every this many hits, so memory stays bounded by the active members.
    SWEEP_EVERY = 1000

    def __init__(
        self, max_messages: int, per_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        if not per_seconds > 0:
            raise ValueError(f"per_seconds must be positive, got {per_seconds}")
        self.max_messages = max_messages
        self.per_seconds = per_seconds
        self._clock = clock
        self._windows: dict[MemberKey, deque[float]] = {}
        self._hits = 0

    def hit(self, guild_id: int, user_id: int, *, now: float | None = None) -> bool:
        """Record one message; True when it makes the member a spammer."""
        at = self._clock() if now is None else now
        key = (guild_id, user_id)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = deque()
        window.append(at)
        self._expire(window, at)
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self.sweep(at)
        if len(window) >= self.max_messages:
            del self._windows[key]
            return True
        return False

    def count(self, guild_id: int, user_id: int, *, now: float | None = None) -> int:
        """Messages of the member inside the current window."""
        window = self._windows.get((guild_id, user_id))
        if window is None:
            return 0
        self._expire(window, self._clock() if now is None else now)
        return len(window)

    def forget(self, guild_id: int, user_id: int) -> None:
        self._windows.pop((guild_id, user_id), None)

    def sweep(self, now: float | None = None) -> None:
        """Drop members whose window is empty."""
        at = self._clock() if now is None else now
        for key in list(self._windows):
            window = self._windows[key]
            self._expire(window, at)
            if not window:
                del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)

    def _expire(self, window: deque[float], now: float) -> None:
        # A message exactly per_seconds old is outside the window ("N messages within T seconds").
        cutoff = now - self.per_seconds
        while window and window[0] <= cutoff:
            window.popleft()
