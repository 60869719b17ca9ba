"""Discord REST metrics: how long each API call took, how it ended, and the rate limits it met.

discord.py gives no hook for this: ``HTTPClient.request`` retries a 429 itself (sleeping the body's
``retry_after``, up to 5 attempts) and only logs a warning. Two seams are used instead:

* ``request`` of the bot's ``HTTPClient`` is wrapped per bot: the whole call (queueing behind
  discord.py's own bucket locks, every attempt, every rate-limit sleep) is one observation of
  ``comet_discord_request_duration_seconds{route,method,status}``;
* an aiohttp ``TraceConfig`` (``http_trace=``, fixed when the client's HTTP session is created)
  sees each attempt: its status, a 429's ``X-RateLimit-Scope``, the time until the retry started,
  and connection errors that never got a status.

Both run in the task that made the call, so a ``ContextVar`` joins an attempt to its call.

Labels are bounded: ``route`` is the path template of a ``Route(...)`` literal in discord.py's own
``http.py`` (``/channels/{channel_id}/messages``); a path discord.py built with the ids filled in,
or any other, is ``other``, so no snowflake becomes a label value. ``status`` is a class (``2xx``,
``4xx``, ...), or ``error`` for a call that ended without an HTTP status, ``cancelled`` for one
that was cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import discord.http
from prometheus_client import CollectorRegistry, Counter, Histogram

from instrumentation import recorder

OTHER = "other"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error", "cancelled")
#: Discord's ``X-RateLimit-Scope``: ``user`` is this bot's per-route bucket, called ``bucket`` here.
RATE_LIMIT_SCOPES = {"user": "bucket", "global": "global", "shared": "shared"}
CONNECTION_ERRORS = ("ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "TimeoutError")
REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

_ROUTE_LITERAL = re.compile(r"Route\(\s*'(?:GET|POST|PUT|PATCH|DELETE)',\s*'([^']+)'")


@functools.cache
def route_templates() -> frozenset[str]:
    """The path templates of discord.py's own ``Route(...)`` literals (read once, from its source)."""
    return frozenset(_ROUTE_LITERAL.findall(inspect.getsource(discord.http)))


def route_label(path: str) -> str:
    return path if path in route_templates() else OTHER


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 200 <= status < 600 else "error"


class DiscordApiMetrics:
    """The REST metrics of one registry."""

    def __init__(self, registry: CollectorRegistry, prefix: str = "comet") -> None:
        self.request_duration = Histogram(
            f"{prefix}_discord_request_duration_seconds",
            "Time of one Discord REST call, in seconds: queueing, every attempt and rate-limit wait.",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            f"{prefix}_discord_request_attempts",
            "HTTP attempts made to Discord's REST API, by the status each got (a 429 included).",
            ["route", "method", "status"],
            registry=registry,
        )
        self.rate_limits = Counter(
            f"{prefix}_discord_rate_limits",
            "429 answers from Discord, by X-RateLimit-Scope (bucket, global, shared).",
            ["scope"],
            registry=registry,
        )
        self.rate_limit_wait = Counter(
            f"{prefix}_discord_rate_limit_wait_seconds",
            "Time from a 429 answer to the retry of the same call, in seconds, by scope.",
            ["scope"],
            registry=registry,
        )
        self.retries = Counter(
            f"{prefix}_discord_request_retries",
            "Attempts after the first of a REST call (discord.py retries 429s and some 5xx).",
            registry=registry,
        )
        self.connection_errors = Counter(
            f"{prefix}_discord_connection_errors",
            "REST attempts that got no HTTP status, by exception class (else other).",
            ["error"],
            registry=registry,
        )
        for scope in RATE_LIMIT_SCOPES.values():
            self.rate_limits.labels(scope)
            self.rate_limit_wait.labels(scope)
        for error in (*CONNECTION_ERRORS, OTHER):
            self.connection_errors.labels(error)
        # Label children by label values: ``.labels()`` takes a lock and builds a key on every call,
        # and this runs on every REST call and attempt. The label sets are bounded (templates).
        self._durations: dict[tuple[str, str, str], Any] = {}
        self._attempts: dict[tuple[str, str, str], Any] = {}

    def duration_child(self, route: str, method: str, status: str) -> Any:
        key = (route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.request_duration.labels(route, method, status)
        return child

    def attempt_child(self, route: str, method: str, status: str) -> Any:
        key = (route, method, status)
        child = self._attempts.get(key)
        if child is None:
            child = self._attempts[key] = self.attempts.labels(route, method, status)
        return child


@dataclass(slots=True)
class _Call:
    route: str
    method: str
    attempts: int = 0
    limited_at: float | None = None  # when the last 429 of this call arrived
    scope: str = "bucket"
    waited: float = 0.0  # seconds between its 429s and their retries


_CURRENT: ContextVar[_Call | None] = ContextVar("comet_discord_call", default=None)


def trace_config(metrics: DiscordApiMetrics) -> aiohttp.TraceConfig:
    """Per-attempt observations; pass as ``http_trace=`` when the client is constructed."""
    config = aiohttp.TraceConfig()

    async def on_start(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        call = _CURRENT.get()
        if call is None:
            return
        call.attempts += 1
        if call.attempts > 1:
            metrics.retries.inc()
        if call.limited_at is not None:
            waited = time.perf_counter() - call.limited_at
            metrics.rate_limit_wait.labels(call.scope).inc(waited)
            call.waited += waited
            call.limited_at = None

    async def on_end(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        call = _CURRENT.get()
        if call is None:
            return
        status = params.response.status
        metrics.attempt_child(call.route, call.method, status_class(status)).inc()
        if status == 429:
            scope = RATE_LIMIT_SCOPES.get(params.response.headers.get("X-RateLimit-Scope", ""), "bucket")
            metrics.rate_limits.labels(scope).inc()
            call.scope = scope
            call.limited_at = time.perf_counter()

    async def on_exception(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        call = _CURRENT.get()
        if call is None:
            return
        name = type(params.exception).__name__
        metrics.connection_errors.labels(name if name in CONNECTION_ERRORS else OTHER).inc()
        metrics.attempt_child(call.route, call.method, "error").inc()

    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    config.freeze()
    return config


Request = Callable[..., Awaitable[Any]]


def install_request_metrics(http: discord.http.HTTPClient, metrics: DiscordApiMetrics) -> None:
    """Time every call of ``http.request`` (wraps whatever ``request`` is now, e.g. a scrubber)."""
    inner: Request = http.request

    # wraps: attributes the inner wrapper carries (the scrubber's mark) stay visible on the outside.
    @functools.wraps(inner)
    async def request(route: discord.http.Route, **kwargs: Any) -> Any:
        method = route.method if route.method in METHODS else OTHER
        call = _Call(route_label(route.path), method)
        token = _CURRENT.set(call)
        started = time.perf_counter()
        status = "error"
        try:
            result = await inner(route, **kwargs)
            status = "2xx"  # discord.py returns only for 2xx answers
            return result
        except discord.HTTPException as exc:
            status = status_class(exc.status)
            raise
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            _CURRENT.reset(token)
            duration = time.perf_counter() - started
            metrics.duration_child(call.route, call.method, status).observe(duration)
            # A step of the invocation this call was made for, if any (the flight recorder).
            recorder.note("rest", f"{call.method} {call.route}", duration, status, call.waited)

    http.request = request  # type: ignore[method-assign]
