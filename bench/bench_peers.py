"""COMET's instrumentation side by side with its peers, in one run (``python -m bench peers``).

The same minimal discord.py bot (``commands.Bot``, one ``!ping`` command replying ``pong``;
``bench/peer_bot.py``) under the same load, in six variants:

``plain`` / ``plain-control``   no metrics, twice: the spread between the two is the noise;
``discord-ext-prometheus``      ``await bot.add_cog(PrometheusCog(bot, port=P))`` (its README);
``argus-dpy``                   ``Argus(bot, port=P, host="127.0.0.1")`` (its README; measured, no
                                code of it is in this repository: it is AGPL);
``comet-instrument``            ``handle = await instrumentation.instrument(bot, ...)``;
``comet-taps``                  the same, the bot class running COMET's dispatch taps (as CometBot).

The peers run in their own venv (``bench/peers_venv.py``) with the project's discord.py version.

How: every round is a fresh emulator (``--seed none`` plus one guild of 8 channels and 8 members
from the control API) and a fresh bot process. A fresh emulator rather than a fresh guild, because
it costs ~0.2 s and then every round starts from the same state: no message store, request record or
heap left by the previous variant's round, and the bot sees exactly one guild. In a round: the bot
starts, a warm-up load, then the measured load (the emulator's closed-loop driver, ``IN_FLIGHT``
messages in flight over the channels, in the emulator's process): replies/s, the bot process's CPU
seconds (psutil, user + system, all threads) from just before to just after it, divided by the
replies, and the worst event-loop lag (a 2 ms wake-up in the bot's loop). Bots with ``/metrics``
then get a second load round with a Prometheus-like scraper in its own process (every
``SCRAPE_INTERVAL`` s, ``Accept: OpenMetrics, text;q=0.5`` and gzip: scrape times and the lag
with scrapes), then idle scrapes and the body's bytes as served and as plain text (no ``Accept``,
no gzip), whose non-``#`` lines are the samples. The scrape rounds do not count in replies/s or CPU.

Order: the variants alternate round by round, cycle by cycle in the rows of a Williams design (for
an even count each variant follows every other exactly once in ``len(variants)`` cycles), so no
variant always follows the same one. Figures are medians over the rounds of this one run, printed
as ratios to ``plain``; ``plain-control`` / ``plain`` and the largest |1 - ratio| of the two in one
cycle show how much of a difference is noise. ``COMET_BENCH_QUICK=1``: a short development run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import discord
import psutil

from bench import peers_venv
from bench.bench_instrumentation import table
from bench.peer_bot import PEER_VARIANTS, VARIANTS

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
QUICK = os.environ.get("COMET_BENCH_QUICK", "") not in ("", "0")
CHANNELS = 8
IN_FLIGHT = 16
ROUNDS = 2 if QUICK else 6  # per variant
ROUND_SECONDS = 0.5 if QUICK else 1.5
WARMUP_SECONDS = 0.3 if QUICK else 0.5
SCRAPE_SECONDS = 0.5 if QUICK else 1.0
SCRAPE_INTERVAL = 0.1
IDLE_SCRAPES = 5
MESSAGE_LIMIT = 100
START_TIMEOUT = 60.0


# -- processes -------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Terminate ``proc`` if it still runs (kill after 5 s); always reaped."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def spawn(stack: contextlib.AsyncExitStack, *argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=child_env(), **kwargs
    )
    stack.push_async_callback(stop, proc)
    return proc


def tail(log: Path | None) -> str:
    """The end of a bot's stderr, for an error message."""
    return log.read_text()[-3000:] if log is not None and log.exists() else ""


async def read_json(proc: asyncio.subprocess.Process, what: str, log: Path | None = None) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
    if not line:
        raise RuntimeError(f"{what} ended without answering (exit {await proc.wait()}):\n{tail(log)}")
    data: dict[str, Any] = json.loads(line)
    if "error" in data:
        raise RuntimeError(f"{what}: {data['error']}")
    return data


async def ask(
    proc: asyncio.subprocess.Process, command: str, what: str, log: Path | None = None
) -> dict[str, Any]:
    assert proc.stdin is not None
    proc.stdin.write(f"{command}\n".encode())
    await proc.stdin.drain()
    return await read_json(proc, what, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- one round ---------------------------------------------------------------------------------------


async def drive(
    http: aiohttp.ClientSession, control: str, load: dict[str, Any], seconds: float
) -> dict[str, Any]:
    body = {**load, "in_flight": IN_FLIGHT, "duration": seconds}
    async with http.post(f"{control}/load", json=body) as response:
        result: dict[str, Any] = await response.json()
    if "per_second" not in result or result.get("timeouts"):
        raise RuntimeError(f"the load round failed: {result}")
    return result


async def one_round(
    variant: str, python: str, http: aiohttp.ClientSession, workdir: Path, n: int
) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        emulator = await spawn(
            stack, sys.executable, "-m", "discord_emulator", "--seed", "none", "--port", "0",
            "--message-limit", str(MESSAGE_LIMIT), cwd=str(ROOT),
        )  # fmt: skip
        info = await read_json(emulator, "the emulator")
        control = f"{info['url']}/_control"
        spec = {"name": "bench", "members": CHANNELS, "channels": CHANNELS}
        async with http.post(f"{control}/guilds", json=spec) as response:
            guild = await response.json()
        load = {"channel_ids": guild["channel_ids"], "author_ids": guild["member_ids"]}

        log = workdir / f"{n:02d}-{variant}.log"
        bot = await spawn(
            stack, python, str(BENCH / "peer_bot.py"), "--variant", variant, "--api-base", info["api_base"],
            "--gateway-url", info["gateway_url"], "--metrics-port", str(free_port()),
            stderr=stack.enter_context(log.open("w")), cwd=str(workdir),
        )  # fmt: skip
        ready = await read_json(bot, f"the {variant} bot", log)
        url = ready["metrics_url"]
        scraper = None
        if url is not None:  # started now: its start-up overlaps the warm-up, not a measured round
            scraper = await spawn(stack, sys.executable, str(BENCH / "peer_scrape.py"), url, cwd=str(workdir))
        process = psutil.Process(ready["pid"])

        await drive(http, control, load, WARMUP_SECONDS)
        await ask(bot, "lag", variant, log)
        before = process.cpu_times()
        result = await drive(http, control, load, ROUND_SECONDS)
        after = process.cpu_times()
        lag = (await ask(bot, "lag", variant, log))["lag_ms"]
        cpu = (after.user + after.system) - (before.user + before.system)
        out: dict[str, Any] = {
            "rate": result["per_second"],
            "cpu_us": cpu / result["round_trips"] * 1e6,
            "lag_ms": lag,
            "p50_ms": result["p50_ms"],
        }
        if scraper is not None:
            assert scraper.stdin is not None
            scraper.stdin.write(f"load {SCRAPE_SECONDS} {SCRAPE_INTERVAL}\n".encode())
            await scraper.stdin.drain()
            await drive(http, control, load, SCRAPE_SECONDS)
            out["scrape_lag_ms"] = (await ask(bot, "lag", variant, log))["lag_ms"]
            out["load_scrapes"] = (await read_json(scraper, "the scraper"))["times_ms"]
            out["idle_scrapes"] = (
                await ask(scraper, f"idle {IDLE_SCRAPES} {SCRAPE_INTERVAL}", "the scraper")
            )["times_ms"]
            out["sizes"] = await ask(scraper, "sizes", "the scraper")
            if not out["sizes"]["ping_samples"]:
                raise RuntimeError(f"{variant}: /metrics has no series of the ping command; not measured")
        assert bot.stdin is not None
        bot.stdin.write(b"quit\n")
        await bot.stdin.drain()
        if await asyncio.wait_for(bot.wait(), 15) != 0:
            raise RuntimeError(f"the {variant} bot exited with {bot.returncode}:\n{tail(log)}")
        return out


def williams(n: int, cycle: int) -> list[int]:
    """Row ``cycle`` of a Williams design: over ``n`` (even) cycles each index follows each other once."""
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    row = [(x + cycle) % n for x in first]
    return row[::-1] if n % 2 and (cycle // n) % 2 else row  # odd n: mirrored rows balance it


async def run(
    variants: list[str], peers_python: str | None, workdir: Path
) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    n = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        for cycle in range(ROUNDS):
            order = [variants[i] for i in williams(len(variants), cycle)]
            print(f"  cycle {cycle + 1}/{ROUNDS}: {', '.join(order)}", flush=True)
            for variant in order:
                python = peers_python if variant in PEER_VARIANTS else sys.executable
                assert python is not None
                results[variant].append(await one_round(variant, python, http, workdir, n))
                n += 1
    return results


# -- report --------------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def summarise(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    base_rate = med([r["rate"] for r in results["plain"]])
    base_cpu = med([r["cpu_us"] for r in results["plain"]])
    rows = []
    for variant, rounds in results.items():
        rates = [r["rate"] for r in rounds]
        row: dict[str, Any] = {
            "variant": variant,
            "rate": med(rates),
            "min": min(rates),
            "max": max(rates),
            "ratio": med(rates) / base_rate,
            "cpu_us": med([r["cpu_us"] for r in rounds]),
            "cpu_ratio": med([r["cpu_us"] for r in rounds]) / base_cpu,
            "lag_ms": med([r["lag_ms"] for r in rounds]),
        }
        if "sizes" in rounds[0]:
            idle = [t for r in rounds for t in r["idle_scrapes"]]
            loaded = [t for r in rounds for t in r["load_scrapes"]]
            sizes = rounds[-1]["sizes"]
            row |= {
                "scrape_lag_ms": med([r["scrape_lag_ms"] for r in rounds]),
                "idle": (med(idle), max(idle)),
                "loaded": (med(loaded), max(loaded), len(loaded)),
                "served": f"{'OpenMetrics' if 'openmetrics' in sizes['served_type'] else 'text'}"
                f"{'+gzip' if sizes['served_encoding'] == 'gzip' else ''}",
                "served_bytes": med([r["sizes"]["served_bytes"] for r in rounds]),
                "plain_bytes": med([r["sizes"]["plain_bytes"] for r in rounds]),
                "samples": med([r["sizes"]["samples"] for r in rounds]),
            }
        rows.append(row)
    return rows


def noise_of(pairs: list[float]) -> str:
    """The largest |1 - ratio| of the noise control's pairs, and the median one (one disturbed round
    sets the largest)."""
    return f"spread +-{max(abs(1 - x) for x in pairs):.3f} (median {med([abs(1 - x) for x in pairs]):.3f})"


def report(results: dict[str, list[dict[str, Any]]], versions: str) -> None:
    rows = summarise(results)
    control = list(zip(results["plain-control"], results["plain"], strict=True))
    pairs = [c["rate"] / p["rate"] for c, p in control]
    cpu_pairs = [c["cpu_us"] / p["cpu_us"] for c, p in control]
    control_ratio = next(r["ratio"] for r in rows if r["variant"] == "plain-control")
    print(
        f"\n{versions}; {os.cpu_count()} CPUs; {ROUNDS} rounds per variant (fresh emulator and bot each), "
        f"{ROUND_SECONDS:g} s measured after {WARMUP_SECONDS:g} s warm-up, {IN_FLIGHT} !ping in flight "
        f"over {CHANNELS} channels"
    )
    dash = "-"
    table(
        "load (medians over rounds; ratios to plain)",
        ["variant", "replies/s", "min..max", "vs plain", "CPU us/reply", "vs plain", "worst lag ms",
         "lag w/ scrapes ms"],
        [
            [r["variant"], f"{r['rate']:.0f}", f"{r['min']:.0f}..{r['max']:.0f}", f"{r['ratio']:.3f}",
             f"{r['cpu_us']:.0f}", f"{r['cpu_ratio']:.3f}", f"{r['lag_ms']:.2f}",
             f"{r['scrape_lag_ms']:.2f}" if "scrape_lag_ms" in r else dash]
            for r in rows
        ],
    )  # fmt: skip
    print(
        f"  noise control: plain-control / plain (medians) {control_ratio:.3f}; in one cycle: "
        f"{', '.join(f'{x:.3f}' for x in pairs)} -> {noise_of(pairs)}\n"
        f"  CPU per reply, plain-control / plain in one cycle: {', '.join(f'{x:.3f}' for x in cpu_pairs)} "
        f"-> {noise_of(cpu_pairs)}"
    )
    scraped = [r for r in rows if "samples" in r]
    if scraped:
        table(
            f"/metrics (scraper in its own process; under load: one scrape every {SCRAPE_INTERVAL:g} s)",
            ["variant", "idle ms med/max", "under load ms med/max (n)", "served as", "served bytes",
             "plain-text bytes", "samples"],
            [
                [r["variant"], f"{r['idle'][0]:.2f}/{r['idle'][1]:.2f}",
                 f"{r['loaded'][0]:.2f}/{r['loaded'][1]:.2f} ({r['loaded'][2]})", r["served"],
                 f"{r['served_bytes']:.0f}", f"{r['plain_bytes']:.0f}", f"{r['samples']:.0f}"]
                for r in scraped
            ],
        )  # fmt: skip
    print(f"\nmarkdown (measured in this one run; noise control replies/s {noise_of(pairs)}):\n")
    print(
        "| variant | replies/s | vs plain | CPU µs/reply | worst loop lag ms (w/ scrapes) "
        "| scrape ms idle / under load (med, max) | served as | bytes served / plain text | samples |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        lag = f"{r['lag_ms']:.2f}" + (f" ({r['scrape_lag_ms']:.2f})" if "scrape_lag_ms" in r else "")
        metrics = (
            f"{r['idle'][0]:.1f}, {r['idle'][1]:.1f} / {r['loaded'][0]:.1f}, {r['loaded'][1]:.1f} "
            f"| {r['served']} | {r['served_bytes']:.0f} / {r['plain_bytes']:.0f} | {r['samples']:.0f}"
            if "samples" in r
            else "- | - | - | -"
        )
        print(
            f"| {r['variant']} | {r['rate']:.0f} | {r['ratio']:.3f} | {r['cpu_us']:.0f} | {lag} | {metrics} |"
        )


def main() -> None:
    print(f"discord.py {discord.__version__} in the project venv ({sys.executable})")
    peers_python = peers_venv.ensure()
    found = peers_venv.print_versions(peers_python)
    if peers_python is not None and found["peers"] != found["project"]:
        print(
            f"  discord.py differs (project {found['project']}, peers {found['peers']}): "
            "no comparison; the peer variants are SKIPPED"
        )
        peers_python = None
    variants = [v for v in VARIANTS if peers_python is not None or v not in PEER_VARIANTS]
    if QUICK:
        print("COMET_BENCH_QUICK: a short development run, not figures to quote")
    with tempfile.TemporaryDirectory(prefix="comet-bench-peers-") as workdir:
        results = asyncio.run(run(variants, str(peers_python) if peers_python else None, Path(workdir)))
    report(results, f"discord.py {found['project']}")


if __name__ == "__main__":
    main()
