"""Faults on demand: what real Discord does on a bad day, for the client to survive.

REST faults apply to a route (templated like ``/channels/{channel_id}/messages``, or a concrete path,
optionally prefixed by a method: ``"POST /channels/{channel_id}/messages"``) or to every route, for the
next ``count`` matching calls (``None``: until ``clear()``). Gateway faults act on the open
connections of one shard (``None``: every shard) right away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from discord_emulator.buckets import RouteBuckets

if TYPE_CHECKING:
    from discord_emulator.transports.gateway import Gateway


@dataclass(slots=True)
class RestFault:
    kind: str
    route: str | None
    method: str | None
    remaining: int | None  # None: unlimited
    delay: float = 0.0
    status: int = 500
    retry_after: float = 0.0
    is_global: bool = False
    #: X-RateLimit-Scope of a 429: "user" (the bot's per-route bucket), "global", or "shared" (a
    #: resource's limit shared by every user, e.g. a busy channel; it does not count against the bot).
    scope: str = "user"

    def matches(self, method: str, route: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.route is None or self.route == route or self.route == path


def _split_route(route: str | None) -> tuple[str | None, str | None]:
    if route is None:
        return None, None
    route = route.strip()
    method, _, rest = route.partition(" ")
    if rest and method.isalpha() and method.isupper():
        return method, rest.strip()
    return None, route


class FaultInjector:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._rest: list[RestFault] = []
        #: Discord's per-route rate limits (headers on every answer; real limits on demand).
        self.buckets = RouteBuckets()
        self.injected: list[str] = []  # log of faults that fired ("rate_limit POST /channels/..")

    @property
    def active(self) -> bool:
        return bool(self._rest)

    # -- REST -------------------------------------------------------------------------------------
    def _add(
        self, kind: str, route: str | None, count: int | None, **params: float | int | bool | str
    ) -> RestFault:
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for every call)")
        method, template = _split_route(route)
        fault = RestFault(kind=kind, route=template, method=method, remaining=count, **params)  # type: ignore[arg-type]
        self._rest.append(fault)
        return fault

    def slow_rest(self, delay: float, route: str | None = None, count: int | None = None) -> RestFault:
        if delay < 0:
            raise ValueError("delay must be >= 0")
        return self._add("slow", route, count, delay=float(delay))

    def rate_limit(
        self,
        retry_after: float,
        route: str | None = None,
        count: int | None = 1,
        *,
        is_global: bool = False,
        shared: bool = False,
    ) -> RestFault:
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        if is_global and shared:
            raise ValueError("a rate limit is global or shared, not both")
        scope = "global" if is_global else "shared" if shared else "user"
        return self._add(
            "rate_limit", route, count, retry_after=float(retry_after), is_global=is_global, scope=scope
        )

    def server_error(self, status: int = 500, route: str | None = None, count: int | None = 1) -> RestFault:
        if not 500 <= status <= 599:
            raise ValueError("status must be a 5xx code")
        return self._add("server_error", route, count, status=int(status))

    def forbidden(self, route: str | None = None, count: int | None = 1) -> RestFault:
        return self._add("forbidden", route, count, status=403)

    def limit_route(self, route: str, limit: int, per: float) -> None:
        """A real per-route bucket: ``limit`` calls per ``per`` seconds for each channel, guild or
        webhook of ``route`` (a template, optionally after a method). A call beyond it gets a 429
        with ``X-RateLimit-Scope: user``; discord.py, reading the headers, waits before sending it."""
        method, template = _split_route(route)
        if template is None:
            raise ValueError("limit_route needs a route")
        self.buckets.limit(template, limit, per, method)

    def clear(self) -> None:
        """Remove every pending REST fault and route limit, and end gateway silence."""
        self._rest.clear()
        self.buckets.clear()
        self._gateway.silence(None, enabled=False)

    def take(self, method: str, route: str, path: str) -> tuple[float, RestFault | None]:
        """(delay to apply, error fault to answer with) for one request; consumes counts."""
        delay = 0.0
        error: RestFault | None = None
        for fault in list(self._rest):
            if not fault.matches(method, route, path):
                continue
            if fault.kind == "slow":
                if delay:
                    continue
                delay = fault.delay
            elif error is None:
                error = fault
            else:
                continue
            self.injected.append(f"{fault.kind} {method} {route}")
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._rest.remove(fault)
        return delay, error

    # -- gateway ----------------------------------------------------------------------------------
    def drop_socket(self, shard: int | None = None) -> int:
        """Cut the TCP connection (no close frame): discord.py reconnects and RESUMEs."""
        return self._gateway.drop(shard)

    def reconnect(self, shard: int | None = None) -> int:
        """Send op 7 RECONNECT: discord.py closes and RESUMEs on ``resume_gateway_url``."""
        return self._gateway.send_reconnect(shard)

    def invalid_session(self, resumable: bool = False, shard: int | None = None) -> int:
        """Send op 9: ``d:false`` invalidates the session (new IDENTIFY), ``d:true`` lets it RESUME."""
        return self._gateway.invalidate(shard, resumable=resumable)

    def silence_gateway(self, shard: int | None = None, enabled: bool = True) -> int:
        """Zombie connection: the open connections stop ACKing heartbeats and hold back events
        (discord.py closes after its heartbeat timeout and RESUMEs; new connections are healthy)."""
        return self._gateway.silence(shard, enabled=enabled)
