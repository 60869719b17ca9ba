"""What a test reads from the emulator: the messages users see (``BotMessage``), waiting until a
condition holds (``wait_for``, ``wait_for_reply``), the gateway's sessions and the request record.
``Observing`` is mixed into ``Emulator``; it holds the pending waits and nothing else."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from discord_emulator.core.models import Channel, StoredMessage
from discord_emulator.core.record import RecordedRequest, select

if TYPE_CHECKING:
    from discord_emulator.core.world import World
    from discord_emulator.transports.gateway import Gateway, GatewayConnection, GatewaySession


@dataclass(frozen=True, slots=True)
class BotMessage:
    """A message as users see it: sent by the bot (incl. interaction responses and followups, edits
    applied) or through a channel webhook."""

    id: int
    channel_id: int
    content: str
    embeds: list[dict[str, Any]]
    files: list[tuple[str, bytes]]
    ephemeral: bool
    reference_id: int | None
    interaction_id: int | None
    webhook_id: int | None
    author_id: int
    components: list[dict[str, Any]]
    edited: bool
    loading: bool

    @classmethod
    def of(cls, message: StoredMessage) -> BotMessage:
        payload = message.payload
        reference = payload.get("message_reference")
        return cls(
            id=message.id,
            channel_id=message.channel_id,
            content=payload.get("content", ""),
            embeds=list(payload.get("embeds", [])),
            files=list(message.files),
            ephemeral=message.ephemeral,
            reference_id=int(reference["message_id"]) if reference else None,
            interaction_id=message.interaction_id,
            webhook_id=message.webhook_id,
            author_id=message.author_id,
            components=list(payload.get("components", [])),
            edited=payload.get("edited_timestamp") is not None,
            loading=message.loading,
        )

    @property
    def text(self) -> str:
        """Content plus embed titles/descriptions/fields: everything a user can read."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for fld in embed.get("fields") or []:
                parts += [fld.get("name") or "", fld.get("value") or ""]
            parts.append((embed.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


def _reply_floor(channel: Channel, after: Any) -> tuple[int | None, int]:
    """(interaction id, message id) that a reply to ``after`` must follow; see ``wait_for_reply``."""
    if isinstance(after, dict) and "token" in after and "application_id" in after:
        return int(after["id"]), 0
    if isinstance(after, dict):
        return None, int(after["id"])
    if isinstance(after, int):
        return None, after
    if after is None:
        return None, channel.last_message_id or 0
    return None, int(after.id)


class Observing:
    """The observation half of ``Emulator``: reads its world, gateway and record."""

    if TYPE_CHECKING:  # provided by Emulator; declared here only so that mypy checks the uses
        world: World
        gateway: Gateway
        requests: deque[RecordedRequest]
        shard_count: int

        @property
        def url(self) -> str: ...

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    # -- the gateway and the record ----------------------------------------------------------------
    @property
    def sessions(self) -> list[GatewaySession]:
        return list(self.gateway.sessions.values())

    @property
    def connections(self) -> list[GatewayConnection]:
        return list(self.gateway.connections)

    @property
    def identify_count(self) -> int:
        return self.gateway.identify_count

    @property
    def resume_count(self) -> int:
        return self.gateway.resume_count

    def requests_to(self, route: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        """Recorded REST calls to a templated route (or concrete path) and/or method."""
        return select(self.requests, route=route, method=method)

    # -- waiting -----------------------------------------------------------------------------------
    def notify(self) -> None:
        """Re-check every ``wait_for`` predicate (called on every state change)."""
        if not self._waiters:
            return
        for predicate, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                ok = predicate()
            except Exception as exc:  # surface predicate bugs to the waiting test
                fut.set_exception(exc)
                continue
            if ok:
                fut.set_result(None)

    def _cancel_waiters(self) -> None:
        """On stop: nothing will change any more, so no pending wait can succeed."""
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` is true. Re-checked on every emulator state change (REST call,
        gateway frame, session change) and, for conditions on the bot's side (a listener's list, a
        cache), every 50 ms. Raises ``TimeoutError``."""
        if predicate():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        deadline = loop.time() + timeout
        try:
            while not fut.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"emulator: condition not met within {timeout}s")
                await asyncio.wait({fut}, timeout=min(remaining, 0.05))
                if not fut.done() and predicate():
                    return
            fut.result()
        finally:
            self._waiters.remove(entry)
            if not fut.done():
                fut.cancel()

    # -- messages ----------------------------------------------------------------------------------
    def bot_messages(self, channel_id: int) -> list[BotMessage]:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            return []
        bot_id = self.world.bot.id
        return [
            BotMessage.of(m)
            for m in channel.messages.values()
            if m.author_id == bot_id or m.webhook_id is not None
        ]

    def messages(self, channel_id: int) -> list[StoredMessage]:
        """Every message of a channel (users' and bot's), oldest first."""
        channel = self.world.channels.get(channel_id)
        return list(channel.messages.values()) if channel else []

    async def wait_for_reply(
        self,
        channel_id: int,
        *,
        after: Any = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the contract's signature)
    ) -> BotMessage:
        """The first bot message in ``channel_id`` answering ``after``.

        ``after``: a message dict / id (first bot message newer than it), an interaction dict (its
        response or a followup, once no longer "thinking…"), or ``None`` (newer than anything now).
        """
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        bot_id = self.world.bot.id
        interaction_id, after_id = _reply_floor(channel, after)
        found: list[StoredMessage] = []

        def check() -> bool:
            candidate: StoredMessage | None = None
            floor = interaction_id if interaction_id is not None else after_id
            for message in reversed(channel.messages.values()):
                if message.id <= floor:  # responses are always newer than what they answer
                    break
                if message.loading:
                    continue
                if interaction_id is not None:
                    if message.interaction_id == interaction_id:
                        candidate = message
                elif message.author_id == bot_id or message.webhook_id is not None:
                    candidate = message
            if candidate is None:
                return False
            found.append(candidate)
            return True

        await self.wait_for(check, timeout)
        return BotMessage.of(found[-1])

    # -- summaries (control API, debugging) --------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "shard_count": self.shard_count,
            "guilds": [
                {
                    "id": str(g.id),
                    "name": g.name,
                    "member_count": len(g.members),
                    "channels": [{"id": str(c), "name": self.world.channels[c].name} for c in g.channel_ids],
                    "roles": [{"id": str(r.id), "name": r.name} for r in g.roles.values()],
                }
                for g in self.world.guilds.values()
            ],
            "sessions": self.gateway.describe(),
            "connections": len(self.gateway.connections),
            "identify_count": self.identify_count,
            "resume_count": self.resume_count,
            "requests_recorded": len(self.requests),
            "time": time.time(),
        }
