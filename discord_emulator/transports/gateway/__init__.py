"""The gateway websocket: HELLO, IDENTIFY/READY/GUILD_CREATE, heartbeats, dispatch, RESUME and sharding.

Frames are plain TEXT JSON even though discord.py asks for ``compress=zlib-stream`` (it accepts both).
Every dispatched event gets the session's next sequence number and is kept in a bounded per-session
buffer, so a client that RESUMEs with its last ``seq`` gets the events it missed replayed, then RESUMED
— also for events sent while it was disconnected. A guild's events go to the session(s) of shard
``(guild_id >> 22) % shard_count``; DMs go to shard 0.

``sessions.py`` is a session and a connection, ``delivery.py`` what the gateway holds and how an
event reaches a session (the world's listener), ``protocol.py`` the socket protocol and
``faults.py`` the faults tests inject; ``Gateway`` is the two last ones over the shared delivery.
"""

from discord_emulator.transports.gateway.delivery import strip_content
from discord_emulator.transports.gateway.faults import GatewayFaults
from discord_emulator.transports.gateway.protocol import GatewayProtocol
from discord_emulator.transports.gateway.sessions import GatewayConnection, GatewaySession, shard_for


class Gateway(GatewayProtocol, GatewayFaults):
    """The gateway transport the Emulator serves: constructed as ``GatewayDelivery``."""


__all__ = ["Gateway", "GatewayConnection", "GatewaySession", "shard_for", "strip_content"]
