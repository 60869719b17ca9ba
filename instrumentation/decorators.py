"""``monitor_performance``: a timing decorator for any sync or async function, recording into Prometheus.

Works on sync functions, ``async def`` functions, methods, and sync or async generators. Coroutines
are timed *around the await* (prometheus_client's ``Histogram.time()`` on an ``async def`` only
times the creation of the coroutine object); generators are timed over the steps they run, not the
time their consumer spends between items.

Every call records:

* ``comet_function_duration_seconds{function}`` — the duration, whatever the outcome;
* ``comet_function_calls_total{function,outcome}`` — ``success``, ``error`` or ``cancelled``;
* ``comet_slow_calls_total{function}`` — when the duration exceeds ``slow_threshold``.

An exception is logged at ERROR and re-raised, and a slow call is logged at WARNING
with the function's name and its time. A decorator runs at import time, when the registry the
launcher serves may not be chosen yet, so the label children are resolved on the first call and
cached: the hot path does no ``.labels()`` lookup.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

from prometheus_client import CollectorRegistry

from instrumentation.metrics import Metrics, default_registry

__all__ = ["DEFAULT_SLOW_THRESHOLD", "CallRecorder", "monitor_performance"]

F = TypeVar("F", bound=Callable[..., Any])

#: A call over one second is slow (the project's threshold for commands too).
DEFAULT_SLOW_THRESHOLD = 1.0

logger = logging.getLogger(__name__)

_perf_counter = time.perf_counter


@dataclass(frozen=True, slots=True)
class _Children:
    """Label children of one monitored function, resolved once."""

    duration: Any  # Histogram child
    success: Any  # Counter children
    error: Any
    cancelled: Any
    slow: Any


class CallRecorder:
    """Records calls of one named function into a registry's ``Metrics``.

    Public so that code that cannot be decorated can still record the same series
    (``with recorder.measure(): ...``).
    """

    __slots__ = ("_children", "_registry", "name", "slow_threshold")

    def __init__(
        self,
        name: str,
        *,
        slow_threshold: float = DEFAULT_SLOW_THRESHOLD,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.slow_threshold = _check_threshold(slow_threshold)
        self._registry = registry
        self._children: _Children | None = None
        if registry is not None:
            # The registry exists already: create the series now, so a dashboard shows 0 calls
            # rather than nothing. Only the default registry waits for the first call (import time).
            self._resolve()

    def _resolve(self) -> _Children:
        # No lock needed: ``.labels()`` is thread-safe and returns the same child to every caller,
        # so two threads racing here build equal ``_Children`` and either assignment is correct.
        metrics = Metrics.for_registry(self._registry if self._registry is not None else default_registry())
        name = self.name
        calls = metrics.function_calls
        children = _Children(
            duration=metrics.function_duration.labels(name),
            success=calls.labels(name, "success"),
            error=calls.labels(name, "error"),
            cancelled=calls.labels(name, "cancelled"),
            slow=metrics.slow_calls.labels(name),
        )
        self._children = children
        return children

    def success(self, duration: float) -> None:
        children = self._children or self._resolve()
        children.duration.observe(duration)
        children.success.inc()
        if duration > self.slow_threshold:
            self._slow(children, duration)

    def error(self, duration: float, exc: BaseException) -> None:
        children = self._children or self._resolve()
        children.duration.observe(duration)
        children.error.inc()
        # Every exception is logged at ERROR; the caller re-raises it.
        logger.error("Error in %s: %s: %s", self.name, type(exc).__name__, exc)
        if duration > self.slow_threshold:
            self._slow(children, duration)

    def cancelled(self, duration: float) -> None:
        children = self._children or self._resolve()
        children.duration.observe(duration)
        children.cancelled.inc()
        if duration > self.slow_threshold:
            self._slow(children, duration)

    def failed(self, duration: float, exc: BaseException) -> None:
        """Record a call that raised ``exc``: ``cancelled`` for a cancellation, else ``error``."""
        if isinstance(exc, asyncio.CancelledError):
            self.cancelled(duration)
        else:
            self.error(duration, exc)

    def _slow(self, children: _Children, duration: float) -> None:
        children.slow.inc()
        logger.warning("Slow execution: %s took %.2fs", self.name, duration)

    @contextmanager
    def measure(self) -> Generator[None, None, None]:
        """Time a block like a decorated call (``with`` only; for an await, await inside it)."""
        start = _perf_counter()
        try:
            yield
        except BaseException as exc:
            self.failed(_perf_counter() - start, exc)
            raise
        self.success(_perf_counter() - start)


def _check_threshold(slow_threshold: float) -> float:
    if isinstance(slow_threshold, bool) or not isinstance(slow_threshold, (int, float)):
        raise TypeError(f"slow_threshold must be a number of seconds, got {type(slow_threshold).__name__}")
    if math.isnan(slow_threshold) or slow_threshold < 0:
        raise ValueError(f"slow_threshold must be >= 0 seconds, got {slow_threshold!r}")
    return float(slow_threshold)


def _label_for(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(name, str):
        return name
    if isinstance(func, functools.partial):
        return _label_for(func.func)
    return type(func).__qualname__


def _is_async(func: Callable[..., Any]) -> bool:
    # ``inspect.iscoroutinefunction`` sees through functools.partial; also accept callable objects
    # whose ``__call__`` is ``async def``.
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__)


def _wrap_coroutine_function(func: Callable[..., Awaitable[Any]], rec: CallRecorder) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = _perf_counter()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            rec.failed(_perf_counter() - start, exc)
            raise
        # ``rec.success`` inlined: this is the hot path of every monitored call.
        duration = _perf_counter() - start
        children = rec._children or rec._resolve()
        children.duration.observe(duration)
        children.success.inc()
        if duration > rec.slow_threshold:
            rec._slow(children, duration)
        return result

    return wrapper


def _wrap_function(func: Callable[..., Any], rec: CallRecorder) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = _perf_counter()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:  # CancelledError too, e.g. ``future.result()`` of a cancelled future
            rec.failed(_perf_counter() - start, exc)
            raise
        duration = _perf_counter() - start  # ``rec.success`` inlined, as above
        children = rec._children or rec._resolve()
        children.duration.observe(duration)
        children.success.inc()
        if duration > rec.slow_threshold:
            rec._slow(children, duration)
        return result

    return wrapper


def _wrap_async_generator_function(
    func: Callable[..., AsyncGenerator[Any, Any]], rec: CallRecorder
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        gen = func(*args, **kwargs)
        elapsed = 0.0  # time spent inside the wrapped generator's steps
        step_start = 0.0  # non-zero while a step runs
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                step_start = _perf_counter()
                try:
                    item = await (gen.athrow(to_throw) if to_throw is not None else gen.asend(to_send))
                except StopAsyncIteration:
                    rec.success(elapsed + _perf_counter() - step_start)
                    return
                elapsed += _perf_counter() - step_start
                step_start = 0.0
                to_throw = None
                try:
                    to_send = yield item
                except GeneratorExit:
                    # The consumer stopped early (break + aclose): the work did not run to its end.
                    await gen.aclose()
                    rec.cancelled(elapsed)
                    raise
                except BaseException as exc:  # thrown in by the consumer: forward it (athrow)
                    to_throw = exc
                    to_send = None
        except GeneratorExit:
            raise
        except BaseException as exc:
            rec.failed(elapsed + (_perf_counter() - step_start if step_start else 0.0), exc)
            raise

    return wrapper


def _wrap_generator_function(
    func: Callable[..., Generator[Any, Any, Any]], rec: CallRecorder
) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = func(*args, **kwargs)
        elapsed = 0.0
        step_start = 0.0
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                step_start = _perf_counter()
                try:
                    item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
                except StopIteration as stop:
                    rec.success(elapsed + _perf_counter() - step_start)
                    return stop.value
                elapsed += _perf_counter() - step_start
                step_start = 0.0
                to_throw = None
                try:
                    to_send = yield item
                except GeneratorExit:
                    gen.close()
                    rec.cancelled(elapsed)
                    raise
                except BaseException as exc:
                    to_throw = exc
                    to_send = None
        except GeneratorExit:
            raise
        except BaseException as exc:
            rec.failed(elapsed + (_perf_counter() - step_start if step_start else 0.0), exc)
            raise

    return wrapper


def _decorate(
    func: Any, *, name: str | None, slow_threshold: float, registry: CollectorRegistry | None
) -> Any:
    # ``@monitor_performance`` stacked above ``@staticmethod`` / ``@classmethod``: wrap the function
    # inside and keep the descriptor.
    if isinstance(func, (staticmethod, classmethod)):
        inner = _decorate(func.__func__, name=name, slow_threshold=slow_threshold, registry=registry)
        return type(func)(inner)
    if not callable(func):
        raise TypeError(f"monitor_performance decorates a function or method, got {type(func).__name__}")
    rec = CallRecorder(name or _label_for(func), slow_threshold=slow_threshold, registry=registry)
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator_function(func, rec)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator_function(func, rec)
    if _is_async(func):
        return _wrap_coroutine_function(func, rec)
    return _wrap_function(func, rec)


@overload
def monitor_performance(
    func: F,
    /,
    *,
    name: str | None = None,
    slow_threshold: float = DEFAULT_SLOW_THRESHOLD,
    registry: CollectorRegistry | None = None,
) -> F: ...


@overload
def monitor_performance(
    func: None = None,
    /,
    *,
    name: str | None = None,
    slow_threshold: float = DEFAULT_SLOW_THRESHOLD,
    registry: CollectorRegistry | None = None,
) -> Callable[[F], F]: ...


def monitor_performance(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    slow_threshold: float = DEFAULT_SLOW_THRESHOLD,
    registry: CollectorRegistry | None = None,
) -> Any:
    """Time a function into ``comet_function_*`` metrics; usable bare or with arguments.

    ``@monitor_performance`` or ``@monitor_performance(name="storage.add_warning", slow_threshold=0.5)``.

    * ``name`` — the ``function`` label; defaults to the function's ``__qualname__``. It must be a
      fixed, developer-chosen string (never user input).
    * ``slow_threshold`` — seconds; a call longer than this counts as slow and logs a warning.
    * ``registry`` — where to record; ``None`` means :func:`instrumentation.metrics.default_registry`,
      looked up on the first call, not at decoration.

    Raises ``TypeError`` (not a callable, a non-numeric threshold, a positional name) or
    ``ValueError`` (a negative threshold, an empty name) at decoration time.
    """
    if isinstance(func, str):
        raise TypeError("monitor_performance takes the label as a keyword: @monitor_performance(name=...)")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    _check_threshold(slow_threshold)
    if registry is not None and not isinstance(registry, CollectorRegistry):
        raise TypeError(f"registry must be a CollectorRegistry, got {type(registry).__name__}")
    if func is not None:
        return _decorate(func, name=name, slow_threshold=slow_threshold, registry=registry)

    def decorator(f: F) -> F:
        return cast(F, _decorate(f, name=name, slow_threshold=slow_threshold, registry=registry))

    return decorator
