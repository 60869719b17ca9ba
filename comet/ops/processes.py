"""Child processes of the stack: started with their output in a log file, watched, stopped in order.

Prometheus, Alertmanager and the offline demo all run as :class:`ManagedProcess`; what they have in
common is that a failure to start shows only in their log, so every error here carries its end.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self


class StackError(RuntimeError):
    """A process of the stack did not start; the message carries the end of its log."""


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``predicate`` until true; :class:`StackError` at the deadline or once ``alive`` reports death."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if alive is not None:
            problem = alive()
            if problem:
                raise StackError(f"while waiting for {what}: {problem}")
        if time.monotonic() >= deadline:
            raise StackError(f"timed out after {timeout:g} s waiting for {what}")
        # Polling a remote process' HTTP state: there is no event to wait on.
        time.sleep(interval)


class StartStopContext:
    """``with thing:`` starts it and stops it on the way out, whatever happened."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ManagedProcess:
    """A child process with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        # Own session: a Ctrl-C in the terminal reaches only the stack, which stops children in order.
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )

    def problem(self) -> str | None:
        """None while running; else why it is not, with the end of its log."""
        if self.process is None:
            return f"{self.name} was not started"
        code = self.process.poll()
        if code is None:
            return None
        return f"{self.name} exited with status {code}; end of {self.log_path}:\n{self.log_tail()}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        process, self.process = self.process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
            code = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
