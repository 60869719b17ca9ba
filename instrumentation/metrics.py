"""Every metric of the bot, defined once on a given ``CollectorRegistry``.

Metrics are created by the launcher (or a test) and handed to the bot; cogs only use them, so a hot
reload never re-registers anything. ``Metrics.for_registry`` returns the one ``Metrics`` bound to a
registry, creating it on first use, so two registries side by side (tests, a second bot) just work.

Label values are bounded: commands are the registered qualified names (anything else is
``unknown``), outcomes and error names come from closed sets, gateway events from the known
dispatch types (else ``other``). No user-controlled string ever becomes a label value.
"""

from __future__ import annotations

import platform
import threading
import weakref
from collections.abc import Iterable
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from instrumentation.cache_sizes import CacheSizes
from instrumentation.discord_api_metrics import DiscordApiMetrics
from instrumentation.gateway_budget import GatewayBudget

PREFIX = "comet"

UNKNOWN = "unknown"
OTHER = "other"

#: Buckets in seconds; 1 s is the slow threshold, 3 s is Discord's acknowledgement deadline.
#: Dense around the 1 s slow threshold (CometSlowResponses, the latency SLO): with a gap from 1 to
#: 2.5 s, a p95 of 1.1 s would be read as up to 2.4 s by histogram_quantile's interpolation.
COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0)
FUNCTION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

COMMAND_KINDS = ("prefix", "slash")
#: ``cancelled``: the invocation was cancelled before it ended (a shutdown's grace period ran out).
COMMAND_OUTCOMES = ("success", "error", "check_failed", "cooldown", "bad_argument", "not_found", "cancelled")
#: The outcomes of ``comet_commands_total`` pre-initialised for each command and kind it has: every
#: command can succeed or fail, and the error ratio (alerts, SLO, dashboards) divides one by the
#: sum. The other outcomes depend on the command (checks, cooldowns, arguments) and appear on first
#: use, as does ``comet_command_errors_total`` (one series per exception class). The duration
#: histogram is pre-initialised too, for each command and kind it has: ``rate()`` cannot see the
#: first observation of a series created by it, so after a restart the first (perhaps only) slow
#: call of each command would be missing from CometSlowResponses and the latency SLO.
PREINITIALISED_OUTCOMES = ("success", "error")
FUNCTION_OUTCOMES = ("success", "error", "cancelled")
DEBUG_OUTCOMES = ("ok", "error", "timeout", "denied", "disabled")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
AUTOMOD_ACTIONS = ("timeout", "delete", "warn")

#: Gateway dispatch types the bot can see (discord.py's parsers); anything else counts as ``other``.
GATEWAY_EVENTS = frozenset(
    {
        "READY",
        "RESUMED",
        "GUILD_CREATE",
        "GUILD_UPDATE",
        "GUILD_DELETE",
        "GUILD_MEMBER_ADD",
        "GUILD_MEMBER_REMOVE",
        "GUILD_MEMBER_UPDATE",
        "GUILD_MEMBERS_CHUNK",
        "GUILD_ROLE_CREATE",
        "GUILD_ROLE_UPDATE",
        "GUILD_ROLE_DELETE",
        "GUILD_BAN_ADD",
        "GUILD_BAN_REMOVE",
        "GUILD_EMOJIS_UPDATE",
        "GUILD_STICKERS_UPDATE",
        "GUILD_INTEGRATIONS_UPDATE",
        "GUILD_AUDIT_LOG_ENTRY_CREATE",
        "CHANNEL_CREATE",
        "CHANNEL_UPDATE",
        "CHANNEL_DELETE",
        "CHANNEL_PINS_UPDATE",
        "THREAD_CREATE",
        "THREAD_UPDATE",
        "THREAD_DELETE",
        "THREAD_LIST_SYNC",
        "THREAD_MEMBER_UPDATE",
        "THREAD_MEMBERS_UPDATE",
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "MESSAGE_DELETE",
        "MESSAGE_DELETE_BULK",
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "MESSAGE_REACTION_REMOVE_ALL",
        "MESSAGE_REACTION_REMOVE_EMOJI",
        "MESSAGE_POLL_VOTE_ADD",
        "MESSAGE_POLL_VOTE_REMOVE",
        "INTERACTION_CREATE",
        "PRESENCE_UPDATE",
        "TYPING_START",
        "USER_UPDATE",
        "VOICE_STATE_UPDATE",
        "VOICE_SERVER_UPDATE",
        "WEBHOOKS_UPDATE",
        "INVITE_CREATE",
        "INVITE_DELETE",
        "STAGE_INSTANCE_CREATE",
        "STAGE_INSTANCE_UPDATE",
        "STAGE_INSTANCE_DELETE",
        "GUILD_SCHEDULED_EVENT_CREATE",
        "GUILD_SCHEDULED_EVENT_UPDATE",
        "GUILD_SCHEDULED_EVENT_DELETE",
        "AUTO_MODERATION_RULE_CREATE",
        "AUTO_MODERATION_ACTION_EXECUTION",
        "ENTITLEMENT_CREATE",
        "ENTITLEMENT_UPDATE",
        "ENTITLEMENT_DELETE",
        "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
    }
)


def _discord_error_names() -> set[str]:
    """Exception class names discord.py defines for commands, plus the HTTP ones we care about."""
    names = {"HTTPException", "Forbidden", "NotFound", "DiscordServerError", "TimeoutError", OTHER}
    try:
        from discord import app_commands
        from discord.ext import commands
    except ImportError:  # the library works without discord.py; the bot never does
        return names
    for module in (commands.errors, app_commands.errors):
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                names.add(name)
    return names


#: Grows only through ``instrumentation.failures.allow_error_class`` (classes named in code).
ERROR_NAMES = _discord_error_names()


def error_label(exc: BaseException) -> str:
    """The bounded ``error`` label for an exception: its class name if discord.py defines it."""
    for cls in type(exc).__mro__:
        if cls.__name__ in ERROR_NAMES:
            return cls.__name__
    return OTHER


def gateway_event_label(event_type: str) -> str:
    return event_type if event_type in GATEWAY_EVENTS else OTHER


class Metrics:
    """All metric objects of one registry. Build with :meth:`for_registry`."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, Metrics]] = (
        weakref.WeakKeyDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> Metrics:
        """The single ``Metrics`` of ``registry`` (created and registered on first call)."""
        with cls._lock:
            metrics = cls._by_registry.get(registry)
            if metrics is None:
                metrics = cls(registry)
                cls._by_registry[registry] = metrics
            return metrics

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self._commands: frozenset[str] = frozenset()
        #: The kinds each registered command was pre-initialised for.
        self._command_kinds: dict[str, frozenset[str]] = {}

        # Commands (recorded by instrumentation.commands).
        self.command_duration = Histogram(
            f"{PREFIX}_command_duration_seconds",
            "Time from a command's invocation to its completion, in seconds.",
            ["command", "kind"],
            buckets=COMMAND_BUCKETS,
            registry=r,
        )
        self.commands = Counter(
            f"{PREFIX}_commands",
            "Commands invoked, by outcome.",
            ["command", "kind", "outcome"],
            registry=r,
        )
        self.command_errors = Counter(
            f"{PREFIX}_command_errors",
            "Command failures, by exception class.",
            ["command", "error"],
            registry=r,
        )

        # Any function (recorded by instrumentation.decorators.monitor_performance).
        self.function_duration = Histogram(
            f"{PREFIX}_function_duration_seconds",
            "Duration of monitored function calls, in seconds.",
            ["function"],
            buckets=FUNCTION_BUCKETS,
            registry=r,
        )
        self.function_calls = Counter(
            f"{PREFIX}_function_calls",
            "Monitored function calls, by outcome.",
            ["function", "outcome"],
            registry=r,
        )
        self.slow_calls = Counter(
            f"{PREFIX}_slow_calls",
            "Monitored function calls slower than their threshold.",
            ["function"],
            registry=r,
        )

        # Gateway (recorded by instrumentation.gateway).
        self.gateway_latency = Gauge(
            f"{PREFIX}_gateway_latency_seconds",
            "Gateway heartbeat latency per shard, in seconds.",
            ["shard"],
            registry=r,
        )
        self.gateway_events = Counter(
            f"{PREFIX}_gateway_events",
            "Gateway dispatch events received, by type.",
            ["event"],
            registry=r,
        )
        self.gateway_disconnects = Counter(
            f"{PREFIX}_gateway_disconnects",
            "Gateway disconnections per shard.",
            ["shard"],
            registry=r,
        )
        self.gateway_resumes = Counter(
            f"{PREFIX}_gateway_resumes",
            "Gateway sessions resumed per shard.",
            ["shard"],
            registry=r,
        )
        self.ready = Gauge(
            f"{PREFIX}_ready", "1 when the bot is logged in and its cache is ready.", registry=r
        )
        self.shard_up = Gauge(
            f"{PREFIX}_shard_up",
            "1 while the shard's gateway connection is up.",
            ["shard"],
            registry=r,
        )
        # Cache sizes: a collector that reads the bot when Prometheus scrapes (0 until one is bound).
        self.cache_sizes = CacheSizes(PREFIX)
        r.register(self.cache_sizes)

        # Event loop (recorded by instrumentation.loop).
        self.loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop ran a scheduled wake-up, in seconds.",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.loop_blocked = Counter(
            f"{PREFIX}_event_loop_blocked",
            "Times the event loop was blocked longer than the threshold.",
            registry=r,
        )

        # Owner tools, logging, self-monitoring.
        self.debug_invocations = Counter(
            f"{PREFIX}_debug_invocations",
            "Owner debug command attempts, by outcome.",
            ["command", "outcome"],
            registry=r,
        )
        self.log_records = Counter(
            f"{PREFIX}_log_records",
            "Log records emitted, by level.",
            ["level"],
            registry=r,
        )
        self.instrumentation_errors = Counter(
            f"{PREFIX}_instrumentation_errors",
            "Exceptions raised inside instrumentation hooks.",
            ["hook"],
            registry=r,
        )
        self.extension_reloads = Counter(
            f"{PREFIX}_extension_reloads",
            "Extension load/reload/unload operations, by outcome.",
            ["operation", "outcome"],
            registry=r,
        )
        self.automod_actions = Counter(
            f"{PREFIX}_automod_actions",
            "Automatic moderation actions taken.",
            ["action"],
            registry=r,
        )
        # Discord's REST API (recorded by instrumentation.discord_api).
        self.discord_api = DiscordApiMetrics(r, self.instrumentation_errors, PREFIX)
        # The shards' gateway send budget (read and timed by instrumentation.gateway_budget).
        self.gateway_budget = GatewayBudget(r, PREFIX)
        self.build_info = Gauge(
            f"{PREFIX}_build_info",
            "Build information; the value is always 1.",
            ["version", "discord_py", "python"],
            registry=r,
        )
        self._preinitialise()

    def _preinitialise(self) -> None:
        for event in ("MESSAGE_CREATE", "INTERACTION_CREATE", "GUILD_CREATE", "READY", "RESUMED"):
            self.gateway_events.labels(event)
        # ``unknown`` is only ever a command that was not found (or refused before it resolved).
        for kind in COMMAND_KINDS:
            self.commands.labels(UNKNOWN, kind, "not_found")
        self._commands = frozenset({UNKNOWN})

    def preinitialise_application_series(self) -> None:
        """Pre-initialise what only an application that records them can make non-zero: the log
        records by level (the counting log handler), extension loads and reloads, automod actions.
        The COMET bot calls this; a bot instrumented by ``instrument()`` records none of them, so
        its exposition carries no zero that could never move."""
        for level in LOG_LEVELS:
            self.log_records.labels(level)
        for operation in ("load", "reload", "unload"):
            for outcome in ("success", "error"):
                self.extension_reloads.labels(operation, outcome)
        for action in AUTOMOD_ACTIONS:
            self.automod_actions.labels(action)

    # -- bounded labels -----------------------------------------------------------------------

    def register_commands(self, commands: Iterable[str | tuple[str, Iterable[str]]]) -> None:
        """Declare the command names that may appear as labels, and pre-initialise their series.

        Each item is a qualified name, or a ``(name, kinds)`` pair naming the kinds the command has
        (:func:`commands_with_kinds`: a hybrid has ``prefix`` and ``slash``, a plain prefix command
        ``prefix``, an app command ``slash``); a bare name is taken to have both. Pre-initialised,
        per command and kind it has: ``comet_commands_total`` for the ``success`` and ``error``
        outcomes (the ones every command can reach and the alerts and dashboards divide by) and the
        duration histogram. The other outcomes and ``comet_command_errors_total`` appear on first
        use (``PREINITIALISED_OUTCOMES`` explains why).

        Call again after commands are added or reloaded; names and kinds only ever accumulate, so a
        series that existed keeps its value.
        """
        known = self._command_kinds
        for item in commands:
            kinds: tuple[str, ...]
            if isinstance(item, str):
                name, kinds = item, COMMAND_KINDS
            else:
                name, kinds = item[0], tuple(item[1])
                unknown_kinds = set(kinds) - set(COMMAND_KINDS)
                if unknown_kinds:
                    raise ValueError(f"unknown command kind(s) {sorted(unknown_kinds)} for {name!r}")
            had = known.get(name, frozenset())
            for kind in kinds:
                if kind in had:
                    continue
                for outcome in PREINITIALISED_OUTCOMES:
                    self.commands.labels(name, kind, outcome)
                self.command_duration.labels(name, kind)
            known[name] = had | frozenset(kinds)
        self._commands = frozenset(known) | {UNKNOWN}

    def register_owner_commands(self, names: Iterable[str]) -> None:
        """Pre-initialise ``debug_invocations`` for owner-only commands (their names are bounded)."""
        for command in names:
            for outcome in DEBUG_OUTCOMES:
                self.debug_invocations.labels(command, outcome)

    def command_label(self, name: str | None) -> str:
        """``name`` if it is a registered command, else ``unknown``."""
        return name if name is not None and name in self._commands else UNKNOWN

    def register_shards(self, shard_ids: Iterable[int]) -> None:
        shard_ids = tuple(shard_ids)
        self.gateway_budget.register_shards(shard_ids)
        for shard in shard_ids:
            s = str(shard)
            self.gateway_disconnects.labels(s)
            self.gateway_resumes.labels(s)
            self.shard_up.labels(s).set(0)

    def set_build_info(self, version: str, discord_py: str) -> None:
        self.build_info.labels(version, discord_py, platform.python_version()).set(1)


_default_registry = CollectorRegistry(auto_describe=True)


def default_registry() -> CollectorRegistry:
    """The library's default registry (like prometheus_client's ``REGISTRY``); the launcher serves it."""
    return _default_registry
