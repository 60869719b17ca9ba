"""Scrub secrets from everything the bot sends to Discord's REST API.

The owner's ``debug`` command runs arbitrary code, and code can reach Discord by many roads:
``ctx.send``, ``channel.send(file=...)``, message edits, webhooks, interaction responses and
follow-ups. They all end in one of three places, so that is where secrets are removed:

* ``HTTPClient.request`` of the bot (``bot.http``): every bot-authenticated REST call. Its body is a
  ``json`` payload or a multipart ``form`` whose file parts are ``discord.File`` objects (``files``),
  or, for a hand-made call, a raw ``data`` body in any shape aiohttp takes (``Scrubbing.body``).
* ``AsyncWebhookAdapter.request``: interaction responses, follow-ups and webhooks use their own
  adapter (a process-wide default held in ``discord.webhook.async_.async_context``), not
  ``bot.http``. The adapter class is patched once per process and applies the scrubbers of every
  bot that installed one (scrubbing another bot's secret too is harmless).
* ``discord.webhook.sync.WebhookAdapter.request``: ``discord.SyncWebhook`` (over ``requests``),
  patched the same way (``comet.core.secure_sync_webhook``).

What is scrubbed: JSON strings (keys and values, recursively; ``payload_json`` form parts are
decoded, scrubbed and re-encoded so JSON escaping cannot hide a secret), file contents and file
names, form fields, raw bodies (``str``, ``bytes``, ``bytearray``, ``memoryview``, files and streams,
``aiohttp.FormData``, form fields as a dict or pairs, iterables and async iterables of ``str`` /
``bytes`` chunks, joined first so a secret split across chunks is caught; any other body is refused
with ``TypeError``), the audit-log reason header and query parameters, with every rule of
``instrumentation.redact`` (webhook URLs in a body lose their token too). The URL path is left
alone: webhook URLs carry the webhook's own token, which Discord needs. The bot's live token
(``bot.http.token``, known only after login) is added to the scrubber on first use, so it is covered
even when the settings did not carry it.

This is a safety net against accidents, not a sandbox: code run by ``debug`` can open its own
connection. See docs/debugging.md.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp
import discord
import discord.http
from discord.webhook.async_ import AsyncWebhookAdapter
from multidict import MultiDict

from comet.core.secure_sync_webhook import patch_sync_webhook_adapter
from instrumentation.redact import Scrubber

__all__ = [
    "Scrubbing",
    "install_http_scrubber",
    "installed_scrubber",
    "scrub_json",
    "scrub_webhook_kwargs",
    "uninstall_http_scrubber",
    "webhook_scrubbing",
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
        # Even a scrubber without secrets redacts webhook tokens in URLs.
        self.scrubbers = list(scrubbers)

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
        return discord.File(
            io.BytesIO(self.data(_read_all(fp))),
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
            elif isinstance(value, io.IOBase):
                owned = by_fp.get(id(value))
                if owned is None:  # a stream that no File owns: give it one so retries can rewind
                    owned = self.stream(value, part.get("filename") or "untitled")
                    new_files.append(owned)
                clean = owned
                part["value"] = clean.fp
                part["filename"] = clean.filename
            elif value is not None:
                part["value"] = self.body(value)
            if isinstance(part.get("filename"), str):
                part["filename"] = self.text(part["filename"])
            new_form.append(part)
        return new_form, new_files

    def body(self, data: Any) -> Any:
        """A scrubbed copy of a raw request body, in any shape aiohttp (or requests) takes.

        Streams are read whole from where they stand (the caller's position is restored); chunks of
        an iterable are joined before scrubbing. A shape this cannot read is refused: better an error
        than a body sent unscrubbed.
        """
        if data is None:
            return None
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, bytes | bytearray | memoryview):
            return self.data(bytes(data))
        if isinstance(data, aiohttp.FormData):
            return self.form_data(data)
        if isinstance(data, io.IOBase):
            clean = io.BytesIO(self.data(_read_all(data)))
            name = getattr(data, "name", None)
            if isinstance(name, str):  # aiohttp takes a form file's name from it
                clean.name = self.text(name)
            return clean
        if isinstance(data, Mapping):
            return {self.field(k): self.field(v) for k, v in data.items()}
        if isinstance(data, AsyncIterable):
            return self._joined_chunks(data)
        if isinstance(data, Iterable):
            items = list(data)
            if all(isinstance(i, tuple) and len(i) == 2 for i in items):  # form fields as pairs
                return [(self.field(k), self.field(v)) for k, v in items]
            if all(isinstance(i, str | bytes | bytearray | memoryview) for i in items):
                return self.data(_join(items))
        raise TypeError(f"comet.core.secure_http cannot scrub a request body of type {type(data).__name__}")

    def field(self, value: Any) -> Any:
        """A form field's name or value (numbers and other plain values pass as they are)."""
        if isinstance(value, list | tuple):
            return [self.field(v) for v in value]
        if isinstance(value, int | float | bool):
            return value
        return self.body(value)

    def form_data(self, form: aiohttp.FormData) -> aiohttp.FormData:
        """A copy of an unsent ``aiohttp.FormData`` with every field's name, filename and value scrubbed."""
        clean = aiohttp.FormData(quote_fields=form._quote_fields, charset=form._charset)
        clean._is_multipart = form._is_multipart
        for options, headers, value in form._fields:
            scrubbed: MultiDict[str] = MultiDict(
                (key, self.text(option) if isinstance(option, str) else option)
                for key, option in options.items()
            )
            clean._fields.append((scrubbed, dict(headers), self.body(value)))
        return clean

    async def _joined_chunks(self, chunks: AsyncIterable[Any]) -> AsyncIterator[bytes]:
        items = [chunk async for chunk in chunks]
        if not all(isinstance(i, str | bytes | bytearray | memoryview) for i in items):
            raise TypeError("comet.core.secure_http scrubs async bodies of str or bytes chunks only")
        yield self.data(_join(items))


def _read_all(fp: Any) -> bytes:
    """What a stream holds from where it stands; its position is restored when it can be."""
    start = fp.tell() if fp.seekable() else None
    try:
        content = fp.read()
    finally:
        if start is not None:
            fp.seek(start)
    return content.encode() if isinstance(content, str) else bytes(content)


def _join(chunks: Iterable[str | bytes | bytearray | memoryview]) -> bytes:
    return b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)


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
            if kwargs.get("data") is not None:
                kwargs["data"] = scrubbing.body(kwargs["data"])
        return await original(route, **kwargs)

    setattr(request, _MARK, scrubber)
    # An instance attribute shadows the method for every caller inside discord.py (self.request).
    http.request = request  # type: ignore[method-assign]


# -- webhooks, interaction responses and follow-ups ------------------------------------------

_webhook_scrubbers: weakref.WeakKeyDictionary[Any, Scrubber] = weakref.WeakKeyDictionary()
#: The sync adapter runs in other threads: registrations and snapshots take this lock.
_webhook_lock = threading.Lock()


def webhook_scrubbing() -> Scrubbing:
    """The scrubbers of every bot that installed one (what the webhook adapters apply)."""
    with _webhook_lock:
        return Scrubbing(list(_webhook_scrubbers.values()))


def scrub_webhook_kwargs(scrubbing: Scrubbing, kwargs: dict[str, Any]) -> None:
    """Scrub, in place, the keyword arguments of a webhook adapter's ``request`` (sync or async)."""
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


def _patch_webhook_adapter() -> None:
    if getattr(AsyncWebhookAdapter.request, _MARK, False):
        return
    original = AsyncWebhookAdapter.request

    @functools.wraps(original)
    async def request(self: AsyncWebhookAdapter, route: Any, session: Any, **kwargs: Any) -> Any:
        scrubbing = webhook_scrubbing()
        if scrubbing:
            scrub_webhook_kwargs(scrubbing, kwargs)
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
    with _webhook_lock:
        _webhook_scrubbers[bot] = scrubber
    _patch_webhook_adapter()
    patch_sync_webhook_adapter(webhook_scrubbing, scrub_webhook_kwargs)
    log.debug("HTTP secret scrubber installed")


def uninstall_http_scrubber(bot: discord.Client) -> None:
    """Undo :func:`install_http_scrubber` for ``bot`` (the webhook patches stay, now without it)."""
    http = bot.http
    if getattr(http.request, _MARK, None) is not None:
        del http.request  # back to the class's method
    with _webhook_lock:
        _webhook_scrubbers.pop(bot, None)


def installed_scrubber(bot: discord.Client) -> Scrubber | None:
    """The scrubber installed on ``bot`` (None when there is none)."""
    return getattr(bot.http.request, _MARK, None)
