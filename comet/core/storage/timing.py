"""``@timed``: a public data method of :class:`Store`, timed as ``storage.<its name>``.

The decorator is the only place a data method is named: the method's ``__name__`` is both the
``function`` label of its series (``storage.set_oshi``) and the ``operation`` its StorageError
reports. That makes it the method's error boundary too: a call on a closed store fails with
StorageError("closed"), and an ``sqlite3.Error`` becomes the StorageError of its kind, both inside
the timed span, so a failure counts as ``outcome="error"`` and is logged at ERROR with the label,
exactly as ``monitor_performance`` records it.

The series belong to the registry given to :meth:`Store.open`, which the decorator (running when the
class is created) cannot know. So each store builds one ``CallRecorder`` per timed method of its
class (:func:`recorders_for`), which creates the series right away: the storage panels show 0 rather
than nothing before the first call. A call then costs one dict lookup of its recorder by operation
name on top of the recording itself; the timing allocates nothing beyond forwarding the arguments.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from prometheus_client import CollectorRegistry

from comet.core.storage.errors import StorageError, classify
from instrumentation.decorators import CallRecorder
from instrumentation.recorder import note

__all__ = ["SLOW_THRESHOLD", "TimedStore", "recorders_for", "timed", "timed_operation", "timed_operations"]

P = ParamSpec("P")
R = TypeVar("R")

#: A database call slower than this (seconds) counts in comet_slow_calls_total and logs a warning.
SLOW_THRESHOLD = 0.5

#: The function attribute that marks a timed method; its value is the operation name.
_MARKER = "__storage_operation__"

_perf_counter = time.perf_counter


class TimedStore(Protocol):
    """What a timed method needs of its instance (``Store`` has both from ``StoreBase.__init__``)."""

    _closed: bool
    _timers: Mapping[str, CallRecorder]


S = TypeVar("S", bound=TimedStore)


def timed(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Time ``method`` as ``storage.<method.__name__>`` and report its failures under that name."""
    if not inspect.iscoroutinefunction(method):
        raise TypeError(f"@timed decorates an async def method, got {method!r}")
    operation = method.__name__
    name = f"storage.{operation}"

    @functools.wraps(method)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        recorder = self._timers[operation]
        start = _perf_counter()
        try:
            if self._closed:
                raise StorageError("closed", operation, "the store is closed")
            result = await method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            error = StorageError(classify(exc), operation, str(exc))
            recorder.failed(_perf_counter() - start, error)
            note("storage", name, _perf_counter() - start, error.kind)
            raise error from exc
        except BaseException as exc:  # CancelledError counts as cancelled, the rest as error
            recorder.failed(_perf_counter() - start, exc)
            note("storage", name, _perf_counter() - start, type(exc).__name__)
            raise
        duration = _perf_counter() - start
        recorder.success(duration)
        note("storage", name, duration, "ok")  # a step of the running invocation, if any
        return result

    setattr(wrapper, _MARKER, operation)
    return wrapper


def timed_operation(member: object) -> str | None:
    """The operation name of a ``@timed`` method (function or bound method), else None."""
    operation = getattr(member, _MARKER, None)
    return operation if isinstance(operation, str) else None


@functools.cache
def timed_operations(cls: type) -> tuple[str, ...]:
    """The operations of ``cls``'s ``@timed`` methods, inherited ones first, in definition order."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        names.update(dict.fromkeys(vars(klass)))
    operations = (timed_operation(inspect.getattr_static(cls, name)) for name in names)
    return tuple(operation for operation in operations if operation is not None)


def recorders_for(cls: type, registry: CollectorRegistry) -> dict[str, CallRecorder]:
    """One recorder per timed method of ``cls``, its series created on ``registry`` right away."""
    return {
        operation: CallRecorder(f"storage.{operation}", slow_threshold=SLOW_THRESHOLD, registry=registry)
        for operation in timed_operations(cls)
    }
