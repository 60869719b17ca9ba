"""The cost of the bot's instrumentation, end to end (``python -m bench bot``).

The real CometBot — launcher runtime, default registry, every extension, HTTP scrubber, metrics
server — answers ``!ping`` through the real discord.py client. The emulator runs in its own process
and drives the load there (``POST /_control/load``: a fixed number of messages in flight over several
channels, the next one sent when the reply arrives), so this process runs only the bot.

1. Throughput: at least 15 alternating rounds with the instrumentation ON (command and gateway hooks,
   loop-lag monitor) and OFF (all uninstalled from the same bot). Prints the median round trips/s of
   each, the ratio ON/OFF (target >= 0.97) and the added cost per round trip in microseconds.
2. The REST metrics and the flight recorder: alternating rounds with both on, with both off (the
   rest of the instrumentation on), and with both off again as the noise control (the same bot in
   the same state twice). Prints each ratio to "both off" and whether the cost of REST metrics and
   recorder stays within the spread of the noise control.
3. Scrapes under load: instrumentation ON, alternating rounds with and without a Prometheus-like
   scraper (another process, GET /metrics with Accept: OpenMetrics and gzip) while a probe in the bot's
   loop records the worst event-loop lag of each round. Prints the scrape time and how much the
   scrapes add to the worst lag (target <= 5 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import discord
import discord.http
import discord.webhook.async_
from discord.webhook.async_ import AsyncWebhookAdapter

from comet.core.config import Settings
from comet.core.demo_guild import FAN_SERVER_SEED
from comet.core.launcher import Runtime, start_runtime
from discord_emulator.endpoints import restoring_endpoints
from discord_emulator.testing.client import TEST_TOKEN, fast_ready

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = 8
IN_FLIGHT = 16
ROUNDS = 16  # per side (ON and OFF), alternating
ROUND_SECONDS = 1.0
WARMUP_ROUNDS = 2
SCRAPE_ROUNDS = 8  # per side (with and without scrapes)
RECORDER_ROUNDS = 10  # per side (REST metrics and recorder on, off, off again)
SCRAPE_INTERVAL = 0.25  # seconds between scrapes in a scrape round (Prometheus would use 15 s)
PROBE_INTERVAL = 0.002
MESSAGE_LIMIT = 100
TARGET_RATIO = 0.97
TARGET_LAG_MS = 5.0


# -- the scraper (runs in its own process) --------------------------------------------------------


def scrape_main(url: str, duration: float, interval: float) -> None:
    """Scrape ``url`` every ``interval`` s for ``duration`` s; print the times (ms) as JSON."""
    times: list[float] = []
    sizes: list[int] = []
    deadline = time.monotonic() + duration
    headers = {"Accept": "application/openmetrics-text;version=1.0.0", "Accept-Encoding": "gzip"}
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            sizes.append(len(resp.read()))
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(interval)  # the scraper's own pacing, in its own process
    print(json.dumps({"times_ms": times, "bytes": sizes}), flush=True)


# -- helpers ---------------------------------------------------------------------------------------------


class LagProbe:
    """The worst lateness of a short, repeated wake-up on the bot's loop during a round."""

    def __init__(self, interval: float = PROBE_INTERVAL) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, loop.time() - expected)

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.worst


async def instrumentation(runtime: Runtime, on: bool) -> None:
    bot = runtime.bot
    if on:
        bot.command_instrumentation.install()
        bot.gateway_instrumentation.install()
        runtime.instrumentation.loop_monitor.start()
    else:
        bot.command_instrumentation.uninstall()
        bot.gateway_instrumentation.uninstall()
        await runtime.instrumentation.loop_monitor.stop()


#: The process-wide patches of the REST metrics: (owner, attribute), each restorable by ``__wrapped__``.
REST_PATCHES = ((discord.http.Ratelimit, "acquire"), (discord.http.Ratelimit, "__aexit__"),
                (AsyncWebhookAdapter, "request"), (discord.http, "json_or_text"),
                (discord.webhook.async_, "json_or_text"))  # fmt: skip


def rest_and_recorder(runtime: Runtime, on: bool, saved: dict[str, Any]) -> None:
    """The REST metrics (the request wrapper and the process-wide attempt, bucket and webhook
    patches) and the flight recorder on or off."""
    bot = runtime.bot
    if "wrapped" not in saved:
        saved["wrapped"], saved["recorder"] = bot.http.request, bot.command_instrumentation.recorder
        saved["patches"] = [getattr(owner, name) for owner, name in REST_PATCHES]
    wrapped = saved["wrapped"]
    bot.http.request = wrapped if on else wrapped.__wrapped__  # type: ignore[method-assign]
    for (owner, name), patched in zip(REST_PATCHES, saved["patches"], strict=True):
        setattr(owner, name, patched if on else patched.__wrapped__)
    bot.command_instrumentation.recorder = saved["recorder"] if on else None


async def load_round(http: aiohttp.ClientSession, control: str, load: dict[str, Any]) -> dict[str, Any]:
    body = {**load, "in_flight": IN_FLIGHT, "duration": ROUND_SECONDS}
    async with http.post(f"{control}/load", json=body) as response:
        result: dict[str, Any] = await response.json()
    if "per_second" not in result:
        raise RuntimeError(f"the emulator refused the load: {result}")
    if result.get("timeouts"):
        raise RuntimeError(f"replies timed out during a round: {result}")
    return result


async def start_emulator() -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "discord_emulator", "--seed", FAN_SERVER_SEED, "--port", "0",
        "--message-limit", str(MESSAGE_LIMIT),
        stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT),
    )  # fmt: skip
    assert proc.stdout is not None
    info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    return proc, info


def count_series(runtime: Runtime) -> int:
    return sum(len(family.samples) for family in runtime.telemetry.registry.collect())


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):8.1f}  (min {min(values):.1f}, max {max(values):.1f})"


# -- the benchmark --------------------------------------------------------------------------------------


async def run(workdir: Path) -> dict[str, Any]:
    proc, info = await start_emulator()
    control = f"{info['url']}/_control"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            spec = {"name": "bench", "members": CHANNELS, "channels": CHANNELS}
            async with http.post(f"{control}/guilds", json=spec) as response:
                guild = await response.json()
            load = {"channel_ids": guild["channel_ids"], "author_ids": guild["member_ids"]}
            settings = Settings(
                token=TEST_TOKEN,
                discord_api_base=info["api_base"],
                discord_gateway_url=info["gateway_url"],
                metrics_port=0,
                log_path=str(workdir / "bench.log"),
                log_level="WARNING",
                database_path=str(workdir / "bench.db"),
                # The load is a few members posting hundreds of messages a second: not spam here.
                antispam_messages=10**9,
            )
            runtime = await start_runtime(settings)
            fast_ready(runtime.bot)
            runtime.start_bot(TEST_TOKEN)
            await asyncio.wait_for(runtime.bot.wait_until_ready(), 30)
            try:
                return await measure(runtime, http, control, load)
            finally:
                await runtime.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)


async def measure(
    runtime: Runtime, http: aiohttp.ClientSession, control: str, load: dict[str, Any]
) -> dict[str, Any]:
    for _ in range(WARMUP_ROUNDS):
        await load_round(http, control, load)
    idle = await scrape(f"{runtime.server.url}/metrics", 1.0, 0.1)

    # 1. Throughput, ON and OFF alternating (ABAB...), the same bot throughout.
    rates: dict[bool, list[float]] = {True: [], False: []}
    latencies: dict[bool, list[float]] = {True: [], False: []}
    for i in range(2 * ROUNDS):
        on = i % 2 == 0
        await instrumentation(runtime, on)
        gc.collect()
        result = await load_round(http, control, load)
        rates[on].append(result["per_second"])
        latencies[on].append(result["p50_ms"])
    await instrumentation(runtime, True)
    counted = runtime.telemetry.registry.get_sample_value(
        "comet_commands_total", {"command": "ping", "kind": "prefix", "outcome": "success"}
    )

    # 2. REST metrics and recorder: both on / both off / both off again (noise control), in turn.
    saved: dict[str, Any] = {}
    recorder_rates: dict[str, list[float]] = {"on": [], "off": [], "control": []}
    recorder_cpu: dict[str, list[float]] = {"on": [], "off": [], "control": []}
    # Cycles alternate on/off/control and control/off/on, so that no side always follows another.
    order = [
        s for c in range(RECORDER_ROUNDS) for s in (("on", "off", "control"), ("control", "off", "on"))[c % 2]
    ]
    for side in order:
        rest_and_recorder(runtime, side == "on", saved)
        gc.collect()
        cpu_before = time.process_time()
        result = await load_round(http, control, load)
        recorder_cpu[side].append((time.process_time() - cpu_before) / result["round_trips"] * 1e6)
        recorder_rates[side].append(result["per_second"])
    rest_and_recorder(runtime, True, saved)

    # 3. Scrapes under load: the worst loop lag with vs without a scraper in another process.
    probe = LagProbe()
    url = f"{runtime.server.url}/metrics"
    worst: dict[bool, list[float]] = {True: [], False: []}
    scrape_times: list[float] = []
    scrape_bytes: list[int] = []
    scrape_rates: dict[bool, list[float]] = {True: [], False: []}
    for i in range(2 * SCRAPE_ROUNDS):
        scraping = i % 2 == 0
        gc.collect()
        scraper = asyncio.ensure_future(scrape(url, ROUND_SECONDS, SCRAPE_INTERVAL)) if scraping else None
        probe.start()
        result = await load_round(http, control, load)
        worst[scraping].append(await probe.stop() * 1000)
        scrape_rates[scraping].append(result["per_second"])
        if scraper is not None:
            data = await scraper
            scrape_times.extend(data["times_ms"])
            scrape_bytes.extend(data["bytes"])
    return {
        "rates": rates,
        "latencies": latencies,
        "counted": counted,
        "recorder_rates": recorder_rates,
        "recorder_cpu": recorder_cpu,
        "worst": worst,
        "scrape_times": scrape_times,
        "scrape_bytes": scrape_bytes,
        "scrape_rates": scrape_rates,
        "series": count_series(runtime),
        "idle_scrapes": idle["times_ms"],
    }


async def scrape(url: str, duration: float, interval: float) -> dict[str, Any]:
    """Run the scraper in its own process (its HTTP client work must not load the bot's process)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRAPER, url, str(duration), str(interval),
        stdout=asyncio.subprocess.PIPE, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), duration + 30)
    data: dict[str, Any] = json.loads(out)
    return data


SCRAPER = (
    "import sys; from bench.bench_bot import scrape_main; "
    "scrape_main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))"
)


def report(r: dict[str, Any]) -> None:
    on, off = r["rates"][True], r["rates"][False]
    med_on, med_off = statistics.median(on), statistics.median(off)
    ratio = med_on / med_off
    pair_ratios = [a / b for a, b in zip(on, off, strict=True)]
    cost_us = (1 / med_on - 1 / med_off) * 1e6
    print(
        f"\nCometBot, discord.py {discord.__version__}, {os.cpu_count()} CPUs: !ping round trips, "
        f"{IN_FLIGHT} in flight over {CHANNELS} channels, emulator and load driver in their own process"
    )
    print(
        f"{ROUNDS} alternating rounds of {ROUND_SECONDS:g} s per side (after {WARMUP_ROUNDS} warm-up rounds)"
    )
    print(
        f"  instrumentation OFF  rt/s {spread(off)}   p50 {statistics.median(r['latencies'][False]):.2f} ms"
    )
    print(f"  instrumentation ON   rt/s {spread(on)}   p50 {statistics.median(r['latencies'][True]):.2f} ms")
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(
        f"  ratio ON/OFF (medians) {ratio:.3f}  [target >= {TARGET_RATIO}: {verdict}]; "
        f"per adjacent pair: median {statistics.median(pair_ratios):.3f}, "
        f"min {min(pair_ratios):.3f}, max {max(pair_ratios):.3f}"
    )
    print(
        f"  added cost per round trip: {cost_us:.1f} us; ping commands counted while ON: {r['counted']:.0f}"
    )

    rec = r["recorder_rates"]
    base = statistics.median(rec["off"])
    full_ratio, control_ratio = statistics.median(rec["on"]) / base, statistics.median(rec["control"]) / base
    control_pairs = [a / b for a, b in zip(rec["control"], rec["off"], strict=True)]
    noise = max(abs(1 - x) for x in control_pairs)
    verdict = "within" if abs(1 - full_ratio) <= noise else "OUTSIDE"
    print(
        f"\nREST metrics and flight recorder, {RECORDER_ROUNDS} rounds each of on / off / off again:\n"
        f"  rt/s on / off (medians) {full_ratio:.3f}; noise control off-again / off {control_ratio:.3f}, "
        f"its adjacent pairs spread +-{noise:.3f}: the cost is {verdict} the noise"
    )
    cpu = r["recorder_cpu"]
    cpu_base = statistics.median(cpu["off"])
    cpu_ratio = statistics.median(cpu["on"]) / cpu_base
    cpu_control = statistics.median(cpu["control"]) / cpu_base
    cpu_pairs = [abs(1 - a / b) for a, b in zip(cpu["control"], cpu["off"], strict=True)]
    verdict = "within" if abs(1 - cpu_ratio) <= max(cpu_pairs) else "OUTSIDE"
    print(
        f"  CPU per round trip (this process, the bot's): off {cpu_base:.0f} us, on / off {cpu_ratio:.3f} "
        f"(+{statistics.median(cpu['on']) - cpu_base:.1f} us); noise control {cpu_control:.3f}, its adjacent "
        f"pairs spread +-{max(cpu_pairs):.3f} (median {statistics.median(cpu_pairs):.3f}): "
        f"the cost is {verdict} the noise"
    )

    times = sorted(r["scrape_times"])
    lag_with, lag_without = r["worst"][True], r["worst"][False]
    added = statistics.median(lag_with) - statistics.median(lag_without)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(
        f"\n/metrics under that load ({r['series']} samples, {statistics.median(r['scrape_bytes'])} bytes "
        f"gzip OpenMetrics): {len(times)} scrapes, median {statistics.median(times):.1f} ms, "
        f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms; without load: median "
        f"{statistics.median(r['idle_scrapes']):.1f} ms"
    )
    print(
        f"  worst event-loop lag per round (probe every {PROBE_INTERVAL * 1000:g} ms, "
        f"{SCRAPE_ROUNDS} rounds each):\n    without scrapes {spread(lag_without)} ms\n"
        f"    with scrapes    {spread(lag_with)} ms"
    )
    verdict = "meets" if added <= TARGET_LAG_MS else "MISSES"
    print(f"  scrapes add {added:.2f} ms to the median worst lag [target <= {TARGET_LAG_MS:g} ms: {verdict}]")
    rate_ratio = statistics.median(r["scrape_rates"][True]) / statistics.median(r["scrape_rates"][False])
    print(f"  throughput with / without scrapes: {rate_ratio:.3f}")


def main() -> None:
    with restoring_endpoints(), tempfile.TemporaryDirectory(prefix="comet-bench-") as workdir:
        result = asyncio.run(run(Path(workdir)))
    report(result)


if __name__ == "__main__":
    main()
