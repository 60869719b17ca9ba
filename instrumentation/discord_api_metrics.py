"""The Discord REST metric families and their bounded label values (``route``, ``method``,
``status``, ``scope``, ``error``). Where and why they are recorded: :mod:`instrumentation.discord_api`.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import discord
import discord.http
import discord.webhook.async_
from prometheus_client import CollectorRegistry, Counter, Histogram

from instrumentation.fail_open import HookFailures, HookRegistry

#: The ``hook`` labels of ``comet_instrumentation_errors_total`` the REST seams fail open under.
HOOKS = HookRegistry()
REST_CALL = HOOKS.declare("rest_call")
REST_ATTEMPT = HOOKS.declare("rest_attempt")
REST_BUCKET_WAIT = HOOKS.declare("rest_bucket_wait")

OTHER = "other"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error", "cancelled")
#: Discord's ``X-RateLimit-Scope``: ``user`` is this bot's per-route bucket, called ``bucket`` here.
RATE_LIMIT_SCOPES = {"user": "bucket", "global": "global", "shared": "shared"}
CONNECTION_ERRORS = ("ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "TimeoutError")
REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

_ROUTE_LITERAL = re.compile(r"Route\(\s*'(?:GET|POST|PUT|PATCH|DELETE)',\s*'([^']+)'")


@functools.cache
def route_templates() -> frozenset[str]:
    """The path templates of discord.py's own ``Route(...)`` literals (read once, from its source)."""
    sources = (inspect.getsource(discord.http), inspect.getsource(discord.webhook.async_))
    return frozenset(template for source in sources for template in _ROUTE_LITERAL.findall(source))


def route_label(path: str) -> str:
    return path if path in route_templates() else OTHER


_STATUS_CLASSES = {status: f"{status // 100}xx" for status in range(200, 600)}


def status_class(status: int) -> str:
    return _STATUS_CLASSES.get(status, "error")


class DiscordApiMetrics:
    """The REST metrics of one registry."""

    def __init__(self, registry: CollectorRegistry, errors: Counter, prefix: str = "comet") -> None:
        #: Failures of the REST bookkeeping, counted in ``errors{hook}``; the call itself goes on.
        self.hook_failures = HookFailures(errors, HOOKS.names)
        self.request_duration = Histogram(
            f"{prefix}_discord_request_duration_seconds",
            "Time of one Discord REST call, in seconds: queueing, every attempt and rate-limit wait.",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            f"{prefix}_discord_request_attempts",
            "HTTP attempts made to Discord's REST API, by the status each got (a 429 included).",
            ["route", "method", "status"],
            registry=registry,
        )
        self.rate_limits = Counter(
            f"{prefix}_discord_rate_limits",
            "429 answers from Discord, by X-RateLimit-Scope (bucket, global, shared).",
            ["scope"],
            registry=registry,
        )
        self.rate_limit_wait = Counter(
            f"{prefix}_discord_rate_limit_wait_seconds",
            "Time REST calls waited on Discord's rate limits, in seconds, by scope: from a 429 to the "
            "retry, and (bucket) discord.py's wait for a per-route bucket its headers said was spent.",
            ["scope"],
            registry=registry,
        )
        self.retries = Counter(
            f"{prefix}_discord_request_retries",
            "Attempts after the first of a REST call (discord.py retries 429s and some 5xx).",
            registry=registry,
        )
        self.connection_errors = Counter(
            f"{prefix}_discord_connection_errors",
            "REST attempts that got no HTTP status, by exception class (else other).",
            ["error"],
            registry=registry,
        )
        for scope in RATE_LIMIT_SCOPES.values():
            self.rate_limits.labels(scope)
            self.rate_limit_wait.labels(scope)
        for error in (*CONNECTION_ERRORS, OTHER):
            self.connection_errors.labels(error)
        # Label children by label values: ``.labels()`` takes a lock and builds a key on every call,
        # and this runs on every REST call and attempt. The label sets are bounded (templates).
        self._durations: dict[tuple[str, str, str], Any] = {}
        self._attempts: dict[tuple[str, str, str], Any] = {}

    def duration_child(self, route: str, method: str, status: str) -> Any:
        return _child(self._durations, self.request_duration, (route, method, status))

    def attempt_child(self, route: str, method: str, status: str) -> Any:
        return _child(self._attempts, self.attempts, (route, method, status))


def _child(cache: dict[tuple[str, str, str], Any], metric: Any, key: tuple[str, str, str]) -> Any:
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(*key)
    return child
