"""The leak battery: every form of the token the docs claim is covered, through every road out.

The real CometBot and discord.py on the project's emulator; the product's logging handlers writing a
real file, and captured stderr. Each test reads what actually went out (the emulator's record of
every REST call, the messages and files it stored, the log file, stderr) and asserts that no form of
the token is in it, and that the text around the secret arrived intact.

Failure messages never show the token (see ``leak_support``), nor does pytest's report of the
captured logs (``pytest_log_reports_redacted``).
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import re
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from debug_support import TOKEN
from discord.http import Route
from harness import CometFactory
from leak_support import (
    FORM_EXPRESSIONS,
    HALF,
    SIG,
    assert_clean,
    excerpt,
    expect,
    intact,
    leaks,
    message_text,
    only_product_handlers,
    pytest_log_reports_redacted,  # noqa: F401  (an autouse fixture, in force for this module)
    read_logs,
    require_requests,
)
from waiting import wait_until

from comet.core.demo_guild import DEMO
from instrumentation.logging import remove_debug_logging, setup_debug_logging
from instrumentation.redact import Scrubber


@pytest.fixture
def product_logging(tmp_path: Path) -> Iterator[Path]:
    """Where the product's handlers write; they are removed and the levels restored afterwards."""
    path = tmp_path / "logs" / "debug.log"
    levels = {name: logging.getLogger(name).level for name in ("", "discord", "urllib3")}
    yield path
    remove_debug_logging()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def every_road(index: int) -> str:
    """A debug run carrying form ``index`` by every road, each copy tagged ``<<index:...:index>>``."""
    return (
        "import base64, io, json, logging, pprint, textwrap\n"
        "T = bot.http.token\n"
        f"s = {FORM_EXPRESSIONS[index]}\n"
        f"m = '<<{index}:' + s + ':{index}>>'\n"
        "print(m)\n"
        "await channel.send(m)\n"
        "await channel.send(embed=discord.Embed(description=m))\n"
        "await channel.send(file=discord.File(io.BytesIO(m.encode()), filename='leak.txt'))\n"
        "e = await channel.send('edit me')\n"
        "await e.edit(content=m)\n"
        "hook_id, hook_token = bot.leak_hook\n"
        "await discord.Webhook.partial(hook_id, hook_token, client=bot).send(m)\n"
        "sync_hook = discord.SyncWebhook.partial(hook_id, hook_token)\n"
        "await asyncio.to_thread(sync_hook.send, m, file=discord.File(io.BytesIO(m.encode()), 'sync.txt'))\n"
        "logging.getLogger('comet.leak').warning('carried %s', m)\n"
        f"'done-{index}'"
    )


async def run_debug(h: Any, code: str, marker: str, within: float = 20.0) -> list[Any]:
    """Send ``!debug code``; every bot message after it once one contains ``marker``."""
    message = await h.say(f"!debug {code}")
    await wait_until(lambda: any(marker in m.text for m in h.replies_after(message)), timeout=within)
    return list(h.replies_after(message))


# -- 1 and 3: every form, by every road (bot.http, both webhook adapters, the log) -----------------


@pytest.mark.asyncio
async def test_every_form_by_every_road_including_sync_webhooks_and_third_party_logs(
    comet_factory: CometFactory, product_logging: Path
) -> None:
    require_requests()
    h = await comet_factory(debug_mode=True)
    setup_debug_logging(
        product_logging,
        console_level="CRITICAL",
        discord_level="DEBUG",
        scrubber=h.bot.telemetry.scrubber,
        metrics=h.metrics,
    )
    logging.getLogger("urllib3").setLevel(logging.DEBUG)  # it logs each request line, token and all
    hook_id, hook_token, hook_url = h.emulator.create_webhook(DEMO.general_channel_id, name="leaks")
    h.bot.leak_hook = (hook_id, hook_token)  # not in the code: the gateway log shows the code typed

    for index in range(len(FORM_EXPRESSIONS)):
        tag = str(index)
        replies = await run_debug(h, every_road(index), f"done-{index}")
        by_road = {
            "reply": [m for m in replies if "```" in m.content],
            "webhooks": [m for m in replies if m.webhook_id is not None],
            "files": [m for m in replies if m.files],
        }
        assert len(by_road["webhooks"]) == 2 and len(by_road["files"]) == 2, (index, len(replies))
        for message in replies:
            text = message_text(message)
            assert_clean(text, f"message of form #{index}")
            if "done-" not in text:
                expect(intact(text, tag), f"form #{index} arrived damaged", text)
        reply = "".join(m.content for m in by_road["reply"])
        expect(intact(reply, tag), f"the reply to form #{index} arrived damaged", reply)

    # Every REST body, audit reason and query the emulator received (bot.http, async and sync webhooks).
    assert len(h.emulator.requests) > 7 * len(FORM_EXPRESSIONS)
    for request in h.emulator.requests:
        where = f"{request.method} {request.route}"
        assert_clean(request.body.decode("utf-8", "replace"), where)
        assert_clean(f"{request.reason or ''} {request.query}", where)
    sync_posts = [r for r in h.emulator.requests if r.path.startswith(f"/webhooks/{hook_id}/")]
    assert len(sync_posts) == 2 * len(FORM_EXPRESSIONS)

    # aiohttp.client may log a URL; urllib3 (under requests) logged every webhook URL at DEBUG.
    logging.getLogger("aiohttp.client").debug("POST %s failed, retrying", hook_url)
    logs = read_logs(product_logging)
    expect(hook_token not in logs, "the webhook token reached the log file")
    expect(f"webhooks/{hook_id}/[REDACTED]" in logs, "no redacted webhook URL in the log")
    urllib3_line = re.search(r"urllib3\.connectionpool - DEBUG - .*webhooks/\d+/\[REDACTED\]", logs)
    expect(urllib3_line is not None, "urllib3's request lines are missing or unredacted")
    aiohttp_line = re.search(r"aiohttp\.client - DEBUG - POST .*webhooks/\d+/\[REDACTED\] failed", logs)
    expect(aiohttp_line is not None, "the aiohttp.client line is missing or unredacted")
    assert_clean(logs, "the log file")
    lines = "\n".join(re.findall(r"comet\.leak - WARNING - carried (<<\d+:.*?:\d+>>)", logs, re.DOTALL))
    for index in range(len(FORM_EXPRESSIONS)):
        expect(intact(lines, str(index)), f"the log line of form #{index} is damaged or missing", lines)


# -- 2: raw bodies in every shape aiohttp takes --------------------------------------------------


def json_body(tag: str) -> bytes:
    return json.dumps({"content": f"<<{tag}:{TOKEN}:{tag}>>"}).encode()


async def chunks_async(data: bytes) -> AsyncIterator[bytes]:
    for chunk in (data[:40], data[40:]):  # the token straddles the two chunks
        yield chunk


@pytest.mark.asyncio
async def test_raw_bodies_bytearray_memoryview_streams_chunks_and_forms_are_scrubbed(
    comet_factory: CometFactory,
) -> None:
    h = await comet_factory(debug_mode=True)
    http = h.bot.http
    channel = DEMO.general_channel_id
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel)
    bodies: dict[str, Any] = {
        "bytearray": bytearray(json_body("bytearray")),
        "memoryview": memoryview(json_body("memoryview")),
        "bytes": json_body("bytes"),
        "str": json_body("str").decode(),
        "stream": io.BytesIO(json_body("stream")),
        "chunks": iter([json_body("chunks")[:40], json_body("chunks")[40:]]),
        "chunk list": [json_body("chunk list")[:40].decode(), json_body("chunk list")[40:]],
        "async chunks": chunks_async(json_body("async chunks")),
    }
    for data in bodies.values():
        await http.request(route, data=data)

    file_text = f"file <<f:{TOKEN}:f>> end\n".encode()
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json_body("formdata").decode(), content_type="application/json")
    form.add_field("files[0]", io.BytesIO(file_text), filename=f"{SIG}.txt", content_type="text/plain")
    form.add_field("files[1]", bytearray(file_text), filename="b.txt", content_type="text/plain")
    await http.request(route, data=form)
    parts = [
        {"name": "payload_json", "value": json_body("form").decode(), "content_type": "application/json"},
        {
            "name": "files[0]",
            "value": memoryview(file_text),
            "filename": "m.txt",
            "content_type": "text/plain",
        },
    ]
    await http.request(route, form=parts)

    # Form-encoded fields (a dict, or pairs): not what this route takes, but sent all the same.
    for data in ({"content": f"<<d:{TOKEN}:d>>"}, [("content", f"<<p:{TOKEN}:p>>")]):
        with pytest.raises(discord.HTTPException):
            await http.request(route, data=data)
    sent = len(h.emulator.requests)
    with pytest.raises(TypeError, match="cannot scrub"):
        await http.request(route, data=object())  # an unreadable shape is refused, not sent
    assert len(h.emulator.requests) == sent

    stored = {m.content for m in h.emulator.bot_messages(channel)}
    for tag in [*bodies, "formdata", "form"]:
        expect(f"<<{tag}:[REDACTED]:{tag}>>" in stored, f"the {tag} body arrived damaged or not at all")
    uploads = [m for m in h.emulator.bot_messages(channel) if m.files]
    assert len(uploads) == 2
    files = [(name, data) for m in uploads for name, data in m.files]
    assert len(files) == 3
    for name, data in files:
        text = data.decode("utf-8", "replace")
        expect(text == "file <<f:[REDACTED]:f>> end\n", "an uploaded file arrived damaged", text)
        assert_clean(name, "an uploaded file's name")
    for request in h.emulator.requests:
        assert_clean(request.body.decode("utf-8", "replace"), f"{request.method} {request.route}")
    encoded = [r.body for r in h.emulator.requests if r.body.startswith(b"content=")]
    expected = [b"content=%3C%3C" + tag + b"%3A%5BREDACTED%5D%3A" + tag + b"%3E%3E" for tag in (b"d", b"p")]
    expect(encoded == expected, "form-encoded fields arrived damaged", repr(encoded))


# -- 4: a token split across consecutive outputs of one debug run ---------------------------------

SPLIT_RUNS = {
    "two prints": "print(T[:35])\nprint(T[35:])",
    "print then result": "print(T[:35])\nT[35:]",
    "print then raise": "print(T[:35])\nraise ValueError(T[35:])",
    "one character a line": "for c in T:\n    print(c)",
    "across a page break": "print('x' * 1890 + T[:35])\nprint(T[35:])",
    "in the file of a long output": "print('y' * 8000)\nprint(T[:35])\nprint(T[35:])",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(SPLIT_RUNS))
async def test_a_token_split_across_outputs_of_one_run_is_scrubbed_as_a_whole(
    comet_factory: CometFactory, case: str
) -> None:
    h = await comet_factory(debug_mode=True)
    code = "T = bot.http.token\nprint('start')\n" + SPLIT_RUNS[case]
    message = await h.say(f"!debug {code}")
    await wait_until(lambda: h.invocations("debug", "error" if "raise" in case else "ok") >= 1)
    assert h.invocations("debug", "error" if "raise" in case else "ok") == 1

    def unfenced() -> str:
        """The replies' text without the code fences (pages joined), and any file's contents."""
        replies = h.replies_after(message)
        bodies = [m.content.removeprefix("```\n").removesuffix("\n```") for m in replies]
        files = [data.decode("utf-8", "replace") for m in replies for _, data in m.files]
        return "".join(bodies + files)

    def complete() -> bool:  # the last page is in
        whole = unfenced()
        return "[REDACTED]" in whole and ("page" not in case or whole.count("x") == 1890)

    await wait_until(complete, timeout=10)
    replies = h.replies_after(message)
    pages = [message_text(m) for m in replies]
    for page in pages:
        assert_clean(page, f"a page of {case!r}")
    assert_clean("".join(pages), f"the pages of {case!r} joined")
    whole = unfenced()
    assert_clean(whole, f"the pages of {case!r} joined without their fences")
    expect("start" in whole and whole.count("[REDACTED]") == 1, "the output lost its text", whole)
    if "page" in case:
        expect(len(replies) >= 2, "the output was not cut into pages", whole)
    if "file" in case:
        expect(len(replies) == 1 and whole.count("y") == 8000, "the file lost its text", whole[-300:])
    if "raise" in case:
        expect("ValueError" in whole, "the error line is missing", whole)


# -- 5: the logging error path, warnings -----------------------------------------------------------


class Unprintable:
    def __str__(self) -> str:
        raise ValueError(f"cannot show {TOKEN}")


def test_arguments_that_do_not_fit_the_format_never_reach_stderr_raw(
    product_logging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_debug_logging(product_logging, console_level="CRITICAL", scrubber=Scrubber([TOKEN]))
    log = logging.getLogger("comet.broken")
    with only_product_handlers():
        log.error("%s %s", TOKEN)  # too few arguments
        log.error("%d", TOKEN)  # the wrong kind
        log.error("%(key)s", TOKEN)  # a mapping format without a mapping
        log.error("no placeholder", TOKEN)  # too many
        log.error(Unprintable())  # a message whose str() raises, with the token in its error
    err = capsys.readouterr().err
    logs = read_logs(product_logging)
    assert_clean(err, "stderr")
    assert_clean(logs, "the log file")
    expect(logs.count("logging error") == 5 and logs.count("[REDACTED]") >= 5, "a broken call vanished", logs)
    line = "'%s %s' (logging error TypeError: not enough arguments for format string"
    expect(line in logs, "the broken call's line is not as expected", logs)

    # A handler that fails to write (here a closed file) reports on stderr, redacted.
    handlers = logging.getLogger().handlers
    file_handler = next(h for h in handlers if isinstance(h, logging.handlers.RotatingFileHandler))
    assert file_handler.stream is not None
    file_handler.stream.close()
    with only_product_handlers():
        log.error("after the disk went away %s %r", TOKEN, {"token": TOKEN})
    file_handler.stream = None  # type: ignore[assignment]  # so closing it at the end works
    err = capsys.readouterr().err
    expect("--- Logging error ---" in err and "[REDACTED]" in err, "no error report", err)
    assert_clean(err, "stderr after a write error")


def test_a_product_handler_error_report_is_redacted_even_without_the_filter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from instrumentation.logging import RedactingStreamHandler

    stream = io.StringIO()
    stream.close()
    handler = RedactingStreamHandler(stream, scrubber=Scrubber([TOKEN]))
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s %r", (TOKEN, [SIG]), None)
    handler.handle(record)  # no RedactingFilter: the raw arguments reach handleError
    err = capsys.readouterr().err
    report = "--- Logging error ---" in err and "Arguments: ('[REDACTED]', ['[REDACTED]'])" in err
    expect(report, "no redacted error report", err)
    assert_clean(err, "a handler's error report")


def test_warnings_are_routed_through_the_redacting_handlers(
    product_logging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unrouted: list[bool] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # What shows a warning when logging does not: records only that it happened, never the text.
        warnings.showwarning = lambda *args, **kwargs: unrouted.append(True)
        setup_debug_logging(product_logging, console_level="WARNING", scrubber=Scrubber([TOKEN]))
        with only_product_handlers():
            warnings.warn(f"deprecated login with {TOKEN}", UserWarning, stacklevel=1)
            warnings.warn(" ".join(TOKEN), RuntimeWarning, stacklevel=1)
        remove_debug_logging()
        routed_back = warnings.showwarning
    assert not unrouted, "a warning bypassed the product's handlers"
    assert routed_back is not logging._showwarning  # type: ignore[attr-defined]
    captured = capsys.readouterr()
    logs = read_logs(product_logging)
    for text, where in ((logs, "the log file"), (captured.out, "the console"), (captured.err, "stderr")):
        assert_clean(text, where)
    logged = "py.warnings - WARNING - " in logs and "UserWarning: deprecated login with [REDACTED]" in logs
    expect(logged and "RuntimeWarning: [REDACTED]" in logs, "the warnings are not in the log", logs)
    expect("deprecated login with [REDACTED]" in captured.out, "the warning is not on the console")


# -- 6: the docs claim exactly the forms this battery sends ----------------------------------------


def test_the_docs_list_exactly_the_forms_of_this_battery() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "debugging.md").read_text(encoding="utf-8")
    block = doc.split("<!-- leak-battery:forms -->")[1].split("<!-- /leak-battery:forms -->")[0]
    claimed = re.findall(r"`([^`]+)`", block)
    assert sorted(claimed) == sorted(FORM_EXPRESSIONS)


def test_the_failure_messages_mask_what_they_show() -> None:
    shown = excerpt(f"a {TOKEN[:HALF]}\n{TOKEN[HALF:]} b {' '.join(TOKEN)} [REDACTED]")
    expect(re.search(r"[A-Za-z0-9]", shown) is None and shown.endswith(" #"), "an excerpt shows text")
    found = leaks(f"x {TOKEN[:HALF]}\n  {TOKEN[HALF:]} y")
    squeezed = ["token (squeezed)", "signature (squeezed)", "second half (squeezed)"]
    expect(found == ["first half", "second half", *squeezed], str(found))
