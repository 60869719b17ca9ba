"""The invocation flight recorder: the recent slow and failed command invocations, with what each
spent its time on.

Every invocation gets a random id (not a snowflake) when its clock starts, in the invocation's own
task: the ``command`` tap inside ``Bot.invoke`` (prefix) or the tree's ``interaction_check``
(slash). While it runs, REST calls (:mod:`instrumentation.discord_api`) and anything else that
calls :func:`note` add a step to its timeline, found through a ``ContextVar``. When it ends, it is
kept if it was slow or failed (a bounded ring of each), and only then is its id attached to the
duration histogram as an exemplar and written in the log: an id always leads somewhere.

Nothing of a message is kept: no content, no user or channel id, only the command's name, route
templates, operation names, durations, statuses and error class names.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Steps kept per invocation; later ones are counted in ``dropped_steps`` only.
MAX_STEPS = 64
#: Invocations kept, of each kind (slow, failed).
KEEP = 200
FAILED_OUTCOMES = frozenset({"error", "cancelled"})


@dataclass(slots=True)
class Step:
    at: float  #: seconds since the invocation started
    kind: str  #: rest, storage, ...
    name: str  #: a route template with its method, an operation name: never user content
    duration: float
    status: str = ""
    waited: float = 0.0  #: of ``duration``, seconds spent waiting on a rate limit


@dataclass(slots=True)
class Trace:
    id: str
    kind: str  #: prefix or slash
    started_at: float  #: wall clock (Unix time)
    started: float = field(repr=False)  #: perf_counter, for the steps' offsets
    command: str | None = None
    outcome: str | None = None
    error: str | None = None
    duration: float | None = None
    #: (ended at, kind, name, duration, status, waited): plain tuples, as most invocations are fast
    #: and forgotten; they become :class:`Step` records only when a kept one is read.
    raw_steps: list[tuple[float, str, str, float, str, float]] = field(default_factory=list, repr=False)
    dropped_steps: int = 0
    #: Where the invocation's context finds it, until it ends.
    slot: _Slot | None = field(default=None, repr=False, compare=False)

    def add(self, kind: str, name: str, duration: float, status: str = "", waited: float = 0.0) -> None:
        if len(self.raw_steps) >= MAX_STEPS:
            self.dropped_steps += 1
            return
        self.raw_steps.append((time.perf_counter(), kind, name, duration, status, waited))

    @property
    def steps(self) -> list[Step]:
        return [
            Step(round(max(0.0, ended - self.started - took), 6), kind, name, round(took, 6), status,
                 round(waited, 6))
            for ended, kind, name, took, status, waited in self.raw_steps
        ]  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data.pop("raw_steps")
        data.pop("slot")
        data["steps"] = [asdict(step) for step in self.steps]
        return data


class _Slot:
    """What an invocation's context holds: its id, and its trace until it ends.

    Callbacks scheduled during the invocation (aiohttp's timeouts, the batch timer) copy the
    context, and a cancelled timer stays in the loop's queue until its time or until the loop
    purges its cancelled timers (after about a hundred of them). Holding the trace itself, they kept
    traces alive into the garbage collector's older generations; emptied at the end, the slot keeps
    nothing but the id.
    """

    __slots__ = ("id", "trace")

    def __init__(self, trace: Trace) -> None:
        self.id = trace.id
        self.trace: Trace | None = trace


_CURRENT: ContextVar[_Slot | None] = ContextVar("comet_invocation", default=None)
_random = random.Random()


def new_id() -> str:
    """16 hex characters with at least one letter, so that no id ever reads as a snowflake (15-20
    digits). Not a secret (the endpoint that reads an invocation needs auth or loopback): a cheap
    pseudo-random id, no system call."""
    while True:
        candidate = f"{_random.getrandbits(64):016x}"
        if not candidate.isdigit():
            return candidate


def current() -> Trace | None:
    """The invocation the calling task runs for, if any, while it has not ended."""
    slot = _CURRENT.get()
    return slot.trace if slot is not None else None


def current_id() -> str | None:
    """The id of the invocation the calling task runs for, ended or not (an error handler runs
    after the end, and logs it)."""
    slot = _CURRENT.get()
    return slot.id if slot is not None else None


def note(kind: str, name: str, duration: float, status: str = "", waited: float = 0.0) -> None:
    """Add a step to the current invocation's timeline (nothing outside an invocation)."""
    slot = _CURRENT.get()
    if slot is not None and slot.trace is not None:
        slot.trace.add(kind, name, duration, status, waited)


class FlightRecorder:
    """The kept invocations of one bot."""

    def __init__(self, *, slow_threshold: float = 1.0, keep: int = KEEP) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.slow_threshold = slow_threshold
        self._keep = keep
        self._slow: OrderedDict[str, Trace] = OrderedDict()
        self._failed: OrderedDict[str, Trace] = OrderedDict()
        self._last: Trace | None = None

    def begin(self, kind: str) -> Trace:
        """Start an invocation in the calling task (its steps are found through the context)."""
        trace = Trace(new_id(), kind, time.time(), time.perf_counter())
        trace.slot = _Slot(trace)
        _CURRENT.set(trace.slot)
        return trace

    def finish(
        self, trace: Trace, command: str | None, outcome: str, error: BaseException | None, duration: float
    ) -> str | None:
        """End ``trace``; its id if it was kept (slow or failed), else None."""
        slot, trace.slot = trace.slot, None
        if slot is not None:
            slot.trace = None
        trace.command = command
        trace.outcome = outcome
        trace.error = type(error).__name__ if error is not None else None
        trace.duration = round(duration, 6)
        failed = outcome in FAILED_OUTCOMES
        slow = duration >= self.slow_threshold
        if not (failed or slow):
            return None
        ring = self._failed if failed else self._slow
        ring[trace.id] = trace
        while len(ring) > self._keep:
            ring.popitem(last=False)
        self._last = trace
        if slow:
            # The same id as the exemplar on the duration histogram: from a slow bucket to this line.
            log.warning("Command %s was slow: %.3f s (trace %s)", command or "unknown", duration, trace.id)
        return trace.id

    def get(self, trace_id: str) -> Trace | None:
        return self._failed.get(trace_id) or self._slow.get(trace_id)

    def last(self) -> Trace | None:
        """The most recent kept invocation."""
        return self._last

    def recent(self, limit: int = 20) -> list[Trace]:
        kept = sorted([*self._slow.values(), *self._failed.values()], key=lambda t: t.started_at)
        return kept[-limit:]
