"""MetricsServer over real HTTP: /metrics formats and gzip, /healthz, /readyz, auth, port in use."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterable
from email.message import Message
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from waiting import wait_until

from instrumentation import http_threads
from instrumentation import server as server_module
from instrumentation.collectors import register_runtime_collectors
from instrumentation.http_threads import MAX_CONNECTIONS, Reply, ThreadedServer
from instrumentation.metrics import Metrics
from instrumentation.server import RENDER_SWITCH_INTERVAL, MetricsServer, PortInUseError, json_safe

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # No automatic Accept-Encoding: each test says what it accepts.
    async with aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=["Accept-Encoding"]) as s:
        yield s


@pytest_asyncio.fixture
async def server(registry: CollectorRegistry, metrics: Metrics) -> AsyncIterator[MetricsServer]:
    metrics.register_commands(["ping", "oshi set"])
    metrics.commands.labels("ping", "prefix", "success").inc(3)
    register_runtime_collectors(registry)
    async with MetricsServer(registry, port=0) as srv:
        yield srv


@pytest.mark.asyncio
async def test_metrics_text_format(server: MetricsServer, session: aiohttp.ClientSession) -> None:
    assert server.host == "127.0.0.1" and server.port != 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    async with session.get(f"{server.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "Content-Encoding" not in response.headers
        text = (await response.read()).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ping = [
        s
        for s in families["comet_commands"].samples
        if s.labels == {"command": "ping", "kind": "prefix", "outcome": "success"}
    ]
    assert ping[0].value == 3
    assert "process_resident_memory_bytes" in families and "python_gc_collections" in families


@pytest.mark.asyncio
async def test_metrics_openmetrics_when_asked(server: MetricsServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/metrics", headers={"Accept": OPENMETRICS_ACCEPT}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = (await response.read()).decode()
    assert text.endswith("# EOF\n")
    names = {f.name for f in parse_openmetrics(text)}
    assert {"comet_commands", "comet_command_duration_seconds", "process_cpu_seconds"} <= names


@pytest.mark.asyncio
async def test_metrics_gzip_when_accepted(server: MetricsServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/metrics", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        raw = await response.read()
    assert raw[:2] == b"\x1f\x8b"
    text = gzip.decompress(raw).decode()
    assert "comet_commands_total" in text
    assert len(raw) < len(text) / 3


@pytest.mark.asyncio
async def test_metrics_name_filter(server: MetricsServer, session: aiohttp.ClientSession) -> None:
    url = f"{server.url}/metrics?name[]=process_resident_memory_bytes"
    async with session.get(url) as response:
        text = (await response.read()).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names == {"process_resident_memory_bytes"}


class _ThreadRecordingCollector(Collector):
    """Records, at collect time, which thread renders and the GIL switch interval then."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.switch_intervals: list[float] = []

    def collect(self) -> Iterable[Metric]:
        self.threads.append(threading.current_thread().name)
        self.switch_intervals.append(sys.getswitchinterval())
        return [GaugeMetricFamily("probe_value", "A probe.", value=1)]


@pytest.mark.asyncio
async def test_rendering_runs_off_the_event_loop(session: aiohttp.ClientSession) -> None:
    registry = CollectorRegistry()
    probe = _ThreadRecordingCollector()
    registry.register(probe)
    probe.threads.clear()
    probe.switch_intervals.clear()
    original = sys.getswitchinterval()
    async with MetricsServer(registry, port=0) as server:
        async with session.get(f"{server.url}/metrics") as response:
            assert response.status == 200
    assert probe.threads and all(name.startswith("comet-metrics-") for name in probe.threads)
    assert threading.current_thread().name not in probe.threads
    # The GIL is handed back to the loop more often while rendering, and only then.
    assert probe.switch_intervals == [RENDER_SWITCH_INTERVAL]
    assert sys.getswitchinterval() == original


@pytest.mark.asyncio
async def test_switch_interval_untouched_when_disabled(session: aiohttp.ClientSession) -> None:
    registry = CollectorRegistry()
    probe = _ThreadRecordingCollector()
    registry.register(probe)
    probe.switch_intervals.clear()
    async with MetricsServer(registry, port=0, render_switch_interval=None) as server:
        async with session.get(f"{server.url}/metrics") as response:
            assert response.status == 200
    assert probe.switch_intervals == [sys.getswitchinterval()]


class _BrokenCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        raise RuntimeError("collector bug")


@pytest.mark.asyncio
async def test_render_failure_is_a_500_and_the_server_survives(session: aiohttp.ClientSession) -> None:
    registry = CollectorRegistry()
    broken = _BrokenCollector()
    registry.register(broken)
    async with MetricsServer(registry, port=0) as server:
        async with session.get(f"{server.url}/metrics") as response:
            assert response.status == 500
        registry.unregister(broken)
        async with session.get(f"{server.url}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{server.url}/metrics") as response:
            assert response.status == 200


@pytest.mark.asyncio
async def test_a_failing_handler_is_a_500_and_the_server_survives(
    registry: CollectorRegistry, session: aiohttp.ClientSession
) -> None:
    def lookup(trace_id: str) -> dict[str, Any] | None:
        raise RuntimeError("recorder bug")

    async with MetricsServer(registry, port=0, invocations=lookup) as server:
        async with session.get(f"{server.url}/debug/invocations/00000000000000ab") as response:
            assert response.status == 500
        async with session.get(f"{server.url}/healthz") as response:
            assert response.status == 200


@pytest.mark.asyncio
async def test_healthz(server: MetricsServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert strict_json(await response.text()) == {"status": "alive"}


def _get_while_the_loop_is_blocked(url: str) -> tuple[int, bytes]:
    """GET ``url`` from another thread while this (the loop's) thread is blocked, as a bot's loop
    is by synchronous code; the loop is let go once the answer has arrived."""
    answered = threading.Event()
    result: list[tuple[int, bytes]] = []

    def client() -> None:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                result.append((response.status, response.read()))
        except urllib.error.HTTPError as error:
            result.append((error.code, error.read()))
        finally:
            answered.set()

    thread = threading.Thread(target=client)
    thread.start()
    assert answered.wait(30), "no answer while the loop was blocked"  # blocks the loop, on purpose
    thread.join()
    return result[0]


@pytest.mark.asyncio
async def test_metrics_are_served_while_the_event_loop_is_blocked(server: MetricsServer) -> None:
    status, body = _get_while_the_loop_is_blocked(f"{server.url}/metrics")
    assert status == 200
    assert b'comet_commands_total{command="ping",kind="prefix",outcome="success"} 3.0' in body


@pytest.mark.asyncio
async def test_healthz_is_503_while_the_event_loop_is_blocked(
    server: MetricsServer, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "LOOP_TIMEOUT", 0.2)
    status, body = _get_while_the_loop_is_blocked(f"{server.url}/healthz")
    assert status == 503
    assert strict_json(body.decode())["status"] == "unresponsive"
    async with session.get(f"{server.url}/healthz") as response:  # the loop runs again
        assert response.status == 200


@pytest.mark.asyncio
async def test_workers_are_kept_between_connections_and_end_when_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answered_by: list[threading.Thread] = []  # the objects: the OS reuses an ended thread's id

    def answer(path: str, query: str, headers: Message) -> Reply:
        answered_by.append(threading.current_thread())
        return 200, b"ok\n", {"Content-Type": "text/plain"}

    def fetch() -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{httpd.server_address[1]}/", timeout=10) as response:
            body: bytes = response.read()
            return body

    async def get(*, then_free: bool = True) -> None:
        assert await asyncio.to_thread(fetch) == b"ok\n"
        if then_free:
            await wait_until(lambda: httpd.idle_workers() == 1, what="the worker free again")

    def distinct() -> int:
        return len({id(thread) for thread in answered_by})

    httpd = ThreadedServer("127.0.0.1", 0, answer, switch_interval=None)
    acceptor = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    acceptor.start()
    try:
        for _ in range(3):
            await get()
        # One connection after another: one worker answered them all, and it is still there.
        assert len(answered_by) == 3 and distinct() == 1
        assert httpd.request_threads() == answered_by[:1]
        # A worker with nothing to do ends by itself (after 120 s by default; 0.05 s here, from
        # its next wait on) ...
        monkeypatch.setattr(http_threads, "WORKER_IDLE_EXIT", 0.05)
        await get(then_free=False)  # free for 0.05 s only: what is waited for is its end
        await wait_until(
            lambda: not httpd.request_threads() and not any(t.is_alive() for t in answered_by),
            what="an idle worker's end",
        )
        # ... and the next connection starts a new one.
        await get(then_free=False)
        assert distinct() == 2
    finally:
        httpd.shutdown()
        acceptor.join()
        httpd.server_close()
        httpd.end_workers()
        for thread in httpd.request_threads():
            thread.join(10)
    assert not httpd.request_threads()


@pytest.mark.asyncio
async def test_connections_beyond_the_limit_are_closed_and_the_server_recovers(
    server: MetricsServer, session: aiohttp.ClientSession
) -> None:
    # Clients that connect and send nothing each hold a thread; past the limit, new ones are closed.
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        # Accepted after the idle ones (the backlog is FIFO), so it finds the limit reached.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            extra.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert extra.recv(1024) == b"", "answered beyond the connection limit"
    finally:
        for sock in idle:
            sock.close()

    # The idle clients gone, their workers are free again and the server answers again.
    async def answers() -> bool:
        try:
            async with session.get(f"{server.url}/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:  # still at the limit: the idle clients' workers are finishing
            return False

    await wait_until(answers, timeout=10, what="an answer after the idle clients left")


@pytest.mark.asyncio
async def test_readyz_healthy_sync_provider_with_nan_latency(
    registry: CollectorRegistry, session: aiohttp.ClientSession
) -> None:
    def health() -> dict[str, Any]:  # discord.py's latency is NaN before connecting
        return {
            "status": "healthy",
            "uptime": 12.5,
            "latency": math.nan,
            "guilds": 1,
            "shards": [math.inf, 0.1],
        }

    async with MetricsServer(registry, port=0, readiness=health) as server:
        async with session.get(f"{server.url}/readyz") as response:
            assert response.status == 200
            body = await response.text()
    assert "NaN" not in body and "Infinity" not in body
    assert strict_json(body) == {
        "status": "healthy",
        "uptime": 12.5,
        "latency": None,
        "guilds": 1,
        "shards": [None, 0.1],
    }


@pytest.mark.asyncio
async def test_readyz_unhealthy_async_provider_is_503(
    registry: CollectorRegistry, session: aiohttp.ClientSession
) -> None:
    async def health() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"status": "unhealthy", "uptime": 1.0, "latency": math.inf, "guilds": 0}

    async with MetricsServer(registry, port=0, readiness=health) as server:
        async with session.get(f"{server.url}/readyz") as response:
            assert response.status == 503
            assert strict_json(await response.text())["latency"] is None


@pytest.mark.asyncio
async def test_readyz_provider_error_is_503(
    registry: CollectorRegistry, session: aiohttp.ClientSession
) -> None:
    def health() -> dict[str, Any]:
        raise RuntimeError("bot not constructed")

    async with MetricsServer(registry, port=0, readiness=health) as server:
        async with session.get(f"{server.url}/readyz") as response:
            assert response.status == 503
            assert strict_json(await response.text()) == {"status": "error", "error": "RuntimeError"}


@pytest.mark.asyncio
async def test_readyz_without_provider(registry: CollectorRegistry, session: aiohttp.ClientSession) -> None:
    async with MetricsServer(registry, port=0) as server:
        async with session.get(f"{server.url}/readyz") as response:
            assert response.status == 200


@pytest.mark.asyncio
async def test_basic_auth(registry: CollectorRegistry, session: aiohttp.ClientSession) -> None:
    async with MetricsServer(registry, port=0, basic_auth=("prometheus", "s3cret:pass")) as server:
        for path in ("/metrics", "/readyz"):
            async with session.get(f"{server.url}{path}") as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Basic ")
            wrong = {"Authorization": aiohttp.encode_basic_auth("prometheus", "nope")}
            async with session.get(f"{server.url}{path}", headers=wrong) as response:
                assert response.status == 401
            async with session.get(
                f"{server.url}{path}", headers={"Authorization": "Basic !!notbase64"}
            ) as response:
                assert response.status == 401
            right = {"Authorization": aiohttp.encode_basic_auth("prometheus", "s3cret:pass")}
            async with session.get(f"{server.url}{path}", headers=right) as response:
                assert response.status == 200
        async with session.get(f"{server.url}/healthz") as response:  # liveness probes need no secret
            assert response.status == 200


@pytest.mark.asyncio
async def test_port_in_use_is_a_clear_error(registry: CollectorRegistry) -> None:
    async with MetricsServer(registry, port=0) as first:
        second = MetricsServer(registry, port=first.port)
        with pytest.raises(PortInUseError) as excinfo:
            await second.start()
    assert excinfo.value.port == first.port
    assert f"127.0.0.1:{first.port}" in str(excinfo.value)
    assert isinstance(excinfo.value, OSError)


@pytest.mark.asyncio
async def test_port_held_by_another_socket(registry: CollectorRegistry) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}"):
            await MetricsServer(registry, port=port).start()


@pytest.mark.asyncio
async def test_stop_releases_the_port(registry: CollectorRegistry, session: aiohttp.ClientSession) -> None:
    server = MetricsServer(registry, port=0)
    await server.start()
    port = server.port
    async with session.get(f"{server.url}/metrics") as response:
        assert response.status == 200
    await server.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("comet-metrics")], (
        "a thread outlived stop()"
    )
    again = MetricsServer(registry, port=port)
    await again.start()
    try:
        async with session.get(f"{again.url}/healthz") as response:
            assert response.status == 200
    finally:
        await again.stop()


def test_json_safe() -> None:
    value = {"a": [math.nan, {"b": -math.inf}], 3: (1, "x"), "ok": True, "obj": object}
    cleaned = json_safe(value)
    json.dumps(cleaned, allow_nan=False)
    assert cleaned["a"] == [None, {"b": None}] and cleaned["3"] == [1, "x"] and cleaned["ok"] is True


def test_bad_basic_auth_user() -> None:
    with pytest.raises(ValueError):
        MetricsServer(CollectorRegistry(), basic_auth=("a:b", "c"))
