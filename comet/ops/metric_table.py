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
    rows = []
    for family in text_string_to_metric_families(exposition):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        if not name.startswith(tuple(prefixes)):
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
    from comet.ops.stack import DemoProcess, free_port  # the demo is only needed for this option

    with DemoProcess(metrics_port=free_port(), workdir=Path(".stack") / "metric-table") as demo:
        demo.wait_ready(timeout=60.0)
        demo.wait_for_traffic(timeout=60.0)
        return fetch_exposition(f"{demo.metrics_url}/metrics")


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
