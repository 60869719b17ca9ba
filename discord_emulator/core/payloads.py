"""Payloads built from the whole world (a guild with its channels and members, the application),
in exactly the JSON shapes discord.py reads (checked against discord.py 2.7's ``guild.py``,
``member.py``, ``message.py``, ``role.py`` and ``channel.py``)."""

from __future__ import annotations

from typing import Any

from discord_emulator.core.models import Guild, iso_now
from discord_emulator.core.state import WorldState


def guild_payload(guild: Guild) -> dict[str, Any]:
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": guild.preferred_locale,
        "system_channel_id": str(guild.system_channel_id) if guild.system_channel_id else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "features": ["COMMUNITY"],
        "roles": [r.payload() for r in guild.roles.values()],
        "emojis": [],
        "stickers": [],
        "max_members": 500000,
    }


def guild_create_payload(state: WorldState, guild: Guild, *, with_members: bool) -> dict[str, Any]:
    """GUILD_CREATE: ``member_count`` equals the members sent when the bot has the members intent,
    so discord.py sees the guild as chunked and does not request member chunks."""
    data = guild_payload(guild)
    if with_members:
        members = [m.payload(state.users[m.user_id]) for m in guild.members.values()]
    else:
        bot_member = guild.members.get(state.bot.id)
        members = [bot_member.payload(state.bot)] if bot_member else []
    channels = []
    for cid in guild.channel_ids:
        channel_data = state.channels[cid].payload()
        channel_data.pop("guild_id", None)
        channels.append(channel_data)
    bot_member = guild.members.get(state.bot.id)
    data.update(
        unavailable=False,
        member_count=len(guild.members),
        large=len(guild.members) >= 250,
        joined_at=bot_member.joined_at if bot_member else iso_now(),
        members=members,
        channels=channels,
        threads=[],
        voice_states=[],
        presences=[],
        stage_instances=[],
        guild_scheduled_events=[],
        soundboard_sounds=[],
    )
    return data


def application_payload(state: WorldState) -> dict[str, Any]:
    owner_id = state.application_owner_id or state.bot.id
    owner = state.users.get(owner_id) or state.bot
    return {
        "id": str(state.application_id),
        "name": state.bot.username,
        "description": "C.O.M.E.T. (local Discord emulator)",
        "icon": None,
        "rpc_origins": [],
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": owner.payload(),
        "team": None,
        "verify_key": "0" * 64,
        "flags": (1 << 12) | (1 << 14) | (1 << 18),  # members, presence(limited), message content intents
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "approximate_guild_count": len(state.guilds),
        "bot": state.bot.payload(),
    }
