"""The record of every REST call the bot made: a bounded deque, cheap to append to.

Bounded (``record_size``) so long demo runs and benchmarks neither grow memory nor stall on
garbage collection; tests read it (or wait on it) to assert what the bot tried to do.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any


class RecordedRequest:
    """One REST call. ``json`` is parsed from ``body`` on first access: the record keeps only bytes
    and strings, which the garbage collector never has to scan (a deque of 10k parsed bodies made
    every full collection of a benchmark run tens of milliseconds longer)."""

    __slots__ = ("_json", "body", "method", "path", "query", "reason", "route", "status", "time")

    def __init__(
        self,
        method: str,
        path: str,
        route: str,
        body: bytes,
        status: int,
        time: float,
        query: dict[str, str],
        reason: str | None = None,
    ) -> None:
        self.method = method
        self.path = path  # as requested, without the /api/vN prefix: "/channels/555666777/messages"
        self.route = route  # templated: "/channels/{channel_id}/messages"; "<unknown>" when none matched
        self.body = body  # the raw JSON body (``payload_json`` for multipart uploads)
        self.status = status
        self.time = time  # time.monotonic() when the response was ready
        self.query = query
        self.reason = reason  # X-Audit-Log-Reason, decoded
        self._json: Any = _UNPARSED

    @property
    def json(self) -> Any:
        """The parsed JSON body, or None (no body, or not JSON)."""
        if self._json is _UNPARSED:
            try:
                self._json = json.loads(self.body) if self.body else None
            except ValueError:
                self._json = None
        return self._json

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}"

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} -> {self.status}>"


_UNPARSED: Any = object()
UNKNOWN_ROUTE = "<unknown>"


def new_record(size: int) -> deque[RecordedRequest]:
    return deque(maxlen=size)


def select(
    records: Iterable[RecordedRequest], *, route: str | None = None, method: str | None = None
) -> list[RecordedRequest]:
    """Records whose templated route (or concrete path) and method match; ``None`` matches anything."""
    upper = method.upper() if method else None
    return [
        r
        for r in records
        if (upper is None or r.method == upper) and (route is None or r.route == route or r.path == route)
    ]
