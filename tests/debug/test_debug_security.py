"""Security of the owner tools, end to end: the real CometBot and discord.py on the emulator.

* every owner command refuses non-owners (reply, comet_debug_invocations_total{outcome=denied},
  an audit line) and does nothing;
* ``debug`` refuses even the owner when debug mode is off;
* a battery of token-leak attempts through ``debug`` leaves every form of the token out of every
  REST body the emulator recorded and out of the log files;
* runaway code is stopped by the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from pathlib import Path

import pytest
from debug_support import TOKEN, leak_forms
from harness import CometFactory
from waiting import wait_until

from comet.core.demo_guild import DEMO
from instrumentation.logging import remove_debug_logging, setup_debug_logging

#: Owner command lines and the label their refusals are counted under.
OWNER_COMMANDS = [
    ("debug bot.__dict__.setdefault('pwned', True)", "debug"),
    ("memory", "memory"),
    ("memory collect", "memory"),
    ("memory trace start", "memory"),
    ("tasks", "tasks"),
    ("tasks cancel 1", "tasks"),
    ("loglevel DEBUG", "loglevel"),
    ("timeit ping", "timeit"),
    ("reload ~", "reload"),
    ("reload watch on", "reload"),
    ("load comet.features.cogs.monitoring", "load"),
    ("unload comet.features.cogs.debug", "unload"),
]

NOT_OWNER = {
    "ja": "🚫 このコマンドはボットのオーナー専用です。",
    "en": "🚫 This command is for the bot owner only.",
}
DISABLED = {"ja": "デバッグモードが無効です", "en": "Debug mode is disabled"}


@pytest.mark.asyncio
async def test_non_owners_are_refused_for_every_owner_command(comet_factory: CometFactory, caplog) -> None:
    h = await comet_factory(debug_mode=True)
    caplog.set_level(logging.INFO, logger="comet.audit")
    root_level = logging.getLogger().level
    tracing = tracemalloc.is_tracing()  # (PYTHONTRACEMALLOC, or another tool, may have started it)
    intruders = [DEMO.moderator_id, DEMO.member_ids[0]]  # a moderator is not an owner either

    for line, label in OWNER_COMMANDS:
        for intruder in intruders:
            before = h.invocations(label, "denied")
            caplog.clear()
            reply = await h.ask(f"!{line}", author=intruder)
            assert reply.content == NOT_OWNER["ja"], line
            assert h.invocations(label, "denied") == before + 1, line
            audit = [r.getMessage() for r in caplog.records if r.name == "comet.audit"]
            assert len(audit) == 1, (line, audit)
            assert f"command={label} outcome=denied user={intruder}" in audit[0]

    # The help command runs every command's checks to filter its list: that is not an attempt.
    denied = {label: h.invocations(label, "denied") for _, label in OWNER_COMMANDS}
    help_page = await h.ask("!help", author=DEMO.member_ids[2])
    assert "debug" not in help_page.content and "timeit" not in help_page.content
    assert {label: h.invocations(label, "denied") for _, label in OWNER_COMMANDS} == denied

    # Nothing happened.
    assert not hasattr(h.bot, "pwned")
    assert logging.getLogger().level == root_level
    assert tracemalloc.is_tracing() == tracing  # "memory trace start" was refused
    assert {"comet.features.cogs.debug", "comet.features.cogs.reload"} <= set(h.bot.extensions)
    assert "comet.features.cogs.monitoring" not in h.bot.extensions
    assert not h.bot.get_cog("Reload").reloader.watching
    for _, label in OWNER_COMMANDS:
        assert h.invocations(label, "ok") == 0
    assert h.reloads("reload", "success") == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_debug_mode_off_refuses_debug_even_for_the_owner(
    comet_factory: CometFactory, caplog, locale: str
) -> None:
    h = await comet_factory(debug_mode=False, locale=locale)
    caplog.set_level(logging.INFO, logger="comet.audit")

    reply = await h.ask("!debug bot.__dict__.setdefault('pwned', True)")
    assert reply.content == DISABLED[locale]
    assert not hasattr(h.bot, "pwned")
    assert h.invocations("debug", "disabled") == 1
    assert h.invocations("debug", "ok") == 0
    assert any(
        f"command=debug outcome=disabled user={DEMO.owner_id}" in r.getMessage()
        for r in caplog.records
        if r.name == "comet.audit"
    )
    # The file watcher is debug-mode only too; reload itself is not gated by debug mode.
    assert (await h.ask("!reload watch on")).content == DISABLED[locale]
    assert not h.bot.get_cog("Reload").reloader.watching
    report = await h.ask("!reload debug")
    assert report.content.startswith("✅") and "comet.features.cogs.debug" in report.content
    # Non-owners are refused before the mode is even looked at.
    assert (await h.ask("!debug 1", author=DEMO.member_ids[1])).content == NOT_OWNER[locale]
    assert h.invocations("debug", "disabled") == 1


#: Python expressions computing each form of the token inside the bot (never typed by the user).
FORM_EXPRESSIONS = [
    "T",
    "T[::-1]",
    "base64.b64encode(T.encode()).decode()",
    "base64.b64encode(T.encode()).decode().rstrip('=')",
    "base64.urlsafe_b64encode(T.encode()).decode()",
    "base64.urlsafe_b64encode(T.encode()).decode().rstrip('=')",
    "T.encode().hex()",
    "','.join(T)",
    "' '.join(T)",
    "chr(10).join(T)",
    "', '.join(T)",
    "T.split('.')[-1]",
]

PRELUDE = "import base64, io\nT = bot.http.token\n"


def every_vehicle(expression: str, hook_id: int, hook_token: str) -> str:
    """One debug run leaking ``expression`` by every road: print, send, embed, file, edit, webhook, result."""
    return (
        PRELUDE
        + f"s = {expression}\n"
        + "print(s)\n"
        + "await channel.send(s)\n"
        + "await channel.send(embed=discord.Embed(title=s[:200], description=s))\n"
        + "name = s if len(s) <= 100 and chr(10) not in s else 'leak'\n"
        + "await channel.send(file=discord.File(io.BytesIO(s.encode()), filename=name + '.txt'))\n"
        + "m = await channel.send('edit me')\n"
        + "await m.edit(content=s)\n"
        + f"await discord.Webhook.partial({hook_id}, {hook_token!r}, client=bot).send(s)\n"
        + "s"
    )


SLASH_LEAK = (
    PRELUDE
    + "FORMS = [{forms}]\n"
    + "async def leak(interaction: discord.Interaction) -> None:\n"
    + "    await interaction.response.send_message(' | '.join(FORMS))\n"
    + "    for s in FORMS:\n"
    + "        f = discord.File(io.BytesIO(s.encode()), filename='f.txt')\n"
    + "        await interaction.followup.send(s, file=f)\n"
    + "    msg = await interaction.original_response()\n"
    + "    await msg.edit(content=FORMS[0])\n"
    + "bot.tree.add_command(discord.app_commands.Command(name='leak', description='x', callback=leak))\n"
    + "'registered'"
)


@pytest.mark.asyncio
async def test_token_leak_battery_leaves_no_form_of_the_token_in_rest_bodies_or_logs(
    comet_factory: CometFactory, tmp_path: Path
) -> None:
    h = await comet_factory(debug_mode=True)
    log_path = tmp_path / "logs" / "debug.log"
    levels = {name: logging.getLogger(name).level for name in ("", "discord")}
    # discord.* at DEBUG on purpose: discord.http then logs every request body too.
    setup_debug_logging(
        log_path,
        console_level="CRITICAL",
        discord_level="DEBUG",
        scrubber=h.bot.telemetry.scrubber,
        metrics=h.metrics,
    )
    try:
        forms = leak_forms(TOKEN)
        hook_id, hook_token, _ = h.emulator.create_webhook(DEMO.general_channel_id, name="leaks")
        # Each road, for each form: 6 messages per run (send, embed, file, edited, webhook, and the
        # command's own reply: printed output and result on one page).
        for expression in FORM_EXPRESSIONS:
            replies = await h.ask_many(f"!debug {every_vehicle(expression, hook_id, hook_token)}", 6)
            assert "[REDACTED]" in replies[-1].content, (expression, replies[-1].content)
            error = await h.ask(f"!debug {PRELUDE}raise ValueError({expression})")
            assert "ValueError: [REDACTED]" in error.content, error.content
        assert h.invocations("debug", "ok") == len(FORM_EXPRESSIONS)
        assert h.invocations("debug", "error") == len(FORM_EXPRESSIONS)

        # Interaction response, follow-ups with files, and an edit of the original response.
        registered = await h.ask(f"!debug {SLASH_LEAK.format(forms=', '.join(FORM_EXPRESSIONS))}")
        assert "registered" in registered.content
        interaction = await h.emulator.send_slash(DEMO.general_channel_id, DEMO.owner_id, "leak")

        def followups() -> list:
            prefix = f"/webhooks/{DEMO.application_id}/"
            return [r for r in h.emulator.requests if r.method == "POST" and r.path.startswith(prefix)]

        def original_edited() -> bool:
            return any(
                r.method == "PATCH" and r.path.endswith("/messages/@original") for r in h.emulator.requests
            )

        await wait_until(lambda: len(followups()) >= len(FORM_EXPRESSIONS) and original_edited(), timeout=10)
        answer = await h.emulator.wait_for_reply(DEMO.general_channel_id, after=interaction)
        assert "[REDACTED]" in answer.content
    finally:
        remove_debug_logging()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    # Not one REST body (nor query or audit reason) carries any form of the token ...
    assert len(h.emulator.requests) > 100
    redacted = 0
    for request in h.emulator.requests:
        redacted += request.body.count(b"[REDACTED]")
        for form in forms:
            assert form.encode() not in request.body, (form, request.method, request.path)
            assert form not in (request.reason or "") and form not in str(request.query)
    assert redacted >= len(FORM_EXPRESSIONS) * 8  # every road really carried the (scrubbed) token

    # ... and neither do the log files, which did log request bodies.
    logs = "".join(p.read_text(encoding="utf-8") for p in log_path.parent.glob("debug.log*"))
    assert "[REDACTED]" in logs
    for form in forms:
        assert form not in logs, form
    assert "command=debug outcome=ok" in logs and "command=debug outcome=error" in logs


@pytest.mark.asyncio
async def test_runaway_debug_is_stopped_by_the_timeout(comet_factory: CometFactory) -> None:
    h = await comet_factory(debug_mode=True, debug_timeout=0.5)

    # Two lines are printed before the first await, so they are captured before the timeout can
    # fire, however slowly the machine runs the loop afterwards.
    loop = await h.ask(
        "!debug\nprint('first')\nprint('second')\nn = 0\nwhile True:\n"
        "    n += 1\n    print(n)\n    await asyncio.sleep(0.01)"
    )
    assert "タイムアウト" in loop.content and "0.5" in loop.content
    assert loop.content.startswith("```\nfirst\nsecond\n")  # the output captured before the timeout
    sleeper = await h.ask("!debug await asyncio.sleep(3600)")
    assert "タイムアウト" in sleeper.content
    assert h.invocations("debug", "timeout") == 2

    # Code that swallows the cancellation: the command answers anyway and names the task.
    stubborn = await h.ask(
        "!debug\nbot.keep_going = True\nwhile bot.keep_going:\n"
        "    try:\n        await asyncio.sleep(0.01)\n    except asyncio.CancelledError:\n        pass"
    )
    assert "タイムアウト" in stubborn.content and "comet-debug-" in stubborn.content
    assert h.invocations("debug", "timeout") == 3
    assert (await h.ask("!debug 40 + 2")).content == "```\n結果: 42\n```"  # the bot still answers
    h.bot.keep_going = False
    stubborn_task = [t for t in asyncio.all_tasks() if t.get_name().startswith("comet-debug-")]
    await wait_until(lambda: all(t.done() for t in stubborn_task), timeout=5)


@pytest.mark.asyncio
async def test_owner_command_series_exist_before_any_attempt(comet_factory: CometFactory) -> None:  # type: ignore[no-untyped-def]
    # A dashboard shows 0 denied attempts rather than "no data"; the names come from the loaded cogs.
    from prometheus_client import generate_latest

    h = await comet_factory()
    text = generate_latest(h.bot.telemetry.metrics.registry).decode()
    for command in ("debug", "memory", "tasks", "loglevel", "timeit", "reload", "load", "unload"):
        for outcome in ("ok", "error", "timeout", "denied", "disabled"):
            assert f'comet_debug_invocations_total{{command="{command}",outcome="{outcome}"}} 0.0' in text
