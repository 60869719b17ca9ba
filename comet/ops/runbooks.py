"""The runbooks as a Grafana dashboard, so that every alert's ``runbook_url`` is a link that works.

docs/operations.md holds one ``### AlertName`` section per alert (what it means, how to investigate
with the bot's own commands). This module turns those sections into ``dashboards/comet-runbooks.json``
— one markdown text panel per alert — which the provisioned Grafana serves next to the overview;
an alert's ``runbook_url`` opens its panel: ``{grafana}/d/comet-runbooks/comet-runbooks?viewPanel=N``.
Panel ids come from the alert's name (not from the order of the sections), so adding a runbook never
moves another's link. The same sections give the first investigation step that the Discord
notification shows inline (``first_step``).

    python -m comet.ops.runbooks            # regenerate dashboards/comet-runbooks.json
    python -m comet.ops.runbooks --check    # exit 1 if the checked-in file is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "operations.md"
DASHBOARD = REPO / "dashboards" / "comet-runbooks.json"
UID = "comet-runbooks"
#: Grafana's root URL in the default deployment (docker compose publishes it on 127.0.0.1:3000).
DEFAULT_GRAFANA_URL = "http://127.0.0.1:3000"

_SECTION = re.compile(r"^### ([A-Z][A-Za-z0-9]+)[ \t]*$", re.MULTILINE)
_NEXT_HEADING = re.compile(r"^#{2,3} ", re.MULTILINE)
_INVESTIGATE = re.compile(r"\*\*(?:Investigate|Wire a dead man's switch)[^*]*\*\*\s*(.+?)(?:\n\s*\n|$)", re.S)


def sections(markdown: str) -> dict[str, str]:
    """Alert name -> the markdown of its runbook section (without the heading)."""
    found = {}
    for match in _SECTION.finditer(markdown):
        rest = markdown[match.end() :]
        end = _NEXT_HEADING.search(rest)
        found[match.group(1)] = (rest[: end.start()] if end else rest).strip()
    return found


def panel_id(alert: str) -> int:
    """A stable panel id for an alert's runbook (from its name; 100..900099)."""
    return zlib.crc32(alert.encode()) % 900_000 + 100


def runbook_url(alert: str, grafana_url: str = DEFAULT_GRAFANA_URL) -> str:
    return f"{grafana_url.rstrip('/')}/d/{UID}/comet-runbooks?viewPanel={panel_id(alert)}"


def first_step(section: str, limit: int = 300) -> str:
    """The first sentence of a section's "Investigate" paragraph, as plain one-line text."""
    match = _INVESTIGATE.search(section)
    text = " ".join((match.group(1) if match else section).split())
    text = re.sub(r"^\d+\.\s*", "", text)
    parts = re.split(r"(?<=[.!?])\s", text, maxsplit=2)
    sentence = parts[0] if len(parts[0]) >= 60 or len(parts) == 1 else " ".join(parts[:2])
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def dashboard(markdown: str) -> dict[str, Any]:
    panels = []
    for row, (alert, body) in enumerate(sorted(sections(markdown).items())):
        panels.append(
            {
                "id": panel_id(alert),
                "type": "text",
                "title": alert,
                "description": f"The runbook of the alert {alert} (docs/operations.md).",
                "gridPos": {"h": 10, "w": 24, "x": 0, "y": row * 10},
                "options": {"mode": "markdown", "content": f"## {alert}\n\n{body}\n"},
            }
        )
    return {
        "uid": UID,
        "title": "C.O.M.E.T. runbooks",
        "description": "Generated from docs/operations.md by python -m comet.ops.runbooks: do not edit.",
        "tags": ["comet", "runbooks"],
        "editable": False,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "panels": panels,
        "links": [
            {"title": "C.O.M.E.T. overview", "type": "link", "url": "/d/comet-overview", "icon": "dashboard"}
        ],
    }


def render_json(markdown: str) -> str:
    return json.dumps(dashboard(markdown), ensure_ascii=False, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m comet.ops.runbooks", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the dashboard is out of date")
    args = parser.parse_args(argv)
    text = render_json(DOCS.read_text(encoding="utf-8"))
    if args.check:
        if not DASHBOARD.exists() or DASHBOARD.read_text(encoding="utf-8") != text:
            print(f"{DASHBOARD} is out of date: run python -m comet.ops.runbooks", file=sys.stderr)
            return 1
        return 0
    DASHBOARD.write_text(text, encoding="utf-8")
    print(f"wrote {DASHBOARD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
