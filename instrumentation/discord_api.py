"""Discord REST metrics: how long each API call took, how it ended, and the rate limits it met.

discord.py gives no hook for this: ``HTTPClient.request`` retries a 429 itself (sleeping the body's
``retry_after``, up to 5 attempts) and only logs a warning. Three seams are used instead:

* ``request`` of the bot's ``HTTPClient`` is wrapped per bot, and so is the webhook adapter's
  (interaction responses, follow-ups and webhooks do not go through ``bot.http``; its class is
  patched once per process and times the calls made on an instrumented bot's HTTP session): the
  whole call (queueing behind discord.py's own bucket locks, every attempt, every rate-limit sleep)
  is one observation of ``comet_discord_request_duration_seconds{route,method,status}``;
* discord.py's per-route bucket (``discord.http.Ratelimit``), patched once per process: when the
  headers of an answer say the bucket is spent, discord.py sleeps *before* the next call, with no
  429; that wait counts in ``comet_discord_rate_limit_wait_seconds_total{scope="bucket"}`` and in
  the invocation's timeline, else a slow reply would show a long REST call and no reason;
* ``json_or_text``, with which discord.py reads every answer of every attempt (both modules'
  globals, patched once per process): each attempt's status, a 429's ``X-RateLimit-Scope`` and the
  ``retry_after`` that discord.py sleeps before the retry (counted once the retry is made), and
  retries. A call that ends without any HTTP status counts as a connection error.

All of them run in the task that made the call, so the call is found by its task (``_calls``).
Why not aiohttp's ``TraceConfig`` (``http_trace=``): it costs every request some ten signal
coroutines, measured here at 26 us of a 216 us ``!ping`` reply (12 %), where these seams cost
one plain function call per attempt; and it is fixed when the HTTP session is created at login, so
an instrumentation installed in ``setup_hook`` could not use it. What it would see and these do
not: a connection reset that discord.py retried by itself (errno 54/10054); the retry's answer is
counted, the reset is not.

Labels are bounded: ``route`` is the path template of a ``Route(...)`` literal in discord.py's own
``http.py`` or ``webhook/async_.py`` (``/channels/{channel_id}/messages``); a path discord.py
built with the ids filled in, or any other, is ``other``, so no snowflake becomes a label value.
``status`` is a class (``2xx``, ``4xx``, ...), or ``error`` for a call that ended without an HTTP
status, ``cancelled`` for one that was cancelled.

Not timed separately: the webhook adapter's own bucket waits (its lock, not ``Ratelimit``); they
are inside the call's duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import discord.http
import discord.webhook.async_
from discord.webhook.async_ import AsyncWebhookAdapter

from instrumentation import recorder
from instrumentation.discord_api_metrics import (
    CONNECTION_ERRORS,
    HOOKS,
    METHODS,
    OTHER,
    RATE_LIMIT_SCOPES,
    REST_ATTEMPT,
    REST_BUCKET_WAIT,
    REST_CALL,
    DiscordApiMetrics,
    route_label,
    route_templates,
    status_class,
)

__all__ = [
    "HOOKS",
    "DiscordApiMetrics",
    "install_request_metrics",
    "route_label",
    "route_templates",
    "status_class",
    "uninstall_webhook_metrics",
]

#: A wait in discord.py's bucket shorter than this is its bookkeeping (a ``sleep(0)``), not a limit.
BUCKET_WAIT_MIN = 0.001
_MARK = "_comet_timed"


@dataclass(slots=True)
class _Call:
    metrics: DiscordApiMetrics
    route: str
    method: str
    attempts: int = 0
    retry_after: float = 0.0  # what the last 429 of this call said to wait (slept before the retry)
    scope: str = "bucket"
    waited: float = 0.0  # seconds waited on rate limits: after 429s, for spent buckets


#: The call each task is making now (a task makes one REST call at a time). Kept by task rather
#: than in a ``ContextVar``: setting and resetting one on every call allocates the context's
#: mapping twice, and a call is never meant for the tasks its task starts.
_calls: dict[asyncio.Task[Any] | None, _Call] = {}


def _current_call() -> _Call | None:
    return _calls.get(asyncio.current_task()) if _calls else None


Request = Callable[..., Awaitable[Any]]


async def _observed(metrics: DiscordApiMetrics, route: discord.http.Route, reply: Awaitable[Any]) -> Any:
    """Await ``reply`` (discord.py's own coroutine for the call, not started yet) as one timed call.

    The wrappers return this coroutine instead of awaiting it in one of their own, so a call runs
    through one added frame. It runs in the caller's task, by which the seams below find the call.
    The bookkeeping fails open: the call is awaited, and its answer or error passed on, whatever
    happens to it (counted under ``rest_call``)."""
    try:
        call = _Call(metrics, route_label(route.path), route.method if route.method in METHODS else OTHER)
        task = asyncio.current_task()
        outer = _calls.get(task)
        _calls[task] = call
        started = time.perf_counter()
    except Exception:
        metrics.hook_failures.record(REST_CALL)
        return await reply
    status = "error"
    error: BaseException | None = None
    try:
        result = await reply
        status = "2xx"  # discord.py returns only for 2xx answers
        return result
    except BaseException as exc:
        status = _status_of(exc)
        error = exc
        raise
    finally:
        try:
            _end(call, task, outer, started, status, error)
        except Exception:
            metrics.hook_failures.record(REST_CALL)


def _end(
    call: _Call, task: Any, outer: _Call | None, started: float, status: str, error: BaseException | None
) -> None:
    if outer is None:
        del _calls[task]
    else:
        _calls[task] = outer
    duration = time.perf_counter() - started
    call.metrics.duration_child(call.route, call.method, status).observe(duration)
    if error is not None:
        _connection_error(call, error)
    # A step of the invocation this call was made for, if any (the flight recorder).
    trace = recorder.current()
    if trace is not None:
        trace.add("rest", f"{call.method} {call.route}", duration, status, call.waited)


def _status_of(exc: BaseException) -> str:
    if isinstance(exc, discord.HTTPException):
        return status_class(exc.status)
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"


def install_request_metrics(http: discord.http.HTTPClient, metrics: DiscordApiMetrics) -> None:
    """Time every call of ``http.request`` (wraps whatever ``request`` is now, e.g. a scrubber), and
    the webhook adapter's calls made on ``http``'s session (interaction responses, follow-ups)."""
    inner: Request = http.request

    # wraps: attributes the inner wrapper carries (the scrubber's mark) stay visible on the outside.
    @functools.wraps(inner)
    def request(route: discord.http.Route, **kwargs: Any) -> Awaitable[Any]:
        return _observed(metrics, route, inner(route, **kwargs))

    http.request = request  # type: ignore[method-assign,assignment]
    _patch_attempts()
    _patch_bucket_waits()
    _patch_webhook_adapter()
    _webhook_clients[http] = metrics


def uninstall_webhook_metrics(http: discord.http.HTTPClient) -> None:
    """Stop timing the webhook adapter's calls on ``http``'s session (``request`` is the caller's)."""
    _webhook_clients.pop(http, None)


# -- the process-wide patches (fail open: they only act inside a timed call) -------------------

#: The instrumented clients, by which the webhook adapter's calls are matched to metrics.
_webhook_clients: weakref.WeakKeyDictionary[discord.http.HTTPClient, DiscordApiMetrics] = (
    weakref.WeakKeyDictionary()
)


def _metrics_of_session(session: object) -> DiscordApiMetrics | None:
    for http, metrics in list(_webhook_clients.items()):
        if getattr(http, "_HTTPClient__session", None) is session:
            return metrics
    return None


def _patch_webhook_adapter() -> None:
    original = AsyncWebhookAdapter.request
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def request(
        self: AsyncWebhookAdapter, route: discord.http.Route, session: Any, **kwargs: Any
    ) -> Awaitable[Any]:
        metrics = _metrics_of_session(session)
        if metrics is None:  # a webhook on a session of its own, or no instrumented bot
            return original(self, route, session, **kwargs)
        return _observed(metrics, route, original(self, route, session, **kwargs))

    setattr(request, _MARK, True)
    AsyncWebhookAdapter.request = request  # type: ignore[method-assign,assignment]


def _connection_error(call: _Call, exc: BaseException) -> None:
    """A call that ended without an HTTP status (refused, reset, timed out): its last attempt."""
    if isinstance(exc, (discord.HTTPException, asyncio.CancelledError)) or not isinstance(
        exc, (OSError, aiohttp.ClientError, TimeoutError)
    ):
        return
    name = type(exc).__name__
    call.metrics.connection_errors.labels(name if name in CONNECTION_ERRORS else OTHER).inc()
    call.metrics.attempt_child(call.route, call.method, "error").inc()


def _attempt(call: _Call, response: aiohttp.ClientResponse) -> None:
    """One answer of an attempt of ``call``, as discord.py starts to read it."""
    metrics = call.metrics
    call.attempts += 1
    if call.attempts > 1:
        metrics.retries.inc()
        if call.retry_after:  # the previous attempt was a 429, and discord.py slept it before this one
            metrics.rate_limit_wait.labels(call.scope).inc(call.retry_after)
            call.waited += call.retry_after
            call.retry_after = 0.0
    status = response.status
    metrics.attempt_child(call.route, call.method, status_class(status)).inc()
    if status == 429:
        scope = RATE_LIMIT_SCOPES.get(response.headers.get("X-RateLimit-Scope", ""), "bucket")
        metrics.rate_limits.labels(scope).inc()
        call.scope = scope


async def _read_retry_after(call: _Call, reading: Awaitable[Any]) -> Any:
    data = await reading
    if isinstance(data, dict):
        with contextlib.suppress(TypeError, ValueError):
            call.retry_after = max(0.0, float(data.get("retry_after", 0.0)))
    return data


def _patch_attempts() -> None:
    """See every attempt of a call: discord.py reads each answer's body with ``json_or_text``
    (``HTTPClient.request`` and the webhook adapter alike, from their modules' globals). An answer
    other than a 429 goes straight to discord.py's own coroutine; a 429's body is read through
    ``_read_retry_after``, for the wait discord.py is about to sleep."""
    original = discord.http.json_or_text
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def json_or_text(response: aiohttp.ClientResponse) -> Awaitable[Any]:
        call = _current_call()
        if call is None:
            return original(response)
        try:
            _attempt(call, response)
        except Exception:  # fail open: discord.py reads its answer whatever happened here
            call.metrics.hook_failures.record(REST_ATTEMPT)
            return original(response)
        return _read_retry_after(call, original(response)) if response.status == 429 else original(response)

    setattr(json_or_text, _MARK, True)
    discord.http.json_or_text = json_or_text  # type: ignore[assignment]
    discord.webhook.async_.json_or_text = json_or_text  # type: ignore[attr-defined,assignment]


def _bucket_waited(started: float) -> None:
    call = _current_call()
    if call is None:
        return
    waited = time.perf_counter() - started
    if waited >= BUCKET_WAIT_MIN:
        try:
            call.metrics.rate_limit_wait.labels("bucket").inc(waited)
            call.waited += waited
        except Exception:
            call.metrics.hook_failures.record(REST_BUCKET_WAIT)


def _patch_bucket_waits() -> None:
    """Time discord.py's waits for a spent per-route bucket: in ``acquire`` (a call queued behind
    it) and in ``__aexit__`` (the call that spent it sleeps until the bucket resets).

    Most calls find tokens left and cannot wait: for them the patch returns discord.py's own
    coroutine, untouched (no extra coroutine frame on every REST call); only a call that may wait
    gets the timed one. Which may wait is read from the bucket's state as discord.py's code decides
    it (``acquire`` waits while ``remaining <= 0``; ``__aexit__`` sleeps when no token is left for the
    calls still out); a wait missed by that reading would only be missing, never invented.
    """
    ratelimit = discord.http.Ratelimit
    acquire, aexit = ratelimit.acquire, ratelimit.__aexit__
    if getattr(acquire, _MARK, False):
        return

    async def timed(started: float, waiting: Awaitable[None]) -> None:
        try:
            await waiting
        finally:
            _bucket_waited(started)

    @functools.wraps(acquire)
    def timed_acquire(self: discord.http.Ratelimit) -> Awaitable[None]:
        if self.remaining > 0 or _current_call() is None:
            return acquire(self)
        return timed(time.perf_counter(), acquire(self))

    @functools.wraps(aexit)
    def timed_aexit(self: discord.http.Ratelimit, *exc_info: Any) -> Awaitable[None]:
        if self.remaining - self.outgoing + 1 > 0 or _current_call() is None:
            return aexit(self, *exc_info)
        return timed(time.perf_counter(), aexit(self, *exc_info))

    setattr(timed_acquire, _MARK, True)
    ratelimit.acquire = timed_acquire  # type: ignore[method-assign,assignment]
    ratelimit.__aexit__ = timed_aexit  # type: ignore[method-assign,assignment]
