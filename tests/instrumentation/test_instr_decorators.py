"""monitor_performance: what it records, what it keeps of the wrapped function, how it fails."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry

from instrumentation.decorators import CallRecorder, monitor_performance
from instrumentation.metrics import Metrics, default_registry


def calls(registry: CollectorRegistry, function: str, outcome: str) -> float | None:
    return registry.get_sample_value("comet_function_calls_total", {"function": function, "outcome": outcome})


def duration_sum(registry: CollectorRegistry, function: str) -> float | None:
    return registry.get_sample_value("comet_function_duration_seconds_sum", {"function": function})


def duration_count(registry: CollectorRegistry, function: str) -> float | None:
    return registry.get_sample_value("comet_function_duration_seconds_count", {"function": function})


def slow(registry: CollectorRegistry, function: str) -> float | None:
    return registry.get_sample_value("comet_slow_calls_total", {"function": function})


# -- timing around the await ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_awaited_sleep_is_measured_around_the_await(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="sleeper")
    async def sleeper() -> str:
        await asyncio.sleep(0.2)
        return "done"

    assert await sleeper() == "done"
    assert duration_count(registry, "sleeper") == 1
    total = duration_sum(registry, "sleeper")
    assert total is not None and total >= 0.2
    assert calls(registry, "sleeper", "success") == 1
    # Not in the sub-millisecond buckets a ``Histogram.time()`` on the coroutine function fills.
    bucket = {"function": "sleeper", "le": "0.1"}
    assert registry.get_sample_value("comet_function_duration_seconds_bucket", bucket) == 0


def test_sync_function_records_success_with_qualname_label(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add(a=1, b=1) == 2
    label = "test_sync_function_records_success_with_qualname_label.<locals>.add"
    assert calls(registry, label, "success") == 2
    assert duration_count(registry, label) == 2


@pytest.fixture
def default_registry_restored() -> Iterator[list[str]]:
    """Labels a test adds to the process-wide default registry, removed again afterwards (so the test
    finds them absent however often, and after whatever, it runs in this process)."""
    labels: list[str] = []
    yield labels
    metrics = Metrics.for_registry(default_registry())
    for label in labels:
        for outcome in ("success", "error", "cancelled"):
            with contextlib.suppress(KeyError):
                metrics.function_calls.remove(label, outcome)
        for metric in (metrics.function_duration, metrics.slow_calls):
            with contextlib.suppress(KeyError):
                metric.remove(label)


def test_bare_decorator_uses_the_default_registry_resolved_on_first_call(
    default_registry_restored: list[str],
) -> None:
    default = default_registry()

    @monitor_performance
    def probe_bare_default_registry() -> int:
        return 7

    label = probe_bare_default_registry.__qualname__
    default_registry_restored.append(label)
    # Nothing recorded, not even the pre-initialised series, until the first call.
    assert (
        default.get_sample_value("comet_function_calls_total", {"function": label, "outcome": "success"})
        is None
    )
    assert probe_bare_default_registry() == 7
    assert (
        default.get_sample_value("comet_function_calls_total", {"function": label, "outcome": "success"}) == 1
    )


# -- outcomes --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_error_is_counted_logged_and_reraised(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @monitor_performance(registry=registry, name="fails")
    async def fails() -> None:
        await asyncio.sleep(0)
        raise KeyError("missing-key")

    with caplog.at_level(logging.ERROR), pytest.raises(KeyError, match="missing-key"):
        await fails()
    assert calls(registry, "fails", "error") == 1
    assert calls(registry, "fails", "success") == 0
    assert duration_count(registry, "fails") == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Error in fails" in errors[0].getMessage() and "missing-key" in errors[0].getMessage()


def test_sync_error_is_counted_and_reraised(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="divide")
    def divide(a: float, b: float) -> float:
        return a / b

    with pytest.raises(ZeroDivisionError):
        divide(1, 0)
    assert divide(4, 2) == 2
    assert calls(registry, "divide", "error") == 1
    assert calls(registry, "divide", "success") == 1


@pytest.mark.asyncio
async def test_cancellation_is_counted_as_cancelled_and_propagates(registry: CollectorRegistry) -> None:
    started = asyncio.Event()

    @monitor_performance(registry=registry, name="waits_forever")
    async def waits_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(waits_forever())
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert calls(registry, "waits_forever", "cancelled") == 1
    assert calls(registry, "waits_forever", "error") == 0
    assert calls(registry, "waits_forever", "success") == 0
    assert duration_count(registry, "waits_forever") == 1


@pytest.mark.asyncio
async def test_all_outcomes_are_preinitialised_on_first_call(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="once")
    async def once() -> None:
        return None

    await once()
    assert calls(registry, "once", "success") == 1
    assert calls(registry, "once", "error") == 0
    assert calls(registry, "once", "cancelled") == 0
    assert slow(registry, "once") == 0


# -- slow calls ----------------------------------------------------------------------------------


def test_slow_call_counted_and_warned_with_name_and_time(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    # Threshold 0: every call of positive duration is over it (no wall-clock assumption).
    @monitor_performance(registry=registry, name="storage.add_warning", slow_threshold=0.0)
    def add_warning() -> None:
        sum(range(1000))

    with caplog.at_level(logging.WARNING):
        add_warning()
    assert slow(registry, "storage.add_warning") == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("Slow execution: storage.add_warning took ")
    assert warnings[0].endswith("s")


def test_fast_call_is_not_slow(registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    @monitor_performance(registry=registry, name="quick", slow_threshold=3600)
    def quick() -> int:
        return 1

    with caplog.at_level(logging.WARNING):
        quick()
    assert slow(registry, "quick") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.asyncio
async def test_slow_error_counts_both(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="slow_fail", slow_threshold=0.0)
    async def slow_fail() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await slow_fail()
    assert calls(registry, "slow_fail", "error") == 1
    assert slow(registry, "slow_fail") == 1


def test_default_slow_threshold_is_the_seeds_one_second() -> None:
    defaults = inspect.signature(monitor_performance).parameters
    assert defaults["slow_threshold"].default == 1.0


# -- what the wrapper keeps ------------------------------------------------------------------------


def test_wraps_keeps_name_doc_signature_and_kind(registry: CollectorRegistry) -> None:
    async def fetch(user_id: int, *, reason: str = "none") -> dict[str, int]:
        """Fetch a profile."""
        return {"id": user_id}

    def compute(x: float, y: float = 2.0) -> float:
        """Compute."""
        return x * y

    async def stream(n: int) -> AsyncIterator[int]:
        """Stream numbers."""
        for i in range(n):
            yield i

    for original in (fetch, compute, stream):
        wrapped = monitor_performance(registry=registry)(original)
        assert wrapped.__name__ == original.__name__
        assert wrapped.__qualname__ == original.__qualname__
        assert wrapped.__doc__ == original.__doc__
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(original)
        assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(original)
        assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_methods_static_and_class_methods(registry: CollectorRegistry) -> None:
    class Store:
        def __init__(self) -> None:
            self.rows: list[str] = []

        @monitor_performance(registry=registry)
        async def add(self, row: str) -> int:
            self.rows.append(row)
            return len(self.rows)

        @monitor_performance(registry=registry)
        def count(self) -> int:
            return len(self.rows)

        @monitor_performance(registry=registry)
        @staticmethod
        def version() -> str:
            return "1"

        @monitor_performance(registry=registry)
        @classmethod
        def kind(cls) -> str:
            return cls.__name__

    store = Store()
    assert await store.add("a") == 1
    assert await store.add("b") == 2
    assert store.count() == 2
    assert Store.version() == "1" and store.version() == "1"
    assert Store.kind() == "Store"
    prefix = "test_methods_static_and_class_methods.<locals>.Store"
    assert calls(registry, f"{prefix}.add", "success") == 2
    assert calls(registry, f"{prefix}.count", "success") == 1
    assert calls(registry, f"{prefix}.version", "success") == 2
    assert calls(registry, f"{prefix}.kind", "success") == 1


# -- generators ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_generator_completed_is_success(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="agen")
    async def agen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 10

    assert [x async for x in agen(3)] == [0, 10, 20]
    assert calls(registry, "agen", "success") == 1
    assert duration_count(registry, "agen") == 1


@pytest.mark.asyncio
async def test_async_generator_error_and_early_close(registry: CollectorRegistry) -> None:
    cleaned_up = []

    @monitor_performance(registry=registry, name="agen2")
    async def agen2(fail_at: int | None) -> AsyncIterator[int]:
        try:
            for i in range(10):
                if i == fail_at:
                    raise ValueError("bad item")
                yield i
        finally:
            cleaned_up.append(fail_at)

    with pytest.raises(ValueError, match="bad item"):
        async for _ in agen2(2):
            pass
    assert calls(registry, "agen2", "error") == 1

    gen = agen2(None)
    assert await gen.__anext__() == 0
    await gen.aclose()  # the consumer stops early: the wrapped generator is closed too
    assert cleaned_up == [2, None]
    assert calls(registry, "agen2", "cancelled") == 1
    assert calls(registry, "agen2", "success") == 0


@pytest.mark.asyncio
async def test_async_generator_forwards_asend_and_athrow(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="echo")
    async def echo() -> AsyncIterator[str]:
        received = "start"
        while True:
            try:
                received = yield f"got {received}"
            except KeyError:
                received = "recovered"

    gen = echo()
    assert await gen.asend(None) == "got start"
    assert await gen.asend("ping") == "got ping"
    assert await gen.athrow(KeyError("k")) == "got recovered"
    await gen.aclose()
    assert calls(registry, "echo", "cancelled") == 1
    assert calls(registry, "echo", "error") == 0


def test_sync_generator_keeps_send_and_return_value(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="gen")
    def gen() -> Iterator[int]:
        total = 0
        while total < 10:
            total += yield total
        return total

    g = gen()
    assert next(g) == 0
    assert g.send(4) == 4
    with pytest.raises(StopIteration) as stop:
        g.send(7)
    assert stop.value.value == 11
    assert calls(registry, "gen", "success") == 1


def test_sync_generator_cancellation_is_cancelled(registry: CollectorRegistry) -> None:
    @monitor_performance(registry=registry, name="waits_on_future")
    def waits_on_future() -> Iterator[int]:
        yield 1
        raise asyncio.CancelledError  # as ``future.result()`` of a cancelled future does

    with pytest.raises(asyncio.CancelledError):
        list(waits_on_future())
    assert calls(registry, "waits_on_future", "cancelled") == 1
    assert calls(registry, "waits_on_future", "error") == 0


# -- concurrency and the hot path ----------------------------------------------------------------


def test_increments_from_threads_are_not_lost(registry: CollectorRegistry) -> None:
    threads_n, calls_n = 8, 2000

    @monitor_performance(registry=registry, name="threaded")
    def threaded(i: int) -> int:
        return i + 1

    barrier = threading.Barrier(threads_n)

    def worker() -> None:
        barrier.wait()  # all threads start together: the first-call resolution races too
        for i in range(calls_n):
            threaded(i)

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls(registry, "threaded", "success") == threads_n * calls_n
    assert duration_count(registry, "threaded") == threads_n * calls_n


@pytest.mark.asyncio
async def test_no_labels_lookup_after_the_first_call(
    registry: CollectorRegistry, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    @monitor_performance(registry=registry, name="cached")
    async def cached() -> None:
        return None

    await cached()

    def no_labels(*args: object, **kwargs: object) -> None:
        raise AssertionError(".labels() called on the hot path")

    for metric in (metrics.function_duration, metrics.function_calls, metrics.slow_calls):
        monkeypatch.setattr(metric, "labels", no_labels)
    for _ in range(3):
        await cached()
    assert calls(registry, "cached", "success") == 4


def test_two_registries_side_by_side() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()

    @monitor_performance(registry=first, name="shared")
    def one() -> None:
        return None

    @monitor_performance(registry=second, name="shared")
    def two() -> None:
        return None

    one()
    one()
    two()
    assert calls(first, "shared", "success") == 2
    assert calls(second, "shared", "success") == 1


def test_call_recorder_measure_block(registry: CollectorRegistry) -> None:
    recorder = CallRecorder("block", registry=registry)
    with recorder.measure():
        sum(range(10))
    with pytest.raises(OSError), recorder.measure():
        raise OSError("disk")
    assert calls(registry, "block", "success") == 1
    assert calls(registry, "block", "error") == 1


# -- bad use, at decoration time -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, ["a", "list"], object()])
def test_non_callable_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        monitor_performance(bad)
    with pytest.raises(TypeError, match="decorates a function"):
        monitor_performance(name="x")(bad)


def test_positional_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="keyword"):
        monitor_performance("storage.add_warning")


@pytest.mark.parametrize("threshold", [-0.1, -5, math.nan])
def test_negative_or_nan_threshold_is_a_value_error(threshold: float) -> None:
    with pytest.raises(ValueError, match="slow_threshold"):
        monitor_performance(slow_threshold=threshold)


@pytest.mark.parametrize("threshold", ["1", True, None])
def test_non_numeric_threshold_is_a_type_error(threshold: object) -> None:
    with pytest.raises(TypeError, match="slow_threshold"):
        monitor_performance(slow_threshold=threshold)  # type: ignore[arg-type]


def test_bad_name_and_registry() -> None:
    with pytest.raises(ValueError, match="name"):
        monitor_performance(name="")
    with pytest.raises(TypeError, match="registry"):
        monitor_performance(registry="default")  # type: ignore[arg-type]


def test_an_explicit_registry_gets_its_series_at_decoration(registry: CollectorRegistry) -> None:
    # Only the default registry waits for the first call; a given one shows 0 calls straight away.
    @monitor_performance(name="never.called", registry=registry)
    def never_called() -> None: ...

    for outcome in ("success", "error", "cancelled"):
        assert calls(registry, "never.called", outcome) == 0.0
    assert duration_count(registry, "never.called") == 0.0
    assert slow(registry, "never.called") == 0.0
