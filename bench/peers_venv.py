"""The peers' own virtual environment, ``bench/.peers-venv/`` (not a dependency of the product).

Created once with ``python -m venv`` and ``pip install`` of exactly the project venv's discord.py
and ``emoji`` (``discord_emulator`` imports it) plus the pinned peers; every other package is
constrained to the project venv's version where the peers allow it (the same aiohttp, yarl,
prometheus_client...: the bots differ only by their instrumentation). Reused when it is there and
its versions match. Nothing is faked: when pip cannot install the peers, :func:`ensure` says why
and returns None, and the benchmark measures the other variants only.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEERS = {"discord-ext-prometheus": "0.2.1", "argus-dpy": "0.4.2"}
#: Printed for both venvs: what the bots share besides discord.py.
SHARED = ("discord.py", "aiohttp", "yarl", "multidict", "prometheus_client", "emoji")
PIP_TIMEOUT = 900

VERSIONS_SCRIPT = """
import importlib.metadata as m, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        found[name] = None
import discord
found["discord.__version__"] = discord.__version__
print(json.dumps(found))
"""
# What a bot process of the peers' venv imports, run once to check that it can.
IMPORT_CHECK = (
    "import discord_emulator.endpoints, discord_emulator.testing.client, discord.ext.prometheus, argus"
)


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def versions(python: Path | str, names: list[str]) -> dict[str, str | None]:
    """The installed versions of ``names`` (None: not installed) and ``discord.__version__``."""
    done = subprocess.run(
        [str(python), "-c", VERSIONS_SCRIPT, *names], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return dict.fromkeys(names)
    found: dict[str, str | None] = json.loads(done.stdout)
    return found


def wanted() -> dict[str, str]:
    return {
        "discord.py": importlib.metadata.version("discord.py"),
        "emoji": importlib.metadata.version("emoji"),
        **PEERS,
    }


def _pip_install(python: Path, pins: list[str], constraints: Path | None) -> subprocess.CompletedProcess[str]:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *pins]
    if constraints is not None:
        command[4:4] = ["-c", str(constraints)]
    return subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)


def _install(python: Path, want: dict[str, str]) -> str | None:
    """Install ``want`` into the venv; None when done, else the reason it could not."""
    pins = [f"{name}=={version}" for name, version in want.items()]
    project = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() not in {n.lower() for n in want}
    )
    with tempfile.TemporaryDirectory(prefix="comet-peers-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(project) + "\n")
        done = _pip_install(python, pins, constraints)
        if done.returncode != 0:
            print("  pip could not install the peers with the project venv's versions of the shared")
            print("  packages; trying again with whatever pip picks for them (see the versions below)")
            done = _pip_install(python, pins, None)
    if done.returncode != 0:
        tail = "\n    ".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        return f"pip install {' '.join(pins)} failed:\n    {tail}"
    return None


def ensure() -> Path | None:
    """The python of a peers' venv with ``wanted()`` installed, or None (after saying why)."""
    want = wanted()
    python = python_of(PEERS_VENV)
    have = versions(python, list(want)) if python.exists() else {}
    if all(have.get(name) == version for name, version in want.items()):
        print(f"peers' venv: reusing {PEERS_VENV.relative_to(ROOT)}")
    else:
        print(f"peers' venv: installing {', '.join(f'{n}=={v}' for n, v in want.items())} ...", flush=True)
        try:
            if not python.exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(PEERS_VENV)],
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
            problem = _install(python, want)
        except (OSError, subprocess.SubprocessError) as exc:
            problem = f"could not create {PEERS_VENV}: {exc}"
        if problem is not None:
            print(f"peers' venv: {problem}\n  -> the peer variants are SKIPPED (no numbers for them)")
            return None
        have = versions(python, list(want))
        wrong = {name: have.get(name) for name, version in want.items() if have.get(name) != version}
        if wrong:
            print(f"peers' venv: installed versions differ from the pins: {wrong}; peer variants SKIPPED")
            return None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = subprocess.run(
        [str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, env=env, timeout=120
    )
    if check.returncode != 0:
        print(f"peers' venv cannot import what a bot needs:\n{check.stderr}\n  -> peer variants SKIPPED")
        return None
    return python


def print_versions(peers_python: Path | None) -> dict[str, str | None]:
    """Both venvs' versions of the shared packages and the peers; the project venv's discord.py."""
    names = [*SHARED, *PEERS]
    project = versions(sys.executable, names)
    peers = versions(peers_python, names) if peers_python is not None else {}
    print(f"  {'package':<24}{'project venv':<16}peers' venv")
    for name in [*names, "discord.__version__"]:
        print(f"  {name:<24}{project.get(name) or '-':<16}{peers.get(name) or '-'}")
    return {"project": project.get("discord.__version__"), "peers": peers.get("discord.__version__")}
