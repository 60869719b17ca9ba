"""The gateway websocket: HELLO, IDENTIFY/READY/GUILD_CREATE, heartbeats, dispatch, RESUME and sharding.

Frames are plain TEXT JSON even though discord.py asks for ``compress=zlib-stream`` (it accepts both).
Every dispatched event gets the session's next sequence number and is kept in a bounded per-session
buffer, so a client that RESUMEs with its last ``seq`` gets the events it missed replayed, then RESUMED
— also for events sent while it was disconnected. A guild's events go to the session(s) of shard
``(guild_id >> 22) % shard_count``; DMs go to shard 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from discord_emulator.core.encoding import dumps
from discord_emulator.core.events import (
    GUILD_CREATE,
    INTENT_GUILD_MEMBERS,
    INTENT_MESSAGE_CONTENT,
    Event,
)
from discord_emulator.core.payloads import guild_create_payload

if TYPE_CHECKING:
    from discord_emulator.core.world import World

log = logging.getLogger(__name__)

# Close codes that tell discord.py what went wrong.
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTH_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010

_HEARTBEAT_ACK = '{"op":11,"d":null}'


def shard_for(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count if shard_count > 1 else 0


def strip_content(data: dict[str, Any]) -> dict[str, Any]:
    """What a bot without the MESSAGE_CONTENT intent receives."""
    stripped = dict(data)
    stripped.update(content="", embeds=[], attachments=[], components=[])
    stripped.pop("poll", None)
    return stripped


@dataclass(eq=False)
class GatewaySession:
    session_id: str
    token: str
    shard_id: int
    shard_count: int
    sharded: bool
    intents: int
    replay_limit: int
    seq: int = 0
    resumes: int = 0
    replayed: int = 0  # frames delivered by catch-up after a RESUME (events the client had missed)
    invalidated: bool = False
    connection: GatewayConnection | None = None
    disconnected_at: float | None = None
    buffer: deque[tuple[int, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.buffer = deque(maxlen=self.replay_limit)

    @property
    def connected(self) -> bool:
        return self.connection is not None

    def has_intent(self, bits: int) -> bool:
        return (self.intents & bits) == bits

    def frame(self, event: str, d_json: str) -> str:
        self.seq += 1
        frame = f'{{"op":0,"s":{self.seq},"t":"{event}","d":{d_json}}}'
        self.buffer.append((self.seq, frame))
        return frame


@dataclass(eq=False)
class GatewayConnection:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    session: GatewaySession | None = None
    live: bool = False  # events are written straight to the socket (False while replaying)
    silent: bool = False
    sent_seq: int = 0  # last sequence number written to this socket
    heartbeats: int = 0

    @property
    def shard_id(self) -> int | None:
        return self.session.shard_id if self.session else None

    async def send(self, frame: str) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_str(frame)
        except (ConnectionError, RuntimeError):  # the peer went away mid-write; RESUME will replay
            pass

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class Gateway:
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

    # -- socket handling ---------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # compress=False: permessage-deflate would add a lock and CPU per frame for nothing on loopback.
        ws = web.WebSocketResponse(compress=False, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = GatewayConnection(ws=ws, request=request, path=request.path)
        self.connections.append(conn)
        self._on_change()
        interval_ms = int(self.heartbeat_interval * 1000)
        await conn.send(f'{{"op":10,"s":null,"t":null,"d":{{"heartbeat_interval":{interval_ms}}}}}')
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._received(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=CLOSE_DECODE_ERROR, message=b"binary frames are not supported")
                else:
                    break
        finally:
            self._detach(conn)
        return ws

    def _detach(self, conn: GatewayConnection) -> None:
        with contextlib.suppress(ValueError):
            self.connections.remove(conn)
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            session.disconnected_at = time.monotonic()
        conn.live = False
        self._on_change()

    async def _received(self, conn: GatewayConnection, raw: str) -> None:
        try:
            payload = json.loads(raw)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            await conn.ws.close(code=CLOSE_DECODE_ERROR, message=b"invalid payload")
            return
        if op == 1:
            conn.heartbeats += 1
            if not conn.silent:
                if self.heartbeat_ack_delay > 0:
                    asyncio.get_running_loop().call_later(
                        self.heartbeat_ack_delay, lambda: self._spawn(conn.send(_HEARTBEAT_ACK))
                    )
                else:
                    await conn.send(_HEARTBEAT_ACK)
            return
        if op == 2:
            await self._identify(conn, payload.get("d") or {})
        elif op == 6:
            await self._resume(conn, payload.get("d") or {})
        elif op == 8:
            await self._request_members(conn, payload.get("d") or {})
        elif op in (3, 4):  # presence / voice state updates: accepted, nothing to emulate
            return
        else:
            await conn.ws.close(code=CLOSE_UNKNOWN_OPCODE, message=b"unknown opcode")
            return
        self._on_change()

    async def _identify(self, conn: GatewayConnection, d: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.ws.close(code=CLOSE_ALREADY_AUTHENTICATED, message=b"already authenticated")
            return
        token = d.get("token")
        if not isinstance(token, str) or not token or (self._token is not None and token != self._token):
            await conn.ws.close(code=CLOSE_AUTH_FAILED, message=b"authentication failed")
            return
        shard = d.get("shard")
        sharded = shard is not None
        try:
            shard_id, shard_count = (int(shard[0]), int(shard[1])) if shard is not None else (0, 1)
            valid = len(shard or ()) in (0, 2)
        except (TypeError, ValueError, IndexError, KeyError):
            shard_id, shard_count, valid = 0, 0, False
        if not valid or shard_count < 1 or not 0 <= shard_id < shard_count:
            await conn.ws.close(code=CLOSE_INVALID_SHARD, message=b"invalid shard")
            return
        intents = int(d.get("intents", 0) or 0)
        # A client that identifies again for the same shard abandons its old, disconnected session.
        for old in self.sessions.values():
            if (
                old.token == token
                and (old.shard_id, old.shard_count) == (shard_id, shard_count)
                and old.connection is None
            ):
                old.invalidated = True
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            token=token,
            shard_id=shard_id,
            shard_count=shard_count,
            sharded=sharded,
            intents=intents,
            replay_limit=self.replay_limit,
        )
        self.sessions[session.session_id] = session
        self._prune_sessions()
        self.identify_count += 1
        conn.session = session
        session.connection = conn
        guilds = [g for g in self.world.guilds.values() if shard_for(g.id, shard_count) == shard_id]
        ready: dict[str, Any] = {
            "v": 10,
            "user": dict(self.world.bot.payload(), verified=True, mfa_enabled=False, flags=0),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self._resume_url(),
            "application": {"id": str(self.world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "session_type": "normal",
            "auth": {},
        }
        if sharded:
            ready["shard"] = [shard_id, shard_count]
        session.frame("READY", dumps(ready))
        with_members = session.has_intent(INTENT_GUILD_MEMBERS)
        for guild in guilds:
            session.frame(
                "GUILD_CREATE", dumps(guild_create_payload(self.world, guild, with_members=with_members))
            )
        await self._catch_up(conn, session, 0)

    async def _resume(self, conn: GatewayConnection, d: dict[str, Any]) -> None:
        session = self.sessions.get(str(d.get("session_id")))
        seq = d.get("seq")
        last = seq if isinstance(seq, int) else 0
        if (
            session is None
            or session.invalidated
            or session.token != d.get("token")
            or self._expired(session)
            or (session.buffer and session.buffer[0][0] > last + 1)  # missed events no longer buffered
        ):
            self.invalid_resume_count += 1
            await conn.send('{"op":9,"s":null,"t":null,"d":false}')
            return
        previous = session.connection
        if previous is not None and previous is not conn:
            previous.session = None
            previous.live = False
            self._spawn(previous.ws.close(code=4000))
        conn.session = session
        session.connection = conn
        session.disconnected_at = None
        session.resumes += 1
        self.resume_count += 1
        session.frame("RESUMED", "{}")
        session.replayed += await self._catch_up(conn, session, last)

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

    async def _request_members(self, conn: GatewayConnection, d: dict[str, Any]) -> None:
        self.member_requests += 1
        session = conn.session
        if session is None:
            await conn.ws.close(code=CLOSE_NOT_AUTHENTICATED, message=b"not authenticated")
            return
        guild_ids = d.get("guild_id")
        for raw_gid in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            guild = self.world.guilds.get(int(raw_gid)) if raw_gid is not None else None
            if guild is None:
                continue
            query = d.get("query")
            user_ids = {int(u) for u in d.get("user_ids") or []}
            limit = int(d.get("limit") or 0) or len(guild.members)
            members = []
            for member in guild.members.values():
                user = self.world.users[member.user_id]
                if user_ids and member.user_id not in user_ids:
                    continue
                if query and not user.username.lower().startswith(str(query).lower()):
                    continue
                members.append(member.payload(user))
                if len(members) >= limit:
                    break
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            await self._send_to(session, "GUILD_MEMBERS_CHUNK", dumps(chunk))

    # -- dispatch ----------------------------------------------------------------------------------
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

    async def _send_to(self, session: GatewaySession, event: str, d_json: str) -> None:
        frame = session.frame(event, d_json)
        conn = session.connection
        if conn is not None and conn.live and not conn.silent:
            conn.sent_seq = session.seq
            await conn.send(frame)

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

    # -- faults ------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open(self, shard: int | None) -> list[GatewayConnection]:
        return [
            c
            for c in self.connections
            if c.session is not None and (shard is None or c.session.shard_id == shard) and not c.ws.closed
        ]

    def drop(self, shard: int | None) -> int:
        conns = self._open(shard)
        for conn in conns:
            conn.live = False
            conn.abort()
        return len(conns)

    def send_reconnect(self, shard: int | None) -> int:
        conns = self._open(shard)
        for conn in conns:
            conn.live = False  # events from now on are buffered for the RESUME
            self._spawn(conn.send('{"op":7,"s":null,"t":null,"d":null}'))
        return len(conns)

    def invalidate(self, shard: int | None, *, resumable: bool) -> int:
        conns = self._open(shard)
        for conn in conns:
            conn.live = False
            if not resumable and conn.session is not None:
                conn.session.invalidated = True
            frame = '{"op":9,"s":null,"t":null,"d":%s}' % ("true" if resumable else "false")
            self._spawn(conn.send(frame))
        return len(conns)

    def silence(self, shard: int | None, *, enabled: bool) -> int:
        if enabled:
            conns = self._open(shard)
            for conn in conns:
                conn.silent = True
            return len(conns)
        conns = [c for c in self.connections if c.silent and (shard is None or c.shard_id == shard)]
        for conn in conns:
            conn.silent = False
            if conn.session is not None and conn.live:
                conn.live = False  # deliver what was held back, in order, then go live again
                self._spawn(self._catch_up(conn, conn.session, conn.sent_seq))
        return len(conns)

    # -- shutdown ----------------------------------------------------------------------------------
    async def close_all(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"emulator shutting down")
        for task in list(self._tasks):
            task.cancel()

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
