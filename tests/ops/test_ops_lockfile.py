"""The lock files: what the image and ``make test`` install, every release pinned and hashed.

``requirements.lock`` is the image's (the bot's dependencies, PyYAML for the config render step, the
build backend); ``requirements-dev.lock`` is the venv's of ``make test`` and CI (the same plus the dev
extra). Both come from ``uv pip compile --universal --generate-hashes``, the exact command at the top
of each; rerun it after editing a dependency in pyproject.toml (uv keeps the other pins as they are;
add ``--upgrade`` or ``--upgrade-package NAME`` to move to newer releases on purpose). These tests say
when a lock no longer matches pyproject.toml, the Dockerfile or the Makefile, or this venv.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from ops_support import REPO
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

RUNTIME_LOCK = REPO / "requirements.lock"
DEV_LOCK = REPO / "requirements-dev.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: What the image needs besides the bot's own dependencies: the render step (comet.ops.render) that
#: docker-compose.yml runs with the bot's image reads YAML.
RENDER_STEP = [Requirement("PyYAML>=6,<7")]
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def name(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> Version:
        (spec,) = self.requirement.specifier
        return Version(spec.version)


def entries(lock: Path) -> list[str]:
    """The lock's entries, each continued line joined, comments left out."""
    joined, current = [], ""
    for line in lock.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    assert not current, f"{lock.name}: ends in a continued line"
    return joined


def pins(lock: Path) -> list[Pin]:
    result = []
    for entry in entries(lock):
        requirement, *hashes = entry.split(" --hash=")
        assert not requirement.startswith("-"), f"{lock.name}: an option, not a pin: {entry[:80]}"
        result.append(Pin(Requirement(requirement), tuple(h.strip() for h in hashes)))
    return result


def by_name(lock: Path) -> dict[NormalizedName, list[Pin]]:
    found: dict[NormalizedName, list[Pin]] = {}
    for pin in pins(lock):
        found.setdefault(pin.name, []).append(pin)
    return found


def declared(*, dev: bool) -> list[Requirement]:
    """pyproject.toml's dependencies: the runtime ones and the build backend, and with dev every extra.

    An extra naming the project itself (dev's ``comet-bot[ops]``) is left out: the lock pins what
    that extra lists, which is checked here as an extra of its own.
    """
    project = PYPROJECT["project"]
    texts = [*project["dependencies"], *PYPROJECT["build-system"]["requires"]]
    if dev:
        texts += [t for extra in project["optional-dependencies"].values() for t in extra]
    requirements = [Requirement(t) for t in texts]
    return [r for r in requirements if canonicalize_name(r.name) != canonicalize_name(project["name"])]


def test_the_dev_extra_includes_the_ops_extra() -> None:
    """``make test``'s venv runs the ops tooling, so dev pulls in ops (by naming it, not a copy)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    name = PYPROJECT["project"]["name"]
    self_references = [Requirement(t) for t in extras["dev"] if Requirement(t).name == name]
    assert [sorted(r.extras) for r in self_references] == [["ops"]], extras["dev"]
    assert {canonicalize_name(Requirement(t).name) for t in extras["ops"]} == {"pyyaml", "matplotlib"}


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_line_is_an_exact_pin_with_hashes(lock: Path) -> None:
    found = pins(lock)
    assert found, f"{lock.name} pins nothing"
    for pin in found:
        specifiers = list(pin.requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", pin.requirement
        assert "*" not in specifiers[0].version, pin.requirement
        assert not pin.requirement.url and not pin.requirement.extras, pin.requirement
        # pip --require-hashes refuses the whole install otherwise; checked here to say which line.
        assert pin.hashes and all(SHA256.fullmatch(h) for h in pin.hashes), pin.requirement
    # The same package twice only for different environments (uv's --universal forks, e.g. numpy
    # by Python version), never twice for the same one.
    markers = [(pin.name, str(pin.requirement.marker)) for pin in found]
    assert len(markers) == len(set(markers)), sorted(markers)


COMPILE = "uv pip compile pyproject.toml -"  # the build backend comes in on stdin


@pytest.mark.parametrize(
    ("lock", "command"),
    [
        (RUNTIME_LOCK, f"{COMPILE} --universal --generate-hashes -c requirements-dev.lock"),
        (DEV_LOCK, f"{COMPILE} --all-extras --universal --generate-hashes"),
    ],
    ids=["requirements.lock", "dev"],
)
def test_the_lock_says_how_to_regenerate_it(lock: Path, command: str) -> None:
    head = lock.read_text().splitlines()[:2]
    assert head[0].startswith("# This file was autogenerated by uv"), head
    assert command in head[1] and head[1].endswith(f"-o {lock.name}"), head[1]
    assert "pip install uv==" in head[1], "the command names the uv release that made the lock"


@pytest.mark.parametrize(
    ("lock", "dev"), [(RUNTIME_LOCK, False), (DEV_LOCK, True)], ids=["requirements.lock", "dev"]
)
def test_the_lock_pins_every_declared_dependency_within_its_specifier(lock: Path, dev: bool) -> None:
    locked = by_name(lock)
    wanted = declared(dev=dev) + RENDER_STEP
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock.name} has no pin for {requirement} (declared in pyproject.toml)"
        for pin in locked[name]:
            assert requirement.specifier.contains(pin.version, prereleases=True), (
                f"{lock.name}: {pin.requirement} is outside pyproject.toml's {requirement}"
            )


def test_the_image_runs_the_versions_the_tests_run() -> None:
    """The runtime lock was compiled with the dev lock as constraints: a shared package, the same release."""
    dev = by_name(DEV_LOCK)
    for name, runtime_pins in by_name(RUNTIME_LOCK).items():
        assert name in dev, f"{name} is in requirements.lock but not in requirements-dev.lock"
        dev_versions = {pin.version for pin in dev[name]}
        for pin in runtime_pins:
            assert pin.version in dev_versions, (pin.requirement, sorted(map(str, dev_versions)))


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _pip_installs(command: str) -> list[str]:
    return [part.strip() for part in re.split(r"&&|;", command) if "pip install" in part]


def test_the_dockerfile_installs_from_the_lock_on_an_exactly_tagged_base() -> None:
    instructions = _dockerfile()
    froms = [arg.split()[0] for op, arg in instructions if op == "FROM"]
    assert froms
    for image in froms:
        # A release tag (a digest may follow): not `latest`, not a moving `3.11-slim`.
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", image), image
    copies = [arg for op, arg in instructions if op == "COPY"]
    assert any(arg.split()[0] == "requirements.lock" for arg in copies), copies
    installs = [cmd for op, arg in instructions if op == "RUN" for cmd in _pip_installs(arg)]
    assert installs, "the Dockerfile installs nothing with pip"
    from_lock = [cmd for cmd in installs if "--require-hashes" in cmd.split()]
    assert len(from_lock) == 1 and "-r requirements.lock" in from_lock[0], installs
    # Everything else with pip: the project alone, resolving nothing (else a new release slips in).
    for cmd in installs:
        assert cmd in from_lock or "--no-deps" in cmd.split(), cmd
    assert installs.index(from_lock[0]) == 0, "the lock is installed before the project"


def test_make_installs_the_venv_from_the_dev_lock() -> None:
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(STAMP):"))
    prerequisites = set(lines[start].split(":", 1)[1].split())
    # The venv is reinstalled whenever a lock changes.
    assert {"pyproject.toml", "requirements.lock", "requirements-dev.lock"} <= prerequisites, lines[start]
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    installs = [cmd for line in recipe for cmd in _pip_installs(line)]
    assert len(installs) == 2, installs
    assert "--require-hashes -r requirements-dev.lock" in installs[0], installs
    assert "--no-deps" in installs[1].split() and installs[1].endswith("-e ."), installs


def test_this_venv_has_what_the_dev_lock_pins() -> None:
    """What the tests run on is what the lock says (``make test`` installs it; a stale venv fails here)."""
    wrong = []
    for pin in pins(DEV_LOCK):
        marker = pin.requirement.marker
        if marker is not None and not marker.evaluate():
            continue  # for another platform or Python
        try:
            installed = importlib.metadata.version(pin.requirement.name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{pin.requirement.name}: not installed, locked {pin.version}")
            continue
        if Version(installed) != pin.version:
            wrong.append(f"{pin.requirement.name}: {installed} installed, locked {pin.version}")
    assert not wrong, "the venv differs from requirements-dev.lock (make test reinstalls it):\n" + "\n".join(
        wrong
    )
