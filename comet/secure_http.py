"""Scrub secrets from everything the bot sends to Discord's REST API.

The owner's ``debug`` command runs arbitrary code, and code can reach Discord by many roads:
``ctx.send``, ``channel.send(file=...)``, message edits, webhooks, interaction responses and
follow-ups. They all end in one of two places, so that is where secrets are removed:

* ``HTTPClient.request`` of the bot (``bot.http``): every bot-authenticated REST call. Its body is a
  ``json`` payload or a multipart ``form`` whose file parts are ``discord.File`` objects (``files``).
* ``AsyncWebhookAdapter.request``: interaction responses, follow-ups and webhooks use their own
  adapter (a process-wide default held in ``discord.webhook.async_.async_context``), not
  ``bot.http``. The adapter class is patched once per process and applies the scrubbers of every
  bot that installed one (scrubbing another bot's secret too is harmless).

What is scrubbed: JSON strings (keys and values, recursively; ``payload_json`` form parts are
decoded, scrubbed and re-encoded so JSON escaping cannot hide a secret), file contents and file
names, the audit-log reason header and query parameters. The URL path is left alone: webhook URLs
carry the webhook's own token, which Discord needs. The bot's live token (``bot.http.token``, known
only after login) is added to the scrubber on first use, so it is covered even when the settings
did not carry it.

This is a safety net against accidents, not a sandbox: code run by ``debug`` can open its own
connection. See docs/debugging.md.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import discord
import discord.http
from discord.webhook.async_ import AsyncWebhookAdapter

from instrumentation.redact import Scrubber

__all__ = [
    "Scrubbing",
    "install_http_scrubber",
    "installed_scrubber",
    "scrub_json",
    "uninstall_http_scrubber",
]

log = logging.getLogger(__name__)

_MARK = "__comet_scrubbed__"


def scrub_json(value: Any, scrub: Callable[[str], str]) -> Any:
    """A copy of a JSON-like value with every string (dict keys too) passed through ``scrub``."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {(scrub(k) if isinstance(k, str) else k): scrub_json(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(v, scrub) for v in value]
    return value


class Scrubbing:
    """Applies one or more scrubbers to the pieces of a REST request."""

    def __init__(self, scrubbers: Iterable[Scrubber]) -> None:
        self.scrubbers = [s for s in scrubbers if s]

    def __bool__(self) -> bool:
        return bool(self.scrubbers)

    def text(self, text: str) -> str:
        for scrubber in self.scrubbers:
            text = scrubber.scrub(text)
        return text

    def data(self, data: bytes) -> bytes:
        for scrubber in self.scrubbers:
            data = scrubber.scrub_bytes(data)
        return data

    def json(self, value: Any) -> Any:
        return scrub_json(value, self.text)

    def json_text(self, text: str) -> str:
        """A serialised JSON document, decoded first so escapes (``\\n``, ``\\u...``) hide nothing."""
        try:
            decoded = json.loads(text)
        except ValueError:
            return self.text(text)
        return discord.utils._to_json(self.json(decoded))

    def mapping(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {k: self.text(v) if isinstance(v, str) else v for k, v in value.items()}

    def optional_text(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def file(self, file: discord.File) -> discord.File:
        """A new in-memory ``File`` with scrubbed contents, name and description.

        The caller keeps (and closes) the original; its read position is restored.
        """
        return self.stream(file.fp, file.filename, file.description)

    def stream(self, fp: Any, filename: str, description: str | None = None) -> discord.File:
        """A scrubbed in-memory ``File`` of a readable stream (read from where it stands)."""
        start = fp.tell()
        try:
            content = fp.read()
        finally:
            fp.seek(start)
        if isinstance(content, str):  # a text-mode file object slipped through
            content = content.encode()
        return discord.File(
            io.BytesIO(self.data(content)),
            filename=self.text(filename),  # carries the SPOILER_ prefix when set
            description=self.optional_text(description),
        )

    def multipart(
        self, form: Iterable[dict[str, Any]] | None, files: Sequence[discord.File] | None
    ) -> tuple[list[dict[str, Any]] | None, list[discord.File] | None]:
        """Scrubbed copies of a multipart form and the files its parts read from."""
        if form is None:
            return None, [self.file(f) for f in files] if files else None
        by_fp: dict[int, discord.File] = {}
        new_files: list[discord.File] = []
        for original in files or ():
            clean = self.file(original)
            by_fp[id(original.fp)] = clean
            new_files.append(clean)
        new_form: list[dict[str, Any]] = []
        for part in form:
            part = dict(part)
            value = part.get("value")
            if isinstance(value, str):
                part["value"] = (
                    self.json_text(value) if part.get("name") == "payload_json" else self.text(value)
                )
            elif isinstance(value, bytes | bytearray):
                part["value"] = self.data(bytes(value))
            elif isinstance(value, io.IOBase):
                owned = by_fp.get(id(value))
                if owned is None:  # a stream that no File owns: give it one so retries can rewind
                    owned = self.stream(value, part.get("filename") or "untitled")
                    new_files.append(owned)
                clean = owned
                part["value"] = clean.fp
                part["filename"] = clean.filename
            if isinstance(part.get("filename"), str):
                part["filename"] = self.text(part["filename"])
            new_form.append(part)
        return new_form, new_files


# -- bot.http ---------------------------------------------------------------------------------


def _wrap_http_request(http: discord.http.HTTPClient, scrubber: Scrubber) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(http.request, "__wrapped__", http.request)
    known_token: list[str | None] = [None]

    @functools.wraps(original)
    async def request(route: discord.http.Route, **kwargs: Any) -> Any:
        token = http.token
        if token and token != known_token[0]:
            scrubber.add(token)
            known_token[0] = token
        scrubbing = Scrubbing([scrubber])
        if scrubbing:
            if "json" in kwargs:
                kwargs["json"] = scrubbing.json(kwargs["json"])
            if kwargs.get("form") is not None or kwargs.get("files"):
                kwargs["form"], kwargs["files"] = scrubbing.multipart(kwargs.get("form"), kwargs.get("files"))
            if isinstance(kwargs.get("reason"), str):
                kwargs["reason"] = scrubbing.text(kwargs["reason"])
            if isinstance(kwargs.get("params"), dict):
                kwargs["params"] = scrubbing.mapping(kwargs["params"])
            if isinstance(kwargs.get("data"), str | bytes):
                raw = kwargs["data"]
                kwargs["data"] = scrubbing.text(raw) if isinstance(raw, str) else scrubbing.data(raw)
        return await original(route, **kwargs)

    setattr(request, _MARK, scrubber)
    # An instance attribute shadows the method for every caller inside discord.py (self.request).
    http.request = request  # type: ignore[method-assign]


# -- webhooks, interaction responses and follow-ups ------------------------------------------

_webhook_scrubbers: weakref.WeakKeyDictionary[Any, Scrubber] = weakref.WeakKeyDictionary()


def _patch_webhook_adapter() -> None:
    if getattr(AsyncWebhookAdapter.request, _MARK, False):
        return
    original = AsyncWebhookAdapter.request

    @functools.wraps(original)
    async def request(self: AsyncWebhookAdapter, route: Any, session: Any, **kwargs: Any) -> Any:
        scrubbing = Scrubbing(list(_webhook_scrubbers.values()))
        if scrubbing:
            if kwargs.get("payload") is not None:
                kwargs["payload"] = scrubbing.json(kwargs["payload"])
            if kwargs.get("multipart") or kwargs.get("files"):
                kwargs["multipart"], kwargs["files"] = scrubbing.multipart(
                    kwargs.get("multipart"), kwargs.get("files")
                )
            if isinstance(kwargs.get("reason"), str):
                kwargs["reason"] = scrubbing.text(kwargs["reason"])
            if isinstance(kwargs.get("params"), dict):
                kwargs["params"] = scrubbing.mapping(kwargs["params"])
        return await original(self, route, session, **kwargs)

    setattr(request, _MARK, True)
    AsyncWebhookAdapter.request = request  # type: ignore[method-assign]


def install_http_scrubber(bot: discord.Client, scrubber: Scrubber) -> None:
    """Scrub every REST body ``bot`` sends (its HTTP client, webhooks and interactions).

    Idempotent: installing again replaces the scrubber.
    """
    http = bot.http
    if getattr(http.request, _MARK, None) is not None:
        uninstall_http_scrubber(bot)
    _wrap_http_request(http, scrubber)
    _webhook_scrubbers[bot] = scrubber
    _patch_webhook_adapter()
    log.debug("HTTP secret scrubber installed")


def uninstall_http_scrubber(bot: discord.Client) -> None:
    """Undo :func:`install_http_scrubber` for ``bot`` (the webhook patch stays, now without it)."""
    http = bot.http
    if getattr(http.request, _MARK, None) is not None:
        del http.request  # back to the class's method
    _webhook_scrubbers.pop(bot, None)


def installed_scrubber(bot: discord.Client) -> Scrubber | None:
    """The scrubber installed on ``bot`` (None when there is none)."""
    return getattr(bot.http.request, _MARK, None)
