"""Channel webhooks: discord.py's Webhook, a bot-made webhook, and Alertmanager 0.25's Discord notifier."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import discord
import pytest
from discord.ext import commands
from processes import Children, child_env
from support import require_binary

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator

ALERTS = DEMO.alerts_channel_id


@pytest.mark.asyncio
async def test_webhook_urls_with_and_without_version(emulator: Emulator) -> None:
    hook_id, token, url = emulator.create_webhook(ALERTS, "alertmanager")
    assert url == f"{emulator.url}/api/webhooks/{hook_id}/{token}"
    embed = {"title": "[FIRING:1] CometDown", "description": "down", "color": 10038562}
    body = {"content": "", "embeds": [embed]}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body) as response:
            assert response.status == 204  # like Discord without ?wait=true
        versioned = f"{emulator.api_base}/webhooks/{hook_id}/{token}?wait=true"
        async with http.post(versioned, json={"content": "resolved", "username": "AM"}) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "application/json"
            assert (await response.json())["webhook_id"] == str(hook_id)
        async with http.post(f"{emulator.url}/api/webhooks/{hook_id}/wrong-token", json=body) as response:
            assert response.status == 404 and (await response.json())["code"] == 10015
        async with http.post(url, json={"content": ""}) as response:
            assert response.status == 400 and (await response.json())["code"] == 50006
    posted = emulator.bot_messages(ALERTS)
    assert [(m.webhook_id, m.embeds[0]["title"] if m.embeds else m.content) for m in posted] == [
        (hook_id, "[FIRING:1] CometDown"),
        (hook_id, "resolved"),
    ]
    executions = emulator.requests_to("/webhooks/{webhook_id}/{webhook_token}")
    assert [r.status for r in executions] == [204, 200, 404, 400]


@pytest.mark.asyncio
async def test_discord_py_webhooks(emulator: Emulator, discord_bot: commands.Bot) -> None:
    channel = discord_bot.get_channel(ALERTS)
    assert isinstance(channel, discord.TextChannel)
    made = await channel.create_webhook(name="comet-alerts")
    sent = await made.send("from the bot's webhook", wait=True)
    assert sent.webhook_id == made.id
    hook_id, token, _ = emulator.create_webhook(ALERTS)
    async with aiohttp.ClientSession() as session:
        partial = discord.Webhook.partial(hook_id, token, session=session)  # from_url wants discord.com
        embed = discord.Embed(title="CometSlowResponses")
        msg = await partial.send(embed=embed, username="Alertmanager", wait=True)
        await msg.edit(content="edited")
    contents = [(m.content, [e.get("title") for e in m.embeds]) for m in emulator.bot_messages(ALERTS)]
    assert contents == [("from the bot's webhook", []), ("edited", ["CometSlowResponses"])]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_alertmanager_discord_notifier_posts_to_the_emulator(
    emulator: Emulator, tmp_path: Path, children: Children
) -> None:
    binary = require_binary("prometheus-alertmanager")
    _, _, url = emulator.create_webhook(ALERTS, "alertmanager")
    port = _free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: discord\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n- name: discord\n  discord_configs:\n  - webhook_url: {url}\n"
    )
    proc = await children.spawn(
        binary, f"--config.file={config}", f"--storage.path={tmp_path}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        env=child_env(), out=tmp_path / "alertmanager.out",
    )  # fmt: skip
    try:
        await proc.wait_for_line("Listening on", timeout=20)
        labels = {"alertname": "CometDown", "severity": "critical"}
        alert = [{"labels": labels, "annotations": {"summary": "down"}}]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/api/v2/alerts", json=alert) as response:
                assert response.status == 200
        await emulator.wait_for(lambda: bool(emulator.bot_messages(ALERTS)), timeout=20)
    finally:
        await proc.stop()
    [message] = emulator.bot_messages(ALERTS)
    [embed] = message.embeds
    assert "CometDown" in embed["title"] and embed["color"] == 0x992D22  # Alertmanager's firing red
    [request] = emulator.requests_to("/webhooks/{webhook_id}/{webhook_token}", "POST")
    assert request.status == 204 and set(request.json) >= {"content", "embeds"}  # AM 0.25's body
