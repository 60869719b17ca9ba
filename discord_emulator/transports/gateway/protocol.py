"""The gateway's socket protocol, as a client sees it: HELLO on connect, heartbeats and their ACKs,
IDENTIFY (READY, then the shard's guilds as GUILD_CREATE), RESUME (the missed events, then RESUMED)
and member requests (GUILD_MEMBERS_CHUNK). A bad frame or token closes the socket with the code that
tells discord.py what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from discord_emulator.core.encoding import dumps
from discord_emulator.core.events import INTENT_GUILD_MEMBERS
from discord_emulator.core.payloads import guild_create_payload
from discord_emulator.transports.gateway.delivery import GatewayDelivery
from discord_emulator.transports.gateway.sessions import GatewayConnection, GatewaySession, shard_for

CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTH_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010

_HEARTBEAT_ACK = '{"op":11,"d":null}'


class GatewayProtocol(GatewayDelivery):
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
            session.disconnected_at = time.monotonic()  # the resume window starts now
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

    # -- IDENTIFY ----------------------------------------------------------------------------------
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
        session.frame("READY", dumps(self._ready_payload(session, [g.id for g in guilds])))
        with_members = session.has_intent(INTENT_GUILD_MEMBERS)
        for guild in guilds:
            session.frame(
                "GUILD_CREATE", dumps(guild_create_payload(self.world, guild, with_members=with_members))
            )
        await self._catch_up(conn, session, 0)

    def _ready_payload(self, session: GatewaySession, guild_ids: list[int]) -> dict[str, Any]:
        """READY lists the shard's guilds as unavailable; each arrives next as GUILD_CREATE."""
        ready: dict[str, Any] = {
            "v": 10,
            "user": dict(self.world.bot.payload(), verified=True, mfa_enabled=False, flags=0),
            "guilds": [{"id": str(gid), "unavailable": True} for gid in guild_ids],
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
        if session.sharded:
            ready["shard"] = [session.shard_id, session.shard_count]
        return ready

    # -- RESUME ------------------------------------------------------------------------------------
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

    # -- REQUEST_GUILD_MEMBERS ---------------------------------------------------------------------
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
