"""Gateway details: bad frames from a client, member queries (op 8), components, waiting."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator

GENERAL = DEMO.general_channel_id


async def _frames_until_close(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    frames = []
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            frames.append(json.loads(msg.data))
    return frames


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("frame", "close_code"),
    [
        ("not json", 4002),
        ('{"op": 99, "d": null}', 4001),
        ('{"op": 2, "d": {"token": ""}}', 4004),
        ('{"op": 2, "d": {"token": "t.o.k", "shard": [2, 2]}}', 4010),
        ('{"op": 2, "d": {"token": "t.o.k", "shard": ["a"]}}', 4010),
        ('{"op": 8, "d": {"guild_id": 1}}', 4003),
    ],
)
async def test_bad_gateway_frames_close_with_discords_codes(
    emulator: Emulator, frame: str, close_code: int
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(emulator.gateway_url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
        await ws.send_str('{"op": 1, "d": null}')
        assert await ws.receive_json() == {"op": 11, "d": None}
        await ws.send_str(frame)
        await _frames_until_close(ws)
        assert ws.close_code == close_code
    await emulator.wait_for(lambda: emulator.connections == [])  # the server side let go too


@pytest.mark.asyncio
async def test_resume_of_unknown_session_is_invalid(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(emulator.resume_gateway_url) as ws:
        await ws.receive_json()
        await ws.send_json({"op": 6, "d": {"token": "t", "session_id": "nope", "seq": 3}})
        assert await ws.receive_json() == {"op": 9, "s": None, "t": None, "d": False}


@pytest.mark.asyncio
async def test_member_query_over_the_gateway(emulator: Emulator, discord_bot: commands.Bot) -> None:
    guild = discord_bot.get_guild(DEMO.guild_id)
    assert guild is not None
    found = await guild.query_members("hou", limit=5)
    assert [m.name for m in found] == ["houshou_pirate"]
    by_id = await guild.query_members(user_ids=[DEMO.moderator_id])
    assert [m.id for m in by_id] == [DEMO.moderator_id]


@pytest.mark.asyncio
async def test_buttons_update_their_message(emulator: Emulator, discord_bot: commands.Bot) -> None:
    class Vote(discord.ui.View):
        votes = 0

        @discord.ui.button(label="+1", custom_id="vote:up")
        async def up(self, interaction: discord.Interaction, button: discord.ui.Button[Vote]) -> None:
            Vote.votes += 1
            await interaction.response.edit_message(content=f"votes: {Vote.votes}")

        @discord.ui.button(label="?", custom_id="vote:who")
        async def who(self, interaction: discord.Interaction, button: discord.ui.Button[Vote]) -> None:
            await interaction.response.send_message(f"{interaction.user.id} asked", ephemeral=True)

    channel = discord_bot.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("votes: 0", view=Vote(timeout=None))
    posted = emulator.bot_messages(GENERAL)[0]
    assert [c["custom_id"] for row in posted.components for c in row["components"]] == ["vote:up", "vote:who"]
    await emulator.click(GENERAL, sent.id, DEMO.member_ids[0], "vote:up")
    await emulator.wait_for(lambda: emulator.bot_messages(GENERAL)[0].content == "votes: 1")
    inter = await emulator.click(GENERAL, sent.id, DEMO.member_ids[1], "vote:who")
    reply = await emulator.wait_for_reply(GENERAL, after=inter)
    assert reply.ephemeral and reply.content == f"{DEMO.member_ids[1]} asked"


@pytest.mark.asyncio
async def test_wait_for_times_out_and_surfaces_predicate_errors(emulator: Emulator) -> None:
    with pytest.raises(TimeoutError):
        await emulator.wait_for(lambda: False, timeout=0.05)

    def broken() -> bool:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await emulator.wait_for(broken, timeout=1)
    with pytest.raises(TimeoutError):
        await emulator.wait_for_reply(GENERAL, timeout=0.05)


@pytest.mark.asyncio
async def test_a_heartbeat_is_acknowledged_a_round_trip_later_never_inline(emulator: Emulator) -> None:
    """discord.py stamps a beat's send time in its keep-alive thread after the loop wrote it; an ACK
    that arrives before that is measured against the previous beat and reads as a latency of a whole
    interval. So the emulator answers a beat after a simulated round trip (``heartbeat_ack_delay``),
    never inline. (How discord.py's latency then reads is measured in ``python -m bench emulator``:
    whether its thread wakes within the round trip is up to the machine's scheduler, not the code.)"""
    async with aiohttp.ClientSession() as http:
        # A round trip longer than this test: the ACK is still pending when the connection ends.
        emulator.gateway.heartbeat_ack_delay = 3600
        async with http.ws_connect(emulator.gateway_url) as ws:
            assert (await ws.receive_json())["op"] == 10
            await ws.send_str('{"op": 1, "d": null}')
            await ws.send_str('{"op": 99, "d": null}')  # handled right after the beat: closes (4001)
            frames = await _frames_until_close(ws)
            assert ws.close_code == 4001
        assert frames == []  # an inline ACK would have been written before the close
        # ... and once the round trip is over, the ACK does come.
        emulator.gateway.heartbeat_ack_delay = 0.05
        async with http.ws_connect(emulator.gateway_url) as ws:
            assert (await ws.receive_json())["op"] == 10
            await ws.send_str('{"op": 1, "d": null}')
            assert await ws.receive_json() == {"op": 11, "d": None}
    await emulator.wait_for(lambda: emulator.connections == [])
