"""The offline demo's Discord server: "hololive Fan Server (HFS)" with its roles, channels and members.

The emulator seeds only what its caller asks for; the bot's demo (``comet run`` without a token), the
ops stack and the tests seed this guild into it. Ids are fixed, realistic snowflakes so ``DEMO`` is
importable without an emulator and a test names a channel or member without looking it up.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Mapping
from dataclasses import dataclass

from discord_emulator.core.models import Guild, Perm, snowflake_at
from discord_emulator.core.state import BOT_USER_ID
from discord_emulator.core.world import World

BOT_NAME = "C.O.M.E.T."


@dataclass(frozen=True)
class DemoIds:
    """Ids of the fan-server guild. Bot, guild and #general keep the classic test ids (123456789,
    987654321, 555666777) that discord.py test environments use, so examples read the same."""

    bot_user_id: int
    application_id: int
    guild_id: int
    general_channel_id: int
    oshi_talk_channel_id: int
    bot_commands_channel_id: int
    mod_log_channel_id: int
    alerts_channel_id: int
    owner_id: int
    moderator_id: int
    member_ids: tuple[int, ...]
    everyone_role_id: int
    moderator_role_id: int
    member_role_id: int
    bot_role_id: int
    talent_role_ids: Mapping[str, int]

    @property
    def user_ids(self) -> tuple[int, ...]:
        """Every human in the demo guild: owner, moderator, members."""
        return (self.owner_id, self.moderator_id, *self.member_ids)


def _demo_ids() -> DemoIds:
    # Fixed, realistic snowflakes (2023-04-01T00:00Z + n) so DEMO is importable without an emulator.
    base_ms = 1_680_307_200_000
    counter = itertools.count(1)

    def next_id() -> int:
        return snowflake_at(base_ms + next(counter) * 1000)

    talents = ("Pekora", "Marine", "Suisei", "Miko", "Korone")
    return DemoIds(
        bot_user_id=BOT_USER_ID,
        application_id=BOT_USER_ID,
        guild_id=987654321,
        general_channel_id=555666777,
        oshi_talk_channel_id=next_id(),
        bot_commands_channel_id=next_id(),
        mod_log_channel_id=next_id(),
        alerts_channel_id=next_id(),
        owner_id=next_id(),
        moderator_id=next_id(),
        member_ids=tuple(next_id() for _ in range(8)),
        everyone_role_id=987654321,
        moderator_role_id=next_id(),
        member_role_id=next_id(),
        bot_role_id=next_id(),
        talent_role_ids=types.MappingProxyType({name: next_id() for name in talents}),
    )


DEMO = _demo_ids()

_DEMO_MEMBER_NAMES = (
    "nousagi_fan",
    "houshou_pirate",
    "hoshiyomi",
    "35p_elite",
    "koronesuki",
    "kenzoku",
    "watamate",
    "fubuki_friend",
)


def seed_fan_server(world: World, demo: DemoIds = DEMO) -> Guild:
    """The fan server: channels, roles (Moderator, Member, talent roles), owner, moderator, members.

    The bot is renamed C.O.M.E.T. and the guild owner owns the application (``!debug`` is theirs)."""
    world.bot.username = BOT_NAME
    owner = world.add_user(demo.owner_id, "hfs_owner")
    moderator = world.add_user(demo.moderator_id, "mod_fubuki")
    for uid, name in zip(demo.member_ids, _DEMO_MEMBER_NAMES, strict=False):
        world.add_user(uid, name)
    guild = Guild(id=demo.guild_id, name="hololive Fan Server (HFS)", owner_id=owner.id)
    world.guilds[guild.id] = guild
    gid = guild.id
    world.add_role(gid, "@everyone", permissions=Perm.EVERYONE, role_id=demo.everyone_role_id, position=0)
    world.add_role(gid, "Member", permissions=Perm.EVERYONE, role_id=demo.member_role_id, position=1)
    colors = {
        "Pekora": 0x7EC5FF,
        "Marine": 0xB7213C,
        "Suisei": 0x4A7BD1,
        "Miko": 0xFF6FA8,
        "Korone": 0xE6A23C,
    }
    for position, (name, rid) in enumerate(demo.talent_role_ids.items(), start=2):
        world.add_role(gid, name, permissions=0, role_id=rid, position=position, color=colors[name])
    world.add_role(
        gid,
        "Moderator",
        permissions=Perm.EVERYONE | Perm.MODERATOR,
        role_id=demo.moderator_role_id,
        position=10,
        hoist=True,
        color=0x2ECC71,
    )
    world.add_role(
        gid, world.bot.username, permissions=Perm.BOT, role_id=demo.bot_role_id, position=11, managed=True
    )
    world.add_channel(gid, "general", channel_id=demo.general_channel_id, topic="雑談")
    world.add_channel(gid, "oshi-talk", channel_id=demo.oshi_talk_channel_id, topic="推しの話")
    world.add_channel(gid, "bot-commands", channel_id=demo.bot_commands_channel_id)
    world.add_channel(gid, "mod-log", channel_id=demo.mod_log_channel_id)
    world.add_channel(gid, "alerts", channel_id=demo.alerts_channel_id)
    guild.system_channel_id = demo.general_channel_id
    world.join(gid, owner.id, roles=[demo.member_role_id])
    world.join(gid, moderator.id, roles=[demo.member_role_id, demo.moderator_role_id])
    talents = list(demo.talent_role_ids.values())
    for index, uid in enumerate(demo.member_ids):
        world.join(gid, uid, roles=[demo.member_role_id, talents[index % len(talents)]])
    world.join(gid, world.bot.id, roles=[demo.bot_role_id])
    world.application_owner_id = owner.id
    return guild


# For ``python -m discord_emulator --seed ...`` in another process.
FAN_SERVER_SEED = f"{__name__}:{seed_fan_server.__name__}"
