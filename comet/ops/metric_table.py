"""The README's metric table, generated from a live ``/metrics`` exposition (never written by hand).

    python -m comet.ops.metric_table --url http://127.0.0.1:9108/metrics      # print the table
    python -m comet.ops.metric_table --demo --readme README.md               # start the demo, update README

``--readme`` replaces what lies between ``<!-- metric-table:start -->`` and ``<!-- metric-table:end -->``.
A labelled metric that has no series yet (an error counter nothing has incremented) shows no labels:
the exposition cannot tell them; the table says so.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from comet.ops.demo_process import DemoProcess
from comet.ops.local_http import free_port, http_get
from comet.ops.processes import StackError, wait_until

START_MARKER = "<!-- metric-table:start -->"
END_MARKER = "<!-- metric-table:end -->"
BOT_PREFIXES = ("comet_", "process_", "python_")
_SAMPLE_ONLY_LABELS = frozenset({"le", "quantile"})
NO_SERIES_YET = "(no series yet)"


@dataclass(frozen=True)
class MetricRow:
    name: str  # as written in queries: counters with _total
    type: str
    labels: tuple[str, ...] | None  # None: no series to read them from
    help: str


def metric_rows(exposition: str, prefixes: Sequence[str] = BOT_PREFIXES) -> list[MetricRow]:
    """One row per metric family of a text exposition whose name starts with one of ``prefixes``."""
    families = list(text_string_to_metric_families(exposition))
    # The text format shows a counter's or histogram's creation time as a separate "<name>_created"
    # gauge; it belongs to that metric, not a metric of its own.
    with_created = {f.name for f in families if f.type in ("counter", "histogram", "summary")}
    rows = []
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        if not name.startswith(tuple(prefixes)):
            continue
        if (
            family.type == "gauge"
            and name.endswith("_created")
            and name.removesuffix("_created") in with_created
        ):
            continue
        labels: set[str] = set()
        for sample in family.samples:
            labels.update(k for k in sample.labels if k not in _SAMPLE_ONLY_LABELS)
        rows.append(
            MetricRow(
                name, family.type, tuple(sorted(labels)) if family.samples else None, family.documentation
            )
        )
    return sorted(rows, key=lambda row: (not row.name.startswith("comet_"), row.name))


def markdown_table(rows: Iterable[MetricRow]) -> str:
    lines = ["| metric | type | labels | help |", "|---|---|---|---|"]
    for row in rows:
        if row.labels is None:
            labels = NO_SERIES_YET
        else:
            labels = ", ".join(row.labels) if row.labels else "–"
        help_text = row.help.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{row.name}` | {row.type} | {labels} | {help_text} |")
    return "\n".join(lines) + "\n"


def fetch_exposition(url: str, timeout: float = 10.0) -> str:
    # Ask for the classic text format: its counter family names are what the parser expects.
    request = urllib.request.Request(url, headers={"Accept": "text/plain; version=0.0.4"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def replace_between_markers(document: str, table: str) -> str:
    """``document`` with the text between the markers replaced by ``table``."""
    start = document.find(START_MARKER)
    end = document.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"markers {START_MARKER} ... {END_MARKER} not found (in that order)")
    head = document[: start + len(START_MARKER)]
    return f"{head}\n{table}{document[end:]}"


def _demo_exposition() -> str:
    # Failing commands in the mix, so that the labelled series that only exist once something
    # happened (command errors, monitored storage calls) are there to read their labels from.
    workdir = Path(".stack") / "metric-table"
    knobs = {"COMET_DEMO_RATE": "4", "COMET_DEMO_FAIL_RATIO": "0.25"}
    with DemoProcess(metrics_port=free_port(), workdir=workdir, demo_env=knobs) as demo:
        demo.wait_ready(timeout=60.0)
        demo.wait_for_traffic(timeout=60.0, commands=10)
        url = f"{demo.metrics_url}/metrics"
        try:
            wait_until(
                lambda: b"comet_command_errors_total{" in http_get(url)[1], timeout=30.0, what="errors"
            )
        except StackError:
            pass  # the table then says "(no series yet)" for it
        return fetch_exposition(url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m comet.ops.metric_table", description=__doc__.splitlines()[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a live /metrics URL, e.g. http://127.0.0.1:9108/metrics")
    source.add_argument("--demo", action="store_true", help="start the offline demo and read its /metrics")
    parser.add_argument("--readme", type=Path, help="update the table between the markers in this file")
    args = parser.parse_args(argv)
    exposition = fetch_exposition(args.url) if args.url else _demo_exposition()
    table = markdown_table(metric_rows(exposition))
    if args.readme is None:
        sys.stdout.write(table)
        return 0
    document = args.readme.read_text(encoding="utf-8")
    try:
        updated = replace_between_markers(document, table)
    except ValueError as exc:
        print(f"metric_table: {args.readme}: {exc}", file=sys.stderr)
        return 2
    args.readme.write_text(updated, encoding="utf-8")
    print(f"updated the metric table in {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
