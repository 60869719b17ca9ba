"""What the gateway holds (its settings, sessions, connections and counters) and how an event reaches
a session: numbered and buffered always, written to the socket only while the connection is live, so
a RESUME (or the end of a silence) can replay the rest in order. ``GatewayDelivery.publish`` is the
world's event listener. The socket protocol and the fault operations build on this class."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from discord_emulator.core.encoding import dumps
from discord_emulator.core.events import GUILD_CREATE, INTENT_GUILD_MEMBERS, INTENT_MESSAGE_CONTENT, Event
from discord_emulator.core.payloads import guild_create_payload
from discord_emulator.transports.gateway.sessions import GatewayConnection, GatewaySession, shard_for

if TYPE_CHECKING:
    from discord_emulator.core.world import World


def strip_content(data: dict[str, Any]) -> dict[str, Any]:
    """What a bot without the MESSAGE_CONTENT intent receives."""
    stripped = dict(data)
    stripped.update(content="", embeds=[], attachments=[], components=[])
    stripped.pop("poll", None)
    return stripped


class GatewayDelivery:
    def __init__(
        self,
        world: World,
        *,
        heartbeat_interval: float,
        resume_url: Callable[[], str],
        on_change: Callable[[], None],
        token: str | None = None,
        replay_limit: int = 5000,
        resume_window: float = 300.0,
        heartbeat_ack_delay: float = 0.05,
    ) -> None:
        self.world = world
        self.heartbeat_interval = heartbeat_interval
        # A simulated round trip (50 ms, a typical one to Discord). discord.py stamps a heartbeat's
        # send time in its keep-alive thread only after the loop has written it; an ACK that arrives
        # sooner than that thread wakes up is measured against the previous beat and reads as a
        # latency of a whole interval (~41 s).
        self.heartbeat_ack_delay = heartbeat_ack_delay
        self._resume_url = resume_url
        self._on_change = on_change
        self._token = token
        self.replay_limit = replay_limit
        self.resume_window = resume_window
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[GatewayConnection] = []
        self.identify_count = 0
        self.resume_count = 0
        self.invalid_resume_count = 0
        self.member_requests = 0  # REQUEST_GUILD_MEMBERS (op 8) received
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` without waiting for it, keeping a reference (the loop holds tasks weakly)
        so that ``close_all`` can cancel what is still pending."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sessions ----------------------------------------------------------------------------------
    def _expired(self, session: GatewaySession) -> bool:
        gone = session.disconnected_at
        return gone is not None and time.monotonic() - gone > self.resume_window

    def _prune_sessions(self) -> None:
        for sid in [sid for sid, s in self.sessions.items() if s.invalidated or self._expired(s)]:
            del self.sessions[sid]

    def targets(self, guild_id: int | None) -> list[GatewaySession]:
        """Sessions that receive an event of ``guild_id`` (``None``: a DM, shard 0)."""
        result = []
        for session in self.sessions.values():
            if session.invalidated or (session.connection is None and self._expired(session)):
                continue
            shard = 0 if guild_id is None else shard_for(guild_id, session.shard_count)
            if shard == session.shard_id:
                result.append(session)
        return result

    # -- delivery ----------------------------------------------------------------------------------
    async def _send_to(self, session: GatewaySession, event: str, d_json: str) -> None:
        frame = session.frame(event, d_json)
        conn = session.connection
        if conn is not None and conn.live and not conn.silent:
            conn.sent_seq = session.seq
            await conn.send(frame)

    async def _catch_up(self, conn: GatewayConnection, session: GatewaySession, last: int) -> int:
        """Send every buffered event after ``last``, then go live; returns how many were sent. The
        check for "nothing left" and ``live = True`` happen without an await between them, so no
        event is lost or reordered."""
        sent = 0
        while True:
            pending = [(s, frame) for s, frame in session.buffer if s > last]
            if not pending:
                conn.live = True
                return sent
            for s, frame in pending:
                await conn.send(frame)
                conn.sent_seq = last = s
                sent += 1
            if conn.session is not session or conn.ws.closed:
                return sent

    async def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        intent: int = 0,
        content_gated: bool = False,
    ) -> int:
        """Send ``event`` to every session that should see it; returns how many sessions got it.

        ``intent``: the gateway intent a session needs to receive the event at all.
        ``content_gated``: sessions without MESSAGE_CONTENT get content/embeds/attachments emptied.
        """
        sessions = self.targets(guild_id)
        if not sessions:
            return 0
        full: str | None = None
        stripped: str | None = None
        count = 0
        for session in sessions:
            if intent and not session.has_intent(intent):
                continue
            if content_gated and not session.has_intent(INTENT_MESSAGE_CONTENT):
                if stripped is None:
                    stripped = dumps(strip_content(data))
                d_json = stripped
            else:
                if full is None:
                    full = dumps(data)
                d_json = full
            await self._send_to(session, event, d_json)
            count += 1
        return count

    async def publish(self, event: Event) -> None:
        """The world's event listener: send ``event`` to the sessions that should see it."""
        if event.name == GUILD_CREATE:
            await self.dispatch_guild_create(event.guild_id or int(event.data["id"]))
            return
        await self.dispatch(
            event.name,
            event.data,
            guild_id=event.guild_id,
            intent=event.intent,
            content_gated=event.content_gated,
        )

    async def dispatch_guild_create(self, guild_id: int) -> None:
        """A guild the bot just joined (added after READY)."""
        guild = self.world.guilds[guild_id]
        for session in self.targets(guild_id):
            payload = guild_create_payload(
                self.world, guild, with_members=session.has_intent(INTENT_GUILD_MEMBERS)
            )
            await self._send_to(session, "GUILD_CREATE", dumps(payload))

    # -- state, shutdown ---------------------------------------------------------------------------
    def shards_connected(self) -> list[int]:
        return sorted(c.session.shard_id for c in self.connections if c.session is not None and c.live)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "session_id": s.session_id,
                "shard": [s.shard_id, s.shard_count],
                "seq": s.seq,
                "resumes": s.resumes,
                "connected": s.connected,
                "path": s.connection.path if s.connection is not None else None,
                "invalidated": s.invalidated,
                "intents": s.intents,
            }
            for s in self.sessions.values()
        ]

    async def close_all(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"emulator shutting down")
        for task in list(self._tasks):
            task.cancel()
