"""Shared pieces of the community tests (imported as ``community_support``; the bot comes from the
shared harness, ``tests/harness.py``, through the fixtures in conftest.py)."""

from __future__ import annotations

from comet.core.demo_guild import DEMO

EXTENSIONS = (
    "comet.features.cogs.community",
    "comet.features.cogs.moderation",
    "comet.features.cogs.omikuji",
)
CHANNEL = DEMO.general_channel_id
MOD_LOG = DEMO.mod_log_channel_id
MOD = DEMO.moderator_id
OWNER = DEMO.owner_id
MEMBERS = DEMO.member_ids
