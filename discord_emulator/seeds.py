"""What a new world holds: the emulator starts with the bot's own user only, and a seed adds guilds.

``Emulator(seed=...)`` and ``python -m discord_emulator --seed ...`` take any callable that builds into
the world (for example an application's own demo guild, named as ``module:function``). The example
guild here is the small default of the standalone server and of ``setup_test_environment``: the
classic test ids (guild 987654321, #general 555666777, bot 123456789) and one member.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from discord_emulator.core.models import Guild, Perm, snowflake_at
from discord_emulator.core.state import BOT_USER_ID
from discord_emulator.core.world import World

Seed = Callable[[World], object]


@dataclass(frozen=True, slots=True)
class ExampleIds:
    bot_user_id: int
    guild_id: int
    general_channel_id: int
    owner_id: int
    member_id: int


# 2023-04-01T00:00Z plus a few seconds: realistic snowflakes, fixed so a test can name them.
EXAMPLE = ExampleIds(
    bot_user_id=BOT_USER_ID,
    guild_id=987654321,
    general_channel_id=555666777,
    owner_id=snowflake_at(1_680_307_201_000),
    member_id=snowflake_at(1_680_307_202_000),
)


def seed_example_guild(world: World) -> Guild:
    """One guild "Example Guild": #general, its owner (who also owns the application) and a member."""
    owner = world.add_user(EXAMPLE.owner_id, "example_owner")
    member = world.add_user(EXAMPLE.member_id, "example_member")
    guild = world.create_guild(
        "Example Guild",
        guild_id=EXAMPLE.guild_id,
        owner_id=owner.id,
        channels=(),
        everyone_permissions=Perm.EVERYONE,
    )
    world.add_channel(guild.id, "general", channel_id=EXAMPLE.general_channel_id)
    guild.system_channel_id = EXAMPLE.general_channel_id
    world.join(guild.id, member.id)
    world.application_owner_id = owner.id
    return guild


def seed_nothing(world: World) -> None:
    """No guild at all: the bot logs in and sees an empty guild list."""


NAMED_SEEDS: dict[str, Seed] = {"example": seed_example_guild, "none": seed_nothing}


def load_seed(name: str) -> Seed:
    """``example``, ``none`` or ``package.module:function``; ValueError says what is wrong."""
    if name in NAMED_SEEDS:
        return NAMED_SEEDS[name]
    module_name, sep, attribute = name.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"unknown seed {name!r}: use {', '.join(NAMED_SEEDS)} or module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"seed {name!r}: cannot import {module_name}: {exc}") from None
    seed = getattr(module, attribute, None)
    if not callable(seed):
        raise ValueError(f"seed {name!r}: {module_name} has no function {attribute}")
    return seed  # type: ignore[no-any-return]
