"""The bot's own HTTP endpoint, on the bot's event loop: ``/metrics``, ``/healthz``, ``/readyz``.

* ``GET /metrics`` — the Prometheus text format, or OpenMetrics when the scraper's ``Accept`` asks
  for it (Prometheus does), gzip-compressed at level 1 when ``Accept-Encoding`` allows it; supports
  prometheus_client's ``?name[]=`` filter. Rendered by :class:`~instrumentation.exposition.Exposition`:
  no ``_created`` series (in this path only; other registries keep theirs), line prefixes cached per
  series, values read at every scrape. The exposition is rendered **in a worker thread**:
  a render is pure Python (well under a millisecond for the bot's ~300 series, but ~30 ms for a
  registry of ~3k series through prometheus_client's encoder), which on the loop would stall every
  heartbeat and command for that long; in a thread, the loop gets the GIL back every switch interval. The
  default interval (5 ms) still costs the loop up to 5 ms per GIL hand-over — several per loop
  iteration — so while a render runs the interval is lowered to ``render_switch_interval``
  (0.5 ms) and restored afterwards (``bench/bench_instrumentation.py`` measures the difference).
* ``GET /healthz`` — liveness: answering at all proves the loop runs. ``{"status": "alive"}``.
* ``GET /readyz`` — readiness from a provider callable (sync or async) returning the bot's health
  fields (status, uptime, latency, guilds, ...): 200 when ``status == "healthy"``, else 503. NaN and
  infinities (discord.py's latency before the first heartbeat ACK) become ``null``; the JSON is
  always strict.

Binds 127.0.0.1 by default. Optional HTTP basic auth protects ``/metrics`` and ``/readyz``
(``/healthz`` stays open for container liveness probes; it reveals nothing). A port already in use
raises :class:`PortInUseError` naming it — never a silent move to another port.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import gzip
import hmac
import inspect
import json
import logging
import math
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import gzip_accepted

from instrumentation.exposition import Exposition, Format, choose_format

__all__ = ["GZIP_LEVEL", "MetricsServer", "PortInUseError", "Readiness", "json_safe"]

logger = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]
#: ``/debug/invocations/<id>``: the invocation with that id as JSON, or None when it is not kept.
InvocationLookup = Callable[[str], dict[str, Any] | None]
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DEBUG_PREFIX = "/debug/"

#: Fast compression: the text format shrinks ~10x at level 1 already; higher levels cost CPU.
GZIP_LEVEL = 1
#: A readiness provider that takes longer than this is reported as not ready.
READINESS_TIMEOUT = 5.0
#: How long stop() waits for the render thread to end.
THREAD_EXIT_TIMEOUT = 5.0
#: GIL switch interval while rendering (seconds); the interpreter's default is 0.005.
RENDER_SWITCH_INTERVAL = 0.0005

_PROTECTED = frozenset({"/metrics", "/readyz"})
_JSON = "application/json"


class PortInUseError(OSError):
    """The metrics port is taken; the message names ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"cannot serve metrics on {host}:{port}: the port is already in use",
        )
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


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
    """aiohttp server for ``/metrics``, ``/healthz`` and ``/readyz`` on the running loop."""

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
        self._runner: web.AppRunner | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._invocations = invocations

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
        if self._runner is not None:
            raise RuntimeError("MetricsServer already started")
        middlewares = [self._basic_auth_middleware] if self._expected_credentials is not None else []
        app = web.Application(middlewares=middlewares)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        if self.serves_invocations:
            app.router.add_get("/debug/invocations/{trace_id}", self._invocation)
        # No access log: Prometheus scrapes every few seconds and would flood it.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if _address_in_use(exc):
                raise PortInUseError(self.host, self._requested_port) from exc
            raise
        self._runner = runner
        # One worker: concurrent scrapes queue instead of rendering in parallel on our GIL.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comet-metrics-render")
        address = runner.addresses[0]
        self._port = int(address[1])
        logger.info("Serving /metrics, /healthz, /readyz on %s", self.url)

    async def stop(self) -> None:
        """Close the listening socket and end the render thread (waited for without blocking the
        loop, for at most ``THREAD_EXIT_TIMEOUT``): nothing of the server is left running."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        threads = list(executor._threads)  # the executor gives no other way to join
        executor.shutdown(wait=False, cancel_futures=True)
        # A thread cannot be awaited: its state is polled (a render in progress may take a moment),
        # which neither blocks the loop nor starts another thread to join it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + THREAD_EXIT_TIMEOUT
        while any(thread.is_alive() for thread in threads):
            if loop.time() > deadline:
                logger.warning("The metrics render thread did not end within %ss", THREAD_EXIT_TIMEOUT)
                return
            await asyncio.sleep(0.005)

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

    # -- handlers -----------------------------------------------------------------------------

    async def _invocation(self, request: web.Request) -> web.Response:
        assert self._invocations is not None
        trace_id = request.match_info["trace_id"]
        found = self._invocations(trace_id) if len(trace_id) <= 64 else None
        if found is None:
            return _json_response(
                {"error": "no such invocation (only recent slow or failed ones are kept)"}, 404
            )
        return _json_response(found, 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        fmt = choose_format(",".join(request.headers.getall("Accept", [])))
        compress = gzip_accepted(request.headers.get("Accept-Encoding", ""))
        names = request.query.getall("name[]", [])
        executor = self._executor
        if executor is None:
            raise web.HTTPServiceUnavailable(text="server stopping")
        try:
            # Lowered from here, before the hand-off: the render thread waits for the GIL at most
            # the lowered interval to start, not the 5 ms a busy loop thread would otherwise hold it.
            with _switch_interval.lowered(self._render_switch_interval):
                body = await asyncio.get_running_loop().run_in_executor(
                    executor, _render, self._exposition, fmt, names, compress
                )
        except Exception:
            logger.exception("Rendering /metrics failed")
            return web.Response(status=500, text="rendering the metrics failed; see the bot's log\n")
        headers = {"Content-Type": fmt.content_type, "Vary": "Accept, Accept-Encoding"}
        if compress:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json_response({"status": "alive"}, 200)

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._readiness is None:
            payload: dict[str, Any] = {"status": "healthy"}
        else:
            try:
                async with asyncio.timeout(READINESS_TIMEOUT):
                    result = self._readiness()
                    if inspect.isawaitable(result):
                        result = await result
                payload = result if isinstance(result, dict) else {"status": "error", "error": "bad result"}
            except TimeoutError:
                payload = {"status": "timeout"}
            except Exception as exc:
                logger.exception("Readiness provider failed")
                payload = {"status": "error", "error": type(exc).__name__}
        status = 200 if payload.get("status") == "healthy" else 503
        return _json_response(payload, status)

    @web.middleware
    async def _basic_auth_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        protected = request.path in _PROTECTED or request.path.startswith(_DEBUG_PREFIX)
        if protected and not self._authorised(request):
            return web.Response(
                status=401,
                text="authentication required\n",
                headers={"WWW-Authenticate": 'Basic realm="comet", charset="UTF-8"'},
            )
        return await handler(request)

    def _authorised(self, request: web.Request) -> bool:
        expected = self._expected_credentials
        if expected is None:
            return True
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            supplied = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(supplied, expected)


def _render(exposition: Exposition, fmt: Format, names: Sequence[str], compress: bool) -> bytes:
    """Runs in the worker thread."""
    output = exposition.render(fmt, names)
    return gzip.compress(output, compresslevel=GZIP_LEVEL) if compress else output


class _SwitchInterval:
    """Lower ``sys.setswitchinterval`` while at least one render runs; restore it after the last.

    The interval is process-wide, so overlapping renders (several servers in one process) share
    one lowering, and the value saved before the first is the one restored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved = 0.0

    @contextmanager
    def lowered(self, interval: float | None) -> Iterator[None]:
        if interval is None:
            yield
            return
        with self._lock:
            if self._active == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(interval, self._saved))
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    sys.setswitchinterval(self._saved)


_switch_interval = _SwitchInterval()


def _json_response(payload: dict[str, Any], status: int) -> web.Response:
    text = json.dumps(json_safe(payload), allow_nan=False)
    return web.Response(status=status, text=text, content_type=_JSON)


def _address_in_use(exc: OSError) -> bool:
    # EADDRINUSE on POSIX, WSAEADDRINUSE (10048) on Windows.
    return exc.errno in {errno.EADDRINUSE, 10048} or "address already in use" in str(exc).lower()
