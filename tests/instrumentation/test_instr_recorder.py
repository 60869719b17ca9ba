"""The flight recorder's bounds and rules: what it keeps, for how many, and what a trace holds."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
from collections.abc import Callable

import pytest

from instrumentation import recorder
from instrumentation.recorder import MAX_STEPS, FlightRecorder


def isolated(test: Callable[[], None]) -> Callable[[], None]:
    """Run the test in a fresh context: ``begin`` sets the current invocation of the caller's context
    (in the bot, always an invocation's own task), which must not leak into later tests."""

    @functools.wraps(test)
    def run() -> None:
        contextvars.Context().run(test)

    return run


@isolated
def test_only_slow_or_failed_invocations_are_kept() -> None:
    rec = FlightRecorder(slow_threshold=1.0)
    fast = rec.begin("prefix")
    assert rec.finish(fast, "ping", "success", None, 0.2) is None
    assert rec.get(fast.id) is None and rec.last() is None
    mistake = rec.begin("prefix")
    assert rec.finish(mistake, "ping", "bad_argument", ValueError("x"), 0.1) is None  # a user's mistake
    slow = rec.begin("slash")
    assert rec.finish(slow, "ping", "success", None, 1.5) == slow.id
    failed = rec.begin("prefix")
    assert rec.finish(failed, "oshi set", "error", RuntimeError("boom"), 0.1) == failed.id
    assert rec.get(slow.id) is slow and rec.get(failed.id) is failed and rec.last() is failed
    assert failed.as_dict()["error"] == "RuntimeError"
    assert "started" not in failed.as_dict()


@isolated
def test_each_ring_is_bounded_and_drops_the_oldest() -> None:
    rec = FlightRecorder(slow_threshold=1.0, keep=3)
    kept = []
    for _ in range(5):
        trace = rec.begin("prefix")
        rec.finish(trace, "work", "success", None, 2.0)
        kept.append(trace.id)
    assert [rec.get(i) is not None for i in kept] == [False, False, True, True, True]
    failed = rec.begin("prefix")
    rec.finish(failed, "boom", "error", RuntimeError(), 0.0)
    assert rec.get(kept[2]) is not None  # failures have their own ring: slow ones are not pushed out
    with pytest.raises(ValueError):
        FlightRecorder(keep=0)


def test_steps_are_bounded_and_found_through_the_task_context() -> None:
    rec = FlightRecorder()

    async def invocation() -> recorder.Trace:
        trace = rec.begin("prefix")
        for i in range(MAX_STEPS + 5):
            recorder.note("rest", f"GET /route/{i % 3}", 0.001, "2xx")
        return trace

    async def elsewhere() -> None:
        recorder.note("rest", "GET /elsewhere", 0.1)  # no invocation in this task: nothing

    async def both() -> recorder.Trace:
        trace, _ = await asyncio.gather(invocation(), elsewhere())
        return trace

    trace = asyncio.run(both())
    assert len(trace.steps) == MAX_STEPS and trace.dropped_steps == 5
    assert all(step.name != "GET /elsewhere" for step in trace.steps)
    assert recorder.current() is None  # the test's own context never had one


@isolated
def test_a_context_copied_during_an_invocation_keeps_its_id_not_its_trace() -> None:
    # What a timer scheduled during the invocation (aiohttp's timeouts) or an error handler's task
    # holds: a copy of the invocation's context, which can outlive the invocation by minutes.
    rec = FlightRecorder()
    trace = rec.begin("prefix")
    copied = contextvars.copy_context()
    assert copied.run(recorder.current) is trace
    rec.finish(trace, "ping", "success", None, 0.01)
    assert copied.run(recorder.current_id) == trace.id  # the error handler still logs the id
    assert copied.run(recorder.current) is None  # ... but holds no trace any more
    copied.run(recorder.note, "rest", "GET /late", 0.1)  # a step after the end goes nowhere
    assert trace.raw_steps == []
    # Freed as soon as its last user (here this test's frame) drops it.
    assert [r for r in gc.get_referrers(trace) if not inspect.isframe(r)] == []


def test_ids_never_read_as_snowflakes() -> None:
    ids = {recorder.new_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(len(i) == 16 and int(i, 16) >= 0 and not i.isdigit() for i in ids)
