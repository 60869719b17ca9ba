"""Instrumentation fails open: an exception inside a hook is counted and logged, never raised.

A command must never fail because its measurement did. Every hook body is therefore guarded, and
what it guards against is counted in ``comet_instrumentation_errors_total{hook}``. Only
``Exception`` is caught: a ``CancelledError`` still stops its task (a shutdown must not hang).

Each ``hook`` label value is written once, where it is declared on the instrumentation's
:class:`HookRegistry`: ``@HOOKS.fail_open("command_completion")`` on the method that is the hook,
or ``HOOKS.declare("flush")`` for a label a loop body fails under. :class:`HookFailures`
pre-initialises exactly the registry's names, so every label a hook can fail under shows 0 on a
dashboard before its first failure, and an ``except`` never spells a label out a second time.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from prometheus_client import Counter

__all__ = ["FailsOpen", "Hook", "HookFailures", "HookRegistry"]

log = logging.getLogger(__name__)


class HookFailures:
    """Logs the exception being handled and counts it under its hook's label."""

    __slots__ = ("_children", "_counter")

    def __init__(self, counter: Counter, hooks: Iterable[str]) -> None:
        self._counter = counter
        # Pre-initialised, so a dashboard shows 0 failures per hook rather than "no data".
        self._children: dict[str, Any] = {hook: counter.labels(hook) for hook in hooks}

    def record(self, hook: str) -> None:
        """Call from inside an ``except`` block: the exception is logged with its traceback."""
        log.exception("instrumentation hook %s failed (the command goes on)", hook)
        try:
            child = self._children.get(hook)
            if child is None:
                child = self._children[hook] = self._counter.labels(hook)
            child.inc()
        except Exception:  # the counter itself must never take the bot down either
            log.exception("could not count the failure of hook %s", hook)


class FailsOpen(Protocol):
    """An object whose methods are fail-open hooks: where their failures are counted."""

    @property
    def hook_failures(self) -> HookFailures: ...


_Owner = TypeVar("_Owner", bound=FailsOpen)
_P = ParamSpec("_P")
_R = TypeVar("_R")


class Hook(str):
    """A declared ``hook`` label value; hand it to :meth:`HookRegistry.fail_open` to share the label."""

    __slots__ = ()


class HookRegistry:
    """The ``hook`` label values one instrumentation can fail under, each declared exactly once."""

    def __init__(self) -> None:
        self._names: dict[str, None] = {}  # an insertion-ordered set

    @property
    def names(self) -> tuple[str, ...]:
        """Every declared label, in declaration order (what the failure counter pre-initialises)."""
        return tuple(self._names)

    def declare(self, name: str) -> Hook:
        """Declare a label used by more than one hook body, or inside a loop."""
        if name in self._names:
            # Two declarations of one label are two places to keep in step: use the Hook returned.
            raise ValueError(f"hook label {name!r} is already declared")
        self._names[name] = None
        return Hook(name)

    @overload
    def fail_open(
        self, hook: str
    ) -> Callable[[Callable[Concatenate[_Owner, _P], None]], Callable[Concatenate[_Owner, _P], None]]: ...

    @overload
    def fail_open(
        self, hook: str, *, fallback: _R
    ) -> Callable[[Callable[Concatenate[_Owner, _P], _R]], Callable[Concatenate[_Owner, _P], _R]]: ...

    def fail_open(
        self, hook: str, *, fallback: Any = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Make a method a hook that fails open under ``hook`` (declared here unless it is a :class:`Hook`).

        On an exception the wrapper counts and logs it through ``self.hook_failures`` and returns
        ``fallback``. Declare a hot hook's parameters positional-only (as discord.py calls them): it
        then gets a wrapper without ``*args``/``**kwargs``, which costs a fraction of the generic one.
        """
        label = hook if isinstance(hook, Hook) and hook in self._names else self.declare(hook)

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            return functools.update_wrapper(_failing_open(func, label, fallback), func)

        return decorate


def _failing_open(func: Callable[..., Any], label: str, fallback: Any) -> Callable[..., Any]:
    # Packing and unpacking *args/**kwargs costs about as much as a small hook's body; these hooks
    # run on every gateway event and every command, so the common shapes get a wrapper of their own.
    params = list(inspect.signature(func).parameters.values())[1:]  # after the owner (self)
    plain = all(p.kind is p.POSITIONAL_ONLY and p.default is p.empty for p in params)
    if plain and len(params) == 0:

        def failing_open_0(owner: FailsOpen, /) -> Any:
            try:
                return func(owner)
            except Exception:
                owner.hook_failures.record(label)
                return fallback

        return failing_open_0
    if plain and len(params) == 1:

        def failing_open_1(owner: FailsOpen, a: Any, /) -> Any:
            try:
                return func(owner, a)
            except Exception:
                owner.hook_failures.record(label)
                return fallback

        return failing_open_1
    if plain and len(params) == 2:

        def failing_open_2(owner: FailsOpen, a: Any, b: Any, /) -> Any:
            try:
                return func(owner, a, b)
            except Exception:
                owner.hook_failures.record(label)
                return fallback

        return failing_open_2

    def failing_open(owner: FailsOpen, /, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(owner, *args, **kwargs)
        except Exception:
            owner.hook_failures.record(label)
            return fallback

    return failing_open
