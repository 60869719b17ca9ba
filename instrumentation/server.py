"""The bot's own HTTP endpoint, in threads of its own: ``/metrics``, ``/healthz``, ``/readyz``.

The server is the standard library's ``http.server`` in threads of its own, as prometheus_client's
``start_http_server`` (with workers kept between requests), not an aiohttp app on the bot's loop: a
scrape then never waits for a busy event loop to get round to it, and parsing HTTP never takes the
loop's time.
What needs the loop (readiness, liveness, the flight recorder) is asked *on* the loop, thread-safely.

* ``GET /metrics`` — the Prometheus text format, or OpenMetrics when the scraper's ``Accept`` asks
  for it (Prometheus does), gzip-compressed at level 1 when ``Accept-Encoding`` allows it; supports
  prometheus_client's ``?name[]=`` filter. Rendered by :class:`~instrumentation.exposition.Exposition`
  in the request's thread: no ``_created`` series (in this path only; other registries keep
  theirs), line prefixes cached per series, values read at every scrape (command and gateway
  counts are written in batches at most 0.1 s old; :mod:`instrumentation.taps`). A render is pure
  Python and holds the GIL; at the default switch interval (5 ms) the loop could wait that long for
  it at every hand-over, and the request's thread as long at every wait for the GIL, so from
  accepting a connection until its answer is ready the interval is lowered to
  ``render_switch_interval`` (0.5 ms), then restored (``instrumentation.http_threads.ThreadedServer``;
  ``bench/bench_instrumentation.py`` measures the difference). Concurrent scrapes render one after
  another.
* ``GET /healthz`` — liveness: 200 ``{"status": "alive"}`` once the event loop has run a callback
  for it, 503 if the loop does not within ``LOOP_TIMEOUT`` (blocked) or is closed.
* ``GET /readyz`` — readiness from a provider callable (sync or async, run on the loop) returning the
  bot's health fields (status, uptime, latency, guilds, ...): 200 when ``status == "healthy"``, else
  503. NaN and infinities (discord.py's latency before the first heartbeat ACK) become ``null``;
  the JSON is always strict.

Binds 127.0.0.1 by default. Optional HTTP basic auth protects ``/metrics`` and ``/readyz``
(``/healthz`` stays open for container liveness probes; it reveals nothing). A port already in use
raises :class:`PortInUseError` naming it — never a silent move to another port.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import gzip
import hmac
import inspect
import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import gzip_accepted

from instrumentation.exposition import Exposition, Format, choose_format
from instrumentation.http_threads import (
    THREAD_PREFIX,
    PortInUseError,
    Reply,
    ThreadedServer,
    address_in_use,
)

__all__ = ["GZIP_LEVEL", "MetricsServer", "PortInUseError", "Readiness", "json_safe"]

logger = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]
#: ``/debug/invocations/<id>``: the invocation with that id as JSON, or None when it is not kept.
InvocationLookup = Callable[[str], dict[str, Any] | None]
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DEBUG_PREFIX = "/debug/"
#: Where a kept invocation is served: ``INVOCATIONS_PATH + trace_id`` (Grafana's exemplar links).
INVOCATIONS_PATH = "/debug/invocations/"

#: Fast compression: the text format shrinks ~10x at level 1 already; higher levels cost CPU.
GZIP_LEVEL = 1
#: A readiness provider that takes longer than this is reported as not ready.
READINESS_TIMEOUT = 5.0
#: How long a request waits for the event loop to run what it asked of it (liveness included).
LOOP_TIMEOUT = 5.0
#: How long stop() waits for the server's threads to end.
THREAD_EXIT_TIMEOUT = 5.0
#: GIL switch interval while rendering (seconds); the interpreter's default is 0.005.
RENDER_SWITCH_INTERVAL = 0.0005

_PROTECTED = frozenset({"/metrics", "/readyz"})
_JSON = "application/json"


def json_safe(value: Any) -> Any:
    """``value`` with NaN/Infinity replaced by ``None`` and non-JSON objects by their ``str``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    return str(value)


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` served from threads; started and stopped on a loop."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 9108,
        readiness: Readiness | None = None,
        basic_auth: tuple[str, str] | None = None,
        render_switch_interval: float | None = RENDER_SWITCH_INTERVAL,
        invocations: InvocationLookup | None = None,
    ) -> None:
        if render_switch_interval is not None and not render_switch_interval > 0:
            raise ValueError(f"render_switch_interval must be > 0 or None, got {render_switch_interval!r}")
        if basic_auth is not None and (not basic_auth[0] or ":" in basic_auth[0]):
            raise ValueError("basic_auth user must be non-empty and contain no ':'")
        self.registry = registry
        self._exposition = Exposition(registry)
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._readiness = readiness
        self._render_switch_interval = render_switch_interval
        self._expected_credentials = (
            f"{basic_auth[0]}:{basic_auth[1]}".encode() if basic_auth is not None else None
        )
        self._invocations = invocations
        self._loop: asyncio.AbstractEventLoop | None = None
        self._httpd: ThreadedServer | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._render_lock = threading.Lock()  # one render at a time: they would share one GIL anyway

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port after :meth:`start` (resolves ``port=0``), else the configured one."""
        return self._port if self._port is not None else self._requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("MetricsServer already started")
        self._loop = asyncio.get_running_loop()
        try:
            httpd = ThreadedServer(
                self.host, self._requested_port, self.answer, switch_interval=self._render_switch_interval
            )
        except OSError as exc:
            if address_in_use(exc):
                raise PortInUseError(self.host, self._requested_port) from exc
            raise
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept, name=f"{THREAD_PREFIX}-accept", daemon=True)
        self._acceptor.start()
        logger.info("Serving /metrics, /healthz, /readyz on %s", self.url)

    def _accept(self) -> None:
        httpd = self._httpd
        assert httpd is not None
        while not self._stopping.is_set():
            httpd.handle_request()  # returns after a poll interval without a connection

    async def stop(self) -> None:
        """Close the listening socket and end the server's threads (waited for without blocking the
        loop, for at most ``THREAD_EXIT_TIMEOUT``): nothing of the server is left running."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + THREAD_EXIT_TIMEOUT
        acceptor, self._acceptor = self._acceptor, None
        # A thread cannot be awaited: their state is polled (a request in progress may take a
        # moment, and may be waiting for this loop), which neither blocks the loop nor starts a
        # thread to join them.
        threads = [acceptor] if acceptor is not None else []
        while any(thread.is_alive() for thread in threads):
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.005)
        httpd.server_close()  # the listening socket: no new request from here
        httpd.end_workers()
        threads = httpd.request_threads()
        while any(thread.is_alive() for thread in threads):
            if loop.time() > deadline:
                logger.warning("The metrics server's threads did not end within %ss", THREAD_EXIT_TIMEOUT)
                return
            await asyncio.sleep(0.005)
            threads = httpd.request_threads()

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def serves_invocations(self) -> bool:
        """An invocation's timeline names commands and routes: served only with basic auth, or on a
        loopback address where only this host can ask."""
        if self._invocations is None:
            return False
        return self._expected_credentials is not None or self.host in _LOOPBACK

    # -- requests (each in a thread of its own) ------------------------------------------------

    def answer(self, path: str, query: str, headers: Message) -> Reply:
        """The reply to ``GET path?query`` with the request's ``headers``; a 500 if building it fails."""
        try:
            return self._answer(path, query, headers)
        except Exception:
            logger.exception("Answering GET %s failed", path)
            return 500, b"answering failed; see the bot's log\n", {"Content-Type": "text/plain"}

    def _answer(self, path: str, query: str, headers: Message) -> Reply:
        protected = path in _PROTECTED or path.startswith(_DEBUG_PREFIX)
        if protected and not self._authorised(headers.get("Authorization", "")):
            return (
                401,
                b"authentication required\n",
                {"WWW-Authenticate": 'Basic realm="comet", charset="UTF-8"', "Content-Type": "text/plain"},
            )
        if path == "/metrics":
            return self._metrics(query, headers)
        if path == "/healthz":
            return self._healthz()
        if path == "/readyz":
            return self._readyz()
        if path.startswith(INVOCATIONS_PATH) and self.serves_invocations:
            return self._invocation(path[len(INVOCATIONS_PATH) :])
        return 404, b"not found\n", {"Content-Type": "text/plain"}

    def _on_loop(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run ``coro`` on the bot's loop and wait here for its result. :class:`_LoopClosed` if the
        loop is gone; what ``coro`` raises is raised here."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise _LoopClosed
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # closed meanwhile
            coro.close()
            raise _LoopClosed from None
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def _metrics(self, query: str, headers: Message) -> Reply:
        fmt = choose_format(",".join(headers.get_all("Accept", [])))
        compress = gzip_accepted(headers.get("Accept-Encoding", ""))
        names = parse_qs(query).get("name[]", [])
        try:
            with self._render_lock:  # the switch interval is lowered for the whole request
                body = _render(self._exposition, fmt, names, compress)
        except Exception:
            logger.exception("Rendering /metrics failed")
            return 500, b"rendering the metrics failed; see the bot's log\n", {"Content-Type": "text/plain"}
        reply_headers = {"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding"}
        if compress:
            reply_headers["Content-Encoding"] = "gzip"
        return 200, body, reply_headers

    def _healthz(self) -> Reply:
        try:
            self._on_loop(_nothing(), LOOP_TIMEOUT)
        except TimeoutError:
            return _json_reply({"status": "unresponsive", "error": "the event loop did not answer"}, 503)
        except _LoopClosed:
            return _json_reply({"status": "stopped", "error": "the event loop is closed"}, 503)
        return _json_reply({"status": "alive"}, 200)

    def _readyz(self) -> Reply:
        if self._readiness is None:
            return _json_reply({"status": "healthy"}, 200)
        try:
            payload = self._on_loop(self._ready_payload(), READINESS_TIMEOUT + LOOP_TIMEOUT)
        except TimeoutError:
            payload = {"status": "timeout"}
        except _LoopClosed:
            payload = {"status": "stopped", "error": "the event loop is closed"}
        return _json_reply(payload, 200 if payload.get("status") == "healthy" else 503)

    async def _ready_payload(self) -> dict[str, Any]:
        """On the loop: the provider's answer, or why there is none."""
        assert self._readiness is not None
        try:
            async with asyncio.timeout(READINESS_TIMEOUT):
                result = self._readiness()
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError:
            return {"status": "timeout"}
        except Exception as exc:
            logger.exception("Readiness provider failed")
            return {"status": "error", "error": type(exc).__name__}
        return result if isinstance(result, dict) else {"status": "error", "error": "bad result"}

    def _invocation(self, trace_id: str) -> Reply:
        lookup = self._invocations
        assert lookup is not None

        async def find() -> dict[str, Any] | None:  # the recorder belongs to the loop
            return lookup(trace_id) if 0 < len(trace_id) <= 64 else None

        try:
            found = self._on_loop(find(), LOOP_TIMEOUT)
        except (TimeoutError, _LoopClosed):
            return _json_reply({"error": "the event loop did not answer"}, 503)
        if found is None:
            return _json_reply(
                {"error": "no such invocation (only recent slow or failed ones are kept)"}, 404
            )
        return _json_reply(found, 200)

    def _authorised(self, authorization: str) -> bool:
        expected = self._expected_credentials
        if expected is None:
            return True
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            supplied = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(supplied, expected)


class _LoopClosed(Exception):
    """The bot's event loop is closed: nothing can be asked of it."""


async def _nothing() -> None:
    """Liveness: that the loop ran this at all is the answer."""


def _render(exposition: Exposition, fmt: Format, names: Sequence[str], compress: bool) -> bytes:
    """Runs in the request's thread."""
    output = exposition.render(fmt, names)
    return gzip.compress(output, compresslevel=GZIP_LEVEL) if compress else output


def _json_reply(payload: dict[str, Any], status: int) -> Reply:
    body = json.dumps(json_safe(payload), allow_nan=False).encode()
    return status, body, {"Content-Type": f"{_JSON}; charset=utf-8"}
