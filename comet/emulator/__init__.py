"""A local Discord (REST + gateway websocket on 127.0.0.1) that the unmodified discord.py client logs
in to: tests, the offline demo and the benchmarks drive the real client through it.

    from comet.emulator import Emulator, DEMO
    from comet.emulator.client import fast_ready, start_client
    async with Emulator() as emu:
        bot = fast_ready(commands.Bot(command_prefix="!", intents=...))
        task = await start_client(bot, emu)          # point_discord_at + start + wait until ready
        msg = await emu.send_message(DEMO.general_channel_id, DEMO.member_ids[0], "!ping")
        reply = await emu.wait_for_reply(DEMO.general_channel_id, after=msg)

In pytest use the fixtures ``emulator`` and ``discord_bot`` (comet.emulator.pytest_plugin).
"""

from .record import RecordedRequest
from .server import BotMessage, Emulator
from .state import DEMO, DemoIds

__all__ = ["DEMO", "BotMessage", "DemoIds", "Emulator", "RecordedRequest"]
