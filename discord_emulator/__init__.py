"""A local Discord (REST + gateway websocket on 127.0.0.1) that the unmodified discord.py client logs
in to: tests, offline demos and benchmarks drive a real client through it. It knows nothing of the
bot it serves.

    from discord_emulator import Emulator
    from discord_emulator.seeds import EXAMPLE, seed_example_guild
    from discord_emulator.testing.client import fast_ready, start_client
    async with Emulator(seed=seed_example_guild) as emu:
        bot = fast_ready(commands.Bot(command_prefix="!", intents=...))
        task = await start_client(bot, emu)          # point_discord_at + start + wait until ready
        msg = await emu.send_message(EXAMPLE.general_channel_id, EXAMPLE.member_id, "!ping")
        reply = await emu.wait_for_reply(EXAMPLE.general_channel_id, after=msg)

Layout: ``core/`` is the world (data, validation, interactions, the request record), ``transports/``
serve it (REST, gateway websocket, control API), ``server.py`` composes them into the ``Emulator``
(acting as users in ``drivers.py``, what a test reads and waits for in ``observation.py``),
``testing/`` helps a discord.py test (client start-up, ``setup_test_environment``, a pytest plugin).
``python -m discord_emulator`` runs it standalone.
"""

from discord_emulator.core.record import RecordedRequest
from discord_emulator.observation import BotMessage
from discord_emulator.server import Emulator

__all__ = ["BotMessage", "Emulator", "RecordedRequest"]
