"""The gateway's side of a bad day (``discord_emulator.faults.FaultInjector`` calls these): cut a
socket, ask for a reconnect, invalidate a session, silence a connection. Each acts right away on the
open connections of one shard (``None``: every shard) and returns how many it touched. A connection
stops being live first, so the events of the meantime are buffered for the RESUME that follows."""

from __future__ import annotations

from discord_emulator.transports.gateway.delivery import GatewayDelivery
from discord_emulator.transports.gateway.sessions import GatewayConnection


class GatewayFaults(GatewayDelivery):
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
