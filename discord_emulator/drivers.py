"""Acting as Discord users: a member sends a message, reacts, runs a slash command, types into an
autocompleted option, clicks a component, opens a DM. ``ActingAsUsers`` is mixed into ``Emulator``;
each helper refuses what Discord's client would not let the user do, then goes through the world
like a real user's action would, so the bot receives the same events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from discord_emulator.core import messages as msgs
from discord_emulator.core.interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    InteractionRecord,
    build_interaction,
)
from discord_emulator.core.models import User

if TYPE_CHECKING:
    from discord_emulator.core.world import World


class ActingAsUsers:
    """The user-driving half of ``Emulator``: stateless, it acts on the Emulator's world."""

    if TYPE_CHECKING:  # provided by Emulator; declared here only so that mypy checks the uses
        world: World

        @property
        def url(self) -> str: ...

        def notify(self) -> None: ...

    def _user(self, user_id: int) -> User:
        user = self.world.users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}")
        return user

    def _check_can_talk(self, channel_id: int, author_id: int) -> None:
        """Discord refuses messages and commands from non-members and from timed-out members."""
        guild = self.world.guild_of(channel_id)
        if guild is None:
            return
        if author_id not in guild.members:
            raise ValueError(f"user {author_id} is not a member of guild {guild.id}")
        if self.world.is_timed_out(guild, author_id):
            raise PermissionError(f"user {author_id} is timed out in guild {guild.id}")

    # -- messages, reactions, DMs ------------------------------------------------------------------
    async def send_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        embeds: list[dict[str, Any]] | None = None,
        files: Iterable[tuple[str, bytes]] = (),
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A member (or DM user) sends a message: stored, then MESSAGE_CREATE. Returns the message."""
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        author = self._user(author_id)
        self._check_can_talk(channel_id, author_id)
        file_list = list(files)
        body: dict[str, Any] = {"content": content, "embeds": embeds or []}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to, "channel_id": channel_id}
        attachments = msgs.attachment_payloads(self.world, self.url, channel_id, file_list)
        message = msgs.build_message(
            self.world, channel, author, body, attachments=attachments, files=file_list
        )
        await self.world.post_message(message)
        self.notify()
        return message.payload

    async def add_reaction(self, channel_id: int, message_id: int, user_id: int, emoji: str) -> None:
        """A member reacts (MESSAGE_REACTION_ADD). ``emoji``: unicode, or ``name:id`` for custom."""
        channel = self.world.channels[channel_id]
        message = channel.messages[message_id]
        self._user(user_id)
        if not msgs.is_reaction_emoji(emoji):  # what Discord's client lets a member pick
            raise ValueError(f"{emoji!r} is not an emoji (a unicode emoji, or name:id for a custom one)")
        await self.world.react(channel, message, emoji, user_id)
        self.notify()

    def open_dm(self, user_id: int) -> int:
        """The DM channel id between the bot and ``user_id`` (users DM the bot through it)."""
        self._user(user_id)
        return self.world.open_dm(user_id).id

    # -- interactions ------------------------------------------------------------------------------
    async def _interact(self, record: InteractionRecord) -> None:
        await self.world.interaction_created(record)
        self.notify()

    def _interaction_record(
        self, channel_id: int, author_id: int, name: str, **fields: Any
    ) -> InteractionRecord:
        """An interaction by ``author_id`` in ``channel_id``; ``fields``: build_interaction's keywords."""
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        user = self._user(author_id)
        self._check_can_talk(channel_id, author_id)
        return build_interaction(
            self.world, channel, user, name, command_ids=self.world.command_ids, **fields
        )

    async def send_slash(
        self,
        channel_id: int,
        author_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        *,
        guild_command: bool | None = None,
        locale: str = "ja",
    ) -> dict[str, Any]:
        """A member runs ``/name [subcommand] options``: INTERACTION_CREATE type 2. Returns the
        interaction payload (pass it as ``after=`` to ``wait_for_reply``). ``subcommand`` may be
        ``"group sub"``. ``guild_command`` forces/omits ``data.guild_id`` (default: from the sync)."""
        record = self._interaction_record(
            channel_id,
            author_id,
            name,
            interaction_type=APPLICATION_COMMAND,
            options=options,
            subcommand=subcommand,
            guild_command=guild_command,
            locale=locale,
        )
        await self._interact(record)
        return record.payload

    async def send_autocomplete(
        self,
        channel_id: int,
        author_id: int,
        name: str,
        *,
        focused: str,
        value: Any = "",
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        guild_command: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Type into option ``focused``: INTERACTION_CREATE type 4; returns the bot's choices
        (callback type 8)."""
        all_options = dict(options or {})
        all_options[focused] = value
        record = self._interaction_record(
            channel_id,
            author_id,
            name,
            interaction_type=AUTOCOMPLETE,
            options=all_options,
            subcommand=subcommand,
            focused=focused,
            guild_command=guild_command,
        )
        record.choices = asyncio.get_running_loop().create_future()
        await self._interact(record)
        try:
            return await asyncio.wait_for(record.choices, timeout)
        except TimeoutError:
            raise TimeoutError(f"emulator: no autocomplete answer for /{name} within {timeout}s") from None

    async def click(
        self,
        channel_id: int,
        message_id: int,
        author_id: int,
        custom_id: str,
        *,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """A member clicks a button (or picks ``values`` in a string select) on a bot message:
        INTERACTION_CREATE type 3. Returns the interaction (``wait_for_reply(after=...)`` works;
        an UPDATE_MESSAGE answer edits the clicked message in place)."""
        channel = self.world.channels.get(channel_id)
        stored = channel.messages.get(message_id) if channel else None
        if stored is None:
            raise KeyError(f"unknown message {message_id} in channel {channel_id}")
        component: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if values is not None:
            component.update(component_type=3, values=list(values))
        record = self._interaction_record(
            channel_id,
            author_id,
            custom_id,
            interaction_type=MESSAGE_COMPONENT,
            options=None,
            subcommand=None,
            component=component,
            message=stored.payload,
        )
        await self._interact(record)
        return record.payload
