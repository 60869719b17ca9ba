"""Scrub secrets from what ``discord.SyncWebhook`` sends (the ``requests`` based webhook adapter).

``discord.SyncWebhook`` does not go through ``bot.http`` nor through the async webhook adapter: its
requests go out through ``discord.webhook.sync.WebhookAdapter.request`` (one adapter per thread, all
of the same class). That class is patched once per process, like the async adapter in
``comet.core.secure_http``, and applies the scrubbers of every bot that installed one: JSON payloads,
multipart files and ``payload_json``, the audit-log reason and query parameters. The URL (with the
webhook's token, which Discord needs) is left alone; the logging filter redacts it where
``urllib3`` logs it.

``requests`` itself is imported by discord.py only when a ``SyncWebhook`` is used; patching the
adapter class does not need it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from discord.webhook.sync import WebhookAdapter

if TYPE_CHECKING:
    from comet.core.secure_http import Scrubbing

__all__ = ["is_patched", "patch_sync_webhook_adapter"]

_MARK = "__comet_scrubbed__"


class _KwargsScrubber(Protocol):
    def __call__(self, scrubbing: Scrubbing, kwargs: dict[str, Any], /) -> None: ...


def is_patched() -> bool:
    """Whether the sync webhook adapter class scrubs what it sends."""
    return bool(getattr(WebhookAdapter.request, _MARK, False))


def patch_sync_webhook_adapter(scrubbing: Callable[[], Scrubbing], scrub_kwargs: _KwargsScrubber) -> None:
    """Patch ``WebhookAdapter.request`` (once per process; later calls do nothing).

    ``scrubbing()`` is asked on every request for the scrubbers in force, and ``scrub_kwargs``
    rewrites the request's keyword arguments with them.
    """
    if is_patched():
        return
    original: Callable[..., Any] = WebhookAdapter.request

    @functools.wraps(original)
    def request(self: WebhookAdapter, route: Any, session: Any, **kwargs: Any) -> Any:
        current = scrubbing()
        if current:
            scrub_kwargs(current, kwargs)
        return original(self, route, session, **kwargs)

    setattr(request, _MARK, True)
    WebhookAdapter.request = request  # type: ignore[method-assign]
