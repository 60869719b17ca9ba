"""The one way tests wait for something to become true (``from waiting import wait_until``).

A test never sleeps in place of a condition: it states the condition and waits for it, with a bound.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

#: How often a condition on the bot's side (a metric, a cache, a list a listener fills) is looked at
#: again. The loop yields to the bot's tasks between looks; nothing is assumed from the time passed.
INTERVAL = 0.005

Predicate = Callable[[], bool | Awaitable[bool]]


async def wait_until(
    predicate: Predicate,
    timeout: float = 5.0,  # noqa: ASYNC109 (a bound on a condition, not on one awaitable)
    *,
    interval: float = INTERVAL,
    what: str | None = None,
) -> None:
    """Return as soon as ``predicate()`` is true; ``TimeoutError`` after ``timeout`` seconds.

    ``predicate`` may be a coroutine function (an HTTP probe, a message sent and its answer awaited):
    it is awaited, and ``interval`` is the pause between two probes. An exception it raises ends the
    wait (a process that exited, a bot task that failed): the test sees the real error.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            name = what or getattr(predicate, "__name__", "condition")
            raise TimeoutError(f"{name}: not true within {timeout} s")
        await asyncio.sleep(interval)  # let the bot (or the process) move on; the condition is re-checked
