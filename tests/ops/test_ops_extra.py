"""Without the ``ops`` extra (PyYAML, matplotlib) the ops commands say so in one line, not a traceback.

Each command runs in a child Python where the module is made unimportable the way Python itself
allows: ``sys.modules[name] = None`` makes ``import name`` raise ModuleNotFoundError, as a missing
distribution does. ``runpy.run_module(..., alter_sys=True)`` then runs the command as ``python -m``.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from ops_support import REPO

import comet.ops
from comet.ops.extras import INSTALL_HINT
from comet.ops.local_http import free_port

#: The run of ``python -m MODULE ARGS...`` with the modules in BLOCKED unimportable.
SHIM = """
import runpy, sys
module, blocked, *args = sys.argv[1:]
for name in filter(None, blocked.split(",")):
    sys.modules[name] = None
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_without(blocked: str, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SHIM, module, blocked, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_hint_names_the_extra() -> None:
    assert "pip install 'comet-bot[ops]'" in INSTALL_HINT


@pytest.mark.parametrize(
    ("module", "program", "blocked", "distribution", "args"),
    [
        ("comet.ops.render", "render", "yaml", "PyYAML", ["--out", "{tmp}/rendered"]),
        ("comet.ops.stack", "stack", "yaml", "PyYAML", ["--workdir", "{tmp}/stack"]),
        (
            "comet.ops.dashboard_png",
            "dashboard_png",
            "matplotlib",
            "matplotlib",
            ["--prometheus", "http://127.0.0.1:{port}", "--out", "{tmp}/dashboard.png"],
        ),
    ],
    ids=["render", "stack", "dashboard_png"],
)
def test_a_command_without_its_extra_prints_one_line_naming_it(
    tmp_path: Path, module: str, program: str, blocked: str, distribution: str, args: list[str]
) -> None:
    port = free_port()  # nothing listens: the command must stop before querying anything
    argv = [arg.format(tmp=tmp_path, port=port) for arg in args]
    result = run_without(blocked, module, *argv)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        f"{program}: {distribution} is not installed (the ops tooling needs it): {INSTALL_HINT}"
    ], result.stderr
    assert result.stdout == "", result.stdout  # the stack started nothing, the renderer drew nothing
    assert list(tmp_path.iterdir()) == [], "nothing written without the extra"


@pytest.mark.parametrize("module", ["comet.ops.render", "comet.ops.stack", "comet.ops.dashboard_png"])
def test_help_works_without_the_extra(module: str) -> None:
    result = run_without("yaml,matplotlib", module, "--help")
    assert result.returncode == 0, result.stderr
    assert f"python -m {module}" in result.stdout


def test_only_the_modules_that_use_the_extra_need_it() -> None:
    """The commands and the demo runner import without PyYAML and matplotlib (metric_table --demo,
    the query code); only the YAML files, the rendering, the stack that renders and the drawing
    need the extra, and they raise MissingExtra (an ImportError) rather than a bare one."""
    modules = sorted(info.name for info in pkgutil.iter_modules(comet.ops.__path__, "comet.ops."))
    probe = """
import importlib, sys
from comet.ops.extras import MissingExtra
sys.modules["yaml"] = sys.modules["matplotlib"] = None
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except MissingExtra as exc:
        print(name, exc.distribution)
"""
    result = subprocess.run(
        [sys.executable, "-c", probe, *modules], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "comet.ops.dashboard_draw matplotlib",
        "comet.ops.local_stack PyYAML",
        "comet.ops.rendering PyYAML",
        "comet.ops.yaml_files PyYAML",
    ]
