"""Graceful shutdown: refuse new work, let running commands finish within a grace period, then stop.

discord.py's ``Client.close()`` closes the aiohttp session at once. A command still running then
fails on its next REST call (``RuntimeError: Session is closed``), its error handler fails to reply
for the same reason, and the log fills with false "Command failed" errors. So the bot keeps a
:class:`WorkTracker` of everything it runs on behalf of Discord events — every listener task
discord.py schedules (``on_message`` runs the prefix commands) and every slash/autocomplete
invocation of the command tree — and the launcher drains it before closing anything:

1. stop accepting: events from the gateway no longer start listener tasks and new slash commands
   get a short "restarting" answer, while the gateway and the HTTP session stay up so that running
   commands can still reply;
2. wait up to ``COMET_SHUTDOWN_GRACE_SECONDS`` for the tracked work (and for work it starts, such
   as its ``on_command_error`` reply) to finish; a second SIGTERM/SIGINT ends the wait early;
3. cancel what is left (each cancelled invocation is counted with ``outcome="cancelled"``).

The rule for "new work" needs no list of events: while draining, an event is still scheduled only
when it is dispatched from inside tracked work (a running command dispatching ``command_error`` or
``command_completion``), never when it comes from the gateway reader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: How long cancelled work may take to unwind (its ``finally`` blocks) before shutdown goes on.
CANCEL_UNWIND_SECONDS = 2.0


@dataclass(frozen=True)
class DrainReport:
    """What a drain found: work that finished by itself, and work that had to be cancelled."""

    finished: int
    cancelled: int
    waited: float


class WorkTracker:
    """The tasks a bot runs for Discord events, and the gate that refuses new ones while draining."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._accepting = True

    @property
    def accepting(self) -> bool:
        return self._accepting

    def __len__(self) -> int:
        return sum(1 for task in self._tasks if not task.done())

    def in_tracked_work(self) -> bool:
        """Whether the caller runs inside tracked work (so what it starts is not new work)."""
        try:
            current = asyncio.current_task()
        except RuntimeError:  # no running loop
            return False
        return current is not None and current in self._tasks

    def admits_new(self) -> bool:
        """Whether work started now should run: always while accepting, then only from tracked work."""
        return self._accepting or self.in_tracked_work()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as tracked work."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, grace: float, *, hurry: asyncio.Event | None = None) -> DrainReport:
        """Stop accepting, wait up to ``grace`` seconds for the tracked work, cancel the rest.

        ``hurry`` (set by a second SIGTERM/SIGINT) ends the grace period early.
        """
        self._accepting = False
        started = time.monotonic()
        deadline = started + grace
        finished = 0
        current = asyncio.current_task()
        hurried = asyncio.ensure_future((hurry or asyncio.Event()).wait())
        try:
            while True:
                pending = {t for t in self._tasks if not t.done() and t is not current}
                remaining = deadline - time.monotonic()
                if not pending or remaining <= 0 or hurried.done():
                    break
                # Work may start more work (a failed command's error reply): loop until none is left.
                done, _ = await asyncio.wait(
                    {*pending, hurried}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                finished += len(done - {hurried})
        finally:
            hurried.cancel()
        leftover = [t for t in self._tasks if not t.done() and t is not current]
        for task in leftover:
            task.cancel()
        if leftover:
            _, stuck = await asyncio.wait(leftover, timeout=CANCEL_UNWIND_SECONDS)
            if stuck:
                log.warning("Shutdown: %d task(s) did not stop when cancelled; going on", len(stuck))
        report = DrainReport(finished=finished, cancelled=len(leftover), waited=time.monotonic() - started)
        if report.cancelled:
            log.warning(
                "Shutdown: %d running command(s) finished, %d cancelled after the %.1f s grace period",
                report.finished,
                report.cancelled,
                grace,
            )
        else:
            log.info("Shutdown: %d running command(s) finished in %.2f s", report.finished, report.waited)
        return report
