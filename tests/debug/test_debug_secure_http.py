"""The HTTP-layer scrubber with discord.py's real HTTP client and webhook adapter.

A small recording server stands in for Discord's REST API; every body and the audit-log header it
received are searched for each leak form of the token.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import discord
import pytest
import pytest_asyncio
from debug_support import TOKEN, leak_forms
from discord.http import Route, handle_message_parameters

from comet.core.secure_http import install_http_scrubber, installed_scrubber, uninstall_http_scrubber
from instrumentation.redact import Scrubber

SECRET = "extra-configured-secret-9f8e7d"


def assert_clean(blob: bytes, secrets: list[str]) -> None:
    for secret in secrets:
        for form in leak_forms(secret) if secret.count(".") == 2 else [secret]:
            assert form.encode() not in blob, f"leaked form {form!r}"


@pytest_asyncio.fixture
async def client(rest_recorder: object) -> AsyncIterator[discord.Client]:
    bot = discord.Client(intents=discord.Intents.none())
    install_http_scrubber(bot, Scrubber([SECRET]))
    await bot.http.static_login(TOKEN)
    try:
        yield bot
    finally:
        uninstall_http_scrubber(bot)
        await bot.http.close()


@pytest.mark.asyncio
async def test_json_bodies_lose_every_token_form_and_extra_secrets(client, rest_recorder) -> None:
    forms = leak_forms(TOKEN)
    content = " | ".join(forms)
    embed = discord.Embed(title=f"t {TOKEN}", description=f"nested {SECRET}")
    embed.add_field(name="f", value="\n".join(TOKEN))
    with handle_message_parameters(content=content, embed=embed) as params:
        await client.http.send_message(555, params=params)

    body = rest_recorder.requests[-1].body
    assert_clean(body, [TOKEN, SECRET])
    payload = json.loads(body)
    assert payload["content"].count("[REDACTED]") == len(forms)
    assert "[REDACTED]" in payload["embeds"][0]["description"]


@pytest.mark.asyncio
async def test_the_live_token_is_scrubbed_even_when_the_scrubber_did_not_know_it(rest_recorder) -> None:
    bot = discord.Client(intents=discord.Intents.none())
    scrubber = Scrubber()  # no secrets configured at all
    install_http_scrubber(bot, scrubber)
    try:
        await bot.http.static_login(TOKEN)
        with handle_message_parameters(content=f"token={TOKEN[::-1]}") as params:
            await bot.http.send_message(1, params=params)
    finally:
        uninstall_http_scrubber(bot)
        await bot.http.close()
    assert TOKEN[::-1].encode() not in rest_recorder.requests[-1].body
    assert scrubber  # the token was added on first use


@pytest.mark.asyncio
async def test_files_contents_names_and_payload_json_are_scrubbed(client, rest_recorder) -> None:
    data = f"line one\nthe token: {TOKEN}\nhex {TOKEN.encode().hex()}\n".encode()
    file = discord.File(io.BytesIO(data), filename=f"{TOKEN.split('.')[-1]}.txt", description=SECRET)
    with handle_message_parameters(content=", ".join(TOKEN), file=file) as params:
        await client.http.send_message(555, params=params)
    body = rest_recorder.requests[-1].body
    assert_clean(body, [TOKEN, SECRET])
    assert b"line one\nthe token: [REDACTED]\nhex [REDACTED]\n" in body
    assert b'filename="[REDACTED].txt"' in body


@pytest.mark.asyncio
async def test_a_retried_upload_sends_the_scrubbed_file_again(client, rest_recorder) -> None:
    rest_recorder.rate_limit_next["/api/v10/channels/777/messages"] = 1
    file = discord.File(io.BytesIO(f"payload {TOKEN} end".encode()), filename="out.txt")
    with handle_message_parameters(content="retry", file=file) as params:
        await client.http.send_message(777, params=params)
    attempts = [r for r in rest_recorder.requests if r.path == "/api/v10/channels/777/messages"]
    assert len(attempts) == 2
    for attempt in attempts:
        assert b"payload [REDACTED] end" in attempt.body  # rewound, not empty, on the retry
        assert_clean(attempt.body, [TOKEN])


@pytest.mark.asyncio
async def test_audit_reason_and_query_parameters_are_scrubbed(client, rest_recorder) -> None:
    await client.http.request(
        Route("DELETE", "/channels/{channel_id}/messages/{message_id}", channel_id=1, message_id=2),
        reason=f"because {TOKEN}",
        params={"q": SECRET},
    )
    recorded = rest_recorder.requests[-1]
    assert TOKEN not in recorded.headers.get("X-Audit-Log-Reason", "")
    assert "REDACTED" in recorded.headers["X-Audit-Log-Reason"]
    assert SECRET not in recorded.path and SECRET not in str(recorded.headers)


@pytest.mark.asyncio
async def test_webhook_adapter_path_is_scrubbed(client, rest_recorder) -> None:
    """Webhooks, interaction responses and follow-ups use AsyncWebhookAdapter, not bot.http."""
    webhook = discord.Webhook.partial(42, "webhook-token-abc", client=client)
    file = discord.File(io.BytesIO(f"in a file: {TOKEN}".encode()), filename="w.txt")
    await webhook.send(content=" ".join(TOKEN), embed=discord.Embed(description=SECRET))
    await webhook.send(content="with file", file=file)
    sent = [r for r in rest_recorder.requests if r.path.startswith("/api/v10/webhooks/42/")]
    assert len(sent) == 2
    for recorded in sent:
        assert_clean(recorded.body, [TOKEN, SECRET])
    assert b"in a file: [REDACTED]" in sent[1].body
    # The webhook's own token is in the URL, where Discord needs it.
    assert sent[0].path == "/api/v10/webhooks/42/webhook-token-abc"


@pytest.mark.asyncio
async def test_bodies_without_secrets_are_sent_unchanged(client, rest_recorder) -> None:
    embed = discord.Embed(title="こんにちは", description='a\nb "quoted" \\ back')
    with handle_message_parameters(content="hello 🌟", embed=embed) as params:
        expected = discord.utils._to_json(params.payload)
        await client.http.send_message(555, params=params)
    assert rest_recorder.requests[-1].body == expected.encode()


@pytest.mark.asyncio
async def test_install_is_idempotent_and_uninstall_restores(rest_recorder) -> None:
    bot = discord.Client(intents=discord.Intents.none())
    first, second = Scrubber(["first-secret"]), Scrubber(["second-secret"])
    install_http_scrubber(bot, first)
    install_http_scrubber(bot, second)
    assert installed_scrubber(bot) is second
    try:
        await bot.http.static_login(TOKEN)
        with handle_message_parameters(content="first-secret second-secret") as params:
            await bot.http.send_message(1, params=params)
        assert json.loads(rest_recorder.requests[-1].body)["content"] == "first-secret [REDACTED]"
        uninstall_http_scrubber(bot)
        assert installed_scrubber(bot) is None
        with handle_message_parameters(content="second-secret") as params:
            await bot.http.send_message(1, params=params)
        assert json.loads(rest_recorder.requests[-1].body)["content"] == "second-secret"
    finally:
        await bot.http.close()


@pytest.mark.asyncio
async def test_a_raw_stream_in_a_form_is_scrubbed_too(client, rest_recorder) -> None:
    """Form parts that read from a stream no ``File`` owns (a hand-built request) are covered."""
    stream = io.BytesIO(f"raw {TOKEN} stream".encode())
    form = [{"name": "file", "value": stream, "filename": "raw.bin", "content_type": "text/plain"}]
    await client.http.request(Route("POST", "/guilds/{guild_id}/stickers", guild_id=1), form=form)
    body = rest_recorder.requests[-1].body
    assert b"raw [REDACTED] stream" in body
    assert_clean(body, [TOKEN])
    assert stream.tell() == 0  # the caller's stream is left where it was
