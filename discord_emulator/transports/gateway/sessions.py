"""A gateway session and a connection: the session outlives its sockets (that is what RESUME relies
on), so it owns the sequence numbers and the replay buffer; a connection is one socket and only
writes frames."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


def shard_for(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count if shard_count > 1 else 0


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
        """The next dispatch frame (op 0) of ``event``, numbered and kept for a RESUME's replay."""
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
