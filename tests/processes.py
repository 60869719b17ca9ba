"""Child processes of the tests (``from processes import ...``; tests/ is on sys.path).

``children`` (a fixture: import it into a conftest.py) starts ``python -m <module> ...`` children
with their output in a file, and reaps every one of them when the test ends, passed or failed: a
child still running gets SIGTERM, then SIGKILL after a bound. A test stops a child itself with
:meth:`Child.stop` (SIGTERM, then SIGKILL after a bound, and the exit code) when it checks how the
child exits. :func:`run_python` runs a short-lived command to its end (``subprocess.run``, which
kills and reaps the child when its timeout passes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from waiting import wait_until

#: The repository: children import the project from here.
ROOT = Path(__file__).resolve().parents[1]
#: How long a child has to exit after SIGTERM (or on its own) before it is killed.
STOP_TIMEOUT = 15.0


def child_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child: this one without any ``COMET_*`` variable (nothing from the
    developer's shell leaks in), the repository on ``PYTHONPATH``, then ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("COMET_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


class Child:
    """One ``python -m ...`` child; stdout and stderr go to ``out``."""

    def __init__(self, args: Sequence[str], proc: asyncio.subprocess.Process, out: Path) -> None:
        self.args = list(args)
        self.proc = proc
        self.out = out

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def output(self, tail: int = 3000) -> str:
        return read(self.out)[-tail:]

    def __repr__(self) -> str:
        return f"<Child {' '.join(self.args)} pid={self.pid} returncode={self.returncode}>"

    async def wait_for_line(self, pattern: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """The first match of ``pattern`` in the output (group 1 if it has one), once written.

        Fails at once, with the output, if the child exits without writing it.
        """
        regex = re.compile(pattern)
        found: list[str] = []

        def written() -> bool:
            match = regex.search(read(self.out))
            if match:
                found.append(match.group(1) if regex.groups else match.group(0))
                return True
            if self.proc.returncode is not None:
                raise AssertionError(f"{self!r} exited before printing {pattern!r}:\n{self.output()}")
            return False

        try:
            await wait_until(written, timeout, interval=0.05, what=f"{pattern!r} in {self.out.name}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.output()}") from None
        return found[0]

    async def wait(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """The exit code of a child that exits by itself; killed (and the test failed) if it does not."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"{self!r} did not exit within {timeout} s:\n{self.output()}") from None

    def send_signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int:  # noqa: ASYNC109
        """SIGTERM, and the exit code; killed (and the test failed) if it is still running after
        ``timeout`` seconds."""
        self.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def kill(self) -> int:
        """SIGKILL and reap; the exit code (``-SIGKILL`` unless it had exited already)."""
        self.send_signal(signal.SIGKILL)
        return await self.proc.wait()

    async def reap(self, timeout: float = STOP_TIMEOUT) -> None:  # noqa: ASYNC109
        """Make sure the child is gone: SIGTERM, SIGKILL after ``timeout``; never raises."""
        if self.proc.returncode is not None:
            return
        self.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()


class Children:
    """Starts children and remembers them, so that none outlives its test."""

    def __init__(self, stop_timeout: float = STOP_TIMEOUT) -> None:
        self.started: list[Child] = []
        self.stop_timeout = stop_timeout

    async def start(
        self,
        *args: str,
        env: Mapping[str, str],
        out: Path,
        cwd: Path | None = None,
    ) -> Child:
        """``python -m <args>`` with ``env``, output in ``out``, run in ``cwd`` (default: out's folder)."""
        return await self.spawn(sys.executable, "-m", *args, env=env, out=out, cwd=cwd)

    async def spawn(
        self,
        program: str,
        *args: str,
        env: Mapping[str, str],
        out: Path,
        cwd: Path | None = None,
    ) -> Child:
        """Any program (a script, a Prometheus or Alertmanager binary) with ``args``, the same way."""
        with out.open("wb") as handle:
            proc = await asyncio.create_subprocess_exec(
                program,
                *args,
                env=dict(env),
                cwd=str(cwd or out.parent),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
            )
        child = Child([program, *args] if program != sys.executable else list(args), proc, out)
        self.started.append(child)
        return child

    async def reap_all(self) -> None:
        """Stop every child still running, all at once (each: SIGTERM, then SIGKILL after the bound)."""
        await asyncio.gather(*(child.reap(self.stop_timeout) for child in self.started))


@pytest_asyncio.fixture
async def children() -> AsyncIterator[Children]:
    """``child = await children.start("comet", "run", env=child_env(...), out=tmp_path / "bot.out")``."""
    started = Children()
    try:
        yield started
    finally:
        await started.reap_all()


def run_python(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90.0,
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` to its end, output captured as text (killed and reaped after ``timeout``)."""
    return subprocess.run(
        [sys.executable, *args],
        env=dict(env) if env is not None else child_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def wait_http(
    http: aiohttp.ClientSession,
    url: str,
    status: int = 200,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> str:
    """The body of ``url`` once it answers ``status`` (a child's endpoint while it starts)."""
    last: list[Any] = [None]
    body: list[str] = []

    async def answers() -> bool:
        try:
            async with http.get(url) as resp:
                text = await resp.text()
                last[0] = (resp.status, text[:500])
                if resp.status == status:
                    body.append(text)
                    return True
        except aiohttp.ClientError as exc:
            last[0] = exc
        return False

    try:
        await wait_until(answers, timeout, interval=0.1, what=url)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last answer {last[0]!r}") from None
    return body[0]
