"""The scraper of ``bench/bench_peers.py``: a process of its own, standard library only.

    python bench/peer_scrape.py URL

It starts before the measured rounds (its start-up never competes with the bot during one) and
answers lines on stdin, one JSON line each:

``load SECONDS INTERVAL``  scrape every INTERVAL s for SECONDS s: ``{"times_ms": [...]}``
``idle COUNT INTERVAL``    COUNT scrapes, INTERVAL s apart: ``{"times_ms": [...]}``
``sizes``                  one scrape as Prometheus asks (``PROMETHEUS_HEADERS``) and one with no
                           ``Accept`` and no gzip: the bytes of each body, what was served
                           (content type, encoding), the samples (lines not starting with ``#``)
                           and those of the ``ping`` command.

A scrape is timed from the request to the last byte of the body (as served: gzip is not decoded
inside the timing). ``bench.bench_bot.scrape_main`` is not reused: it sends a different ``Accept``
header and keeps only the served bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
import urllib.request
from typing import Any

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    "Accept-Encoding": "gzip",
}
TIMEOUT = 10.0


def fetch(url: str, headers: dict[str, str]) -> tuple[float, bytes, dict[str, str]]:
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT) as resp:
        body = resp.read()
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, body, {k.lower(): v for k, v in resp.headers.items()}


def scrape_for(url: str, seconds: float, interval: float) -> list[float]:
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(fetch(url, PROMETHEUS_HEADERS)[0])
        time.sleep(interval)  # the scraper's own pacing, in its own process
    return times


def scrape_times(url: str, count: int, interval: float) -> list[float]:
    times: list[float] = []
    for _ in range(count):
        times.append(fetch(url, PROMETHEUS_HEADERS)[0])
        time.sleep(interval)  # the scraper's own pacing, in its own process
    return times


def sizes(url: str) -> dict[str, Any]:
    _, served, headers = fetch(url, PROMETHEUS_HEADERS)
    encoding = headers.get("content-encoding", "identity")
    decoded = gzip.decompress(served) if encoding == "gzip" else served
    _, plain, plain_headers = fetch(url, {})
    if plain_headers.get("content-encoding", "identity") != "identity":
        raise RuntimeError(f"{url} compressed a response no one asked to compress")
    lines = plain.decode().splitlines()
    return {
        "served_bytes": len(served),
        "served_decoded_bytes": len(decoded),
        "served_type": headers.get("content-type", ""),
        "served_encoding": encoding,
        "plain_bytes": len(plain),
        "plain_type": plain_headers.get("content-type", ""),
        "samples": sum(1 for line in lines if line and not line.startswith("#")),
        # Proof that the instrumentation saw the load: its series of the ping command.
        "ping_samples": sum(1 for line in lines if not line.startswith("#") and 'command="ping"' in line),
    }


def main() -> None:
    url = sys.argv[1]
    for line in sys.stdin:
        command, *args = line.split()
        if command == "load":
            reply: dict[str, Any] = {"times_ms": scrape_for(url, float(args[0]), float(args[1]))}
        elif command == "idle":
            reply = {"times_ms": scrape_times(url, int(args[0]), float(args[1]))}
        elif command == "sizes":
            reply = sizes(url)
        else:
            reply = {"error": f"unknown command {command!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
