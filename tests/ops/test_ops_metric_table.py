"""The README's metric table generator, on the exposition of the real metric definitions.
(Against the live demo's /metrics: test_ops_live.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from comet.ops.metric_table import (
    END_MARKER,
    NO_SERIES_YET,
    START_MARKER,
    main,
    markdown_table,
    metric_rows,
    replace_between_markers,
)
from instrumentation.metrics import Metrics


@pytest.fixture
def exposition() -> str:
    registry = CollectorRegistry()
    metrics = Metrics.for_registry(registry)
    metrics.register_commands(["ping"])
    metrics.command_duration.labels("ping", "prefix").observe(0.2)
    return generate_latest(registry).decode()


def test_rows_from_the_real_metric_definitions(exposition: str) -> None:
    rows = {row.name: row for row in metric_rows(exposition)}
    assert rows["comet_commands_total"].type == "counter"
    assert rows["comet_commands_total"].labels == ("command", "kind", "outcome")
    assert rows["comet_command_duration_seconds"].type == "histogram"
    assert rows["comet_command_duration_seconds"].labels == ("command", "kind")  # no "le"
    assert rows["comet_ready"].labels == ()
    # Labelled, but no child yet: the exposition cannot tell the labels.
    assert rows["comet_automod_actions_total"].labels is None
    assert rows["comet_commands_total"].help == "Commands invoked, by outcome."
    names = list(rows)
    assert names == sorted(names, key=lambda n: (not n.startswith("comet_"), n))


def test_markdown_table(exposition: str) -> None:
    table = markdown_table(metric_rows(exposition))
    lines = table.splitlines()
    assert lines[0] == "| metric | type | labels | help |"
    assert (
        "| `comet_commands_total` | counter | command, kind, outcome | Commands invoked, by outcome. |"
        in lines
    )
    assert f"| `comet_automod_actions_total` | counter | {NO_SERIES_YET} |" in table
    assert "| `comet_ready` | gauge | – |" in table


def test_created_companions_are_not_metrics_of_their_own(exposition: str) -> None:
    assert "comet_commands_created" in exposition  # prometheus_client's text format has them
    names = {row.name for row in metric_rows(exposition)}
    assert not {name for name in names if name.endswith("_created")}


def test_other_prefixes_are_left_out() -> None:
    text = "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 3\n"
    assert metric_rows(text) == []


def test_readme_update_between_markers(tmp_path: Path, exposition: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START_MARKER}\nold table\n{END_MARKER}\n\nafter\n")
    updated = replace_between_markers(readme.read_text(), "| new |\n")
    assert updated == f"# Title\n\n{START_MARKER}\n| new |\n{END_MARKER}\n\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        replace_between_markers("no markers here", "x")


def test_cli_refuses_a_readme_without_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("nothing\n")
    (tmp_path / "metrics.txt").write_text("")
    assert main(["--url", (tmp_path / "metrics.txt").as_uri(), "--readme", str(readme)]) == 2
    assert "markers" in capsys.readouterr().err
    assert readme.read_text() == "nothing\n"
