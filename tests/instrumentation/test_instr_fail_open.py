"""Fail-open hooks: a hook's exception is counted under its declared label and logged, never raised."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry

from instrumentation.fail_open import HookFailures, HookRegistry
from instrumentation.metrics import Metrics

HOOKS = HookRegistry()
SHARED = HOOKS.declare("probe_shared")


class Probe:
    """Hooks that raise whatever they are told to."""

    def __init__(self, metrics: Metrics) -> None:
        self.hook_failures = HookFailures(metrics.instrumentation_errors, HOOKS.names)
        self.calls = 0

    @HOOKS.fail_open("probe_plain")
    def plain(self, error: BaseException | None) -> None:
        self.calls += 1
        if error is not None:
            raise error

    @HOOKS.fail_open("probe_reading", fallback=-1.0)
    def reading(self, value: float, *, fail: bool = False) -> float:
        if fail:
            raise ZeroDivisionError
        return value

    @HOOKS.fail_open(SHARED)
    def shared(self) -> None:
        raise KeyError("shared")

    # Positional-only hooks (as discord.py calls them) get wrappers of their own: same behaviour.
    @HOOKS.fail_open("probe_zero", fallback="fell back")
    def zero(self) -> str:
        raise RuntimeError

    @HOOKS.fail_open("probe_one", fallback="fell back")
    def one(self, a: int, /) -> str:
        return str(1 // a)

    @HOOKS.fail_open("probe_two", fallback="fell back")
    def two(self, a: int, b: int, /) -> str:
        return str(a // b)

    def in_a_loop(self) -> int:
        written = 0
        for item in (1, "x", 3):
            try:
                written += int(item)
            except Exception:
                self.hook_failures.record(SHARED)
        return written


def failed(registry: CollectorRegistry, hook: str) -> float | None:
    return registry.get_sample_value("comet_instrumentation_errors_total", {"hook": hook})


def test_declared_labels_are_preinitialised(registry: CollectorRegistry, metrics: Metrics) -> None:
    assert failed(registry, "probe_plain") is None  # nothing before the hooks' owner exists
    Probe(metrics)
    assert HOOKS.names == (
        "probe_shared", "probe_plain", "probe_reading", "probe_zero", "probe_one", "probe_two"
    )  # fmt: skip
    for hook in HOOKS.names:
        assert failed(registry, hook) == 0


def test_an_exception_is_counted_under_its_label_and_not_raised(
    registry: CollectorRegistry, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(metrics)
    with caplog.at_level(logging.ERROR, logger="instrumentation.fail_open"):
        assert probe.plain(RuntimeError("boom")) is None
    assert probe.calls == 1
    assert failed(registry, "probe_plain") == 1
    assert failed(registry, "probe_reading") == 0 and failed(registry, "probe_shared") == 0
    [record] = caplog.records
    assert "probe_plain" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    probe.plain(None)  # a call that works counts nothing
    assert failed(registry, "probe_plain") == 1


def test_a_reading_returns_its_fallback(registry: CollectorRegistry, metrics: Metrics) -> None:
    probe = Probe(metrics)
    assert probe.reading(2.5) == 2.5
    assert probe.reading(2.5, fail=True) == -1.0
    assert failed(registry, "probe_reading") == 1


def test_every_wrapper_shape_behaves_the_same(registry: CollectorRegistry, metrics: Metrics) -> None:
    probe = Probe(metrics)
    assert probe.one(1) == "1" and probe.two(6, 3) == "2"
    assert probe.zero() == probe.one(0) == probe.two(1, 0) == "fell back"
    assert [failed(registry, hook) for hook in ("probe_zero", "probe_one", "probe_two")] == [1, 1, 1]
    assert Probe.two.__name__ == "two"  # functools.wraps: logs and tracebacks name the hook
    # The cheap wrappers really are the ones used (the generic one costs several times more per call).
    wrappers = [method.__code__.co_name for method in (Probe.zero, Probe.one, Probe.two, Probe.plain)]
    assert wrappers == ["failing_open_0", "failing_open_1", "failing_open_2", "failing_open"]


def test_a_shared_label_counts_every_place_that_uses_it(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    probe = Probe(metrics)
    probe.shared()
    assert probe.in_a_loop() == 4  # the failing item is skipped, the others are still written
    assert failed(registry, "probe_shared") == 2


def test_cancellation_is_not_swallowed(registry: CollectorRegistry, metrics: Metrics) -> None:
    # Only Exception fails open: a CancelledError (a BaseException) must still stop the task.
    probe = Probe(metrics)
    with pytest.raises(asyncio.CancelledError):
        probe.plain(asyncio.CancelledError())
    assert failed(registry, "probe_plain") == 0


def test_a_label_is_declared_once() -> None:
    hooks = HookRegistry()
    once = hooks.declare("once")
    with pytest.raises(ValueError, match="once"):
        hooks.declare("once")
    with pytest.raises(ValueError, match="once"):
        hooks.fail_open("once")  # the same label spelled out again
    hooks.fail_open(once)  # ... whereas the declared Hook is shared
    hooks.fail_open("twice")
    with pytest.raises(ValueError, match="twice"):
        hooks.fail_open("twice")
    assert hooks.names == ("once", "twice")


def test_a_failing_counter_does_not_raise_either(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenCounter:
        def labels(self, hook: str) -> BrokenCounter:
            return self

        def inc(self) -> None:
            raise RuntimeError("counter gone")

    failures = HookFailures(BrokenCounter(), ["x"])  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="instrumentation.fail_open"):
        try:
            raise ValueError("hook failed")
        except ValueError:
            failures.record("x")
    assert [r.getMessage() for r in caplog.records] == [
        "instrumentation hook x failed (the command goes on)",
        "could not count the failure of hook x",
    ]
