"""The discord.py extension form of :func:`instrumentation.install.instrument`.

    await bot.load_extension("instrumentation.ext")    # e.g. in setup_hook
    await bot.unload_extension("instrumentation.ext")  # closes the server, uninstalls everything

Configured from the environment (each optional; an empty value means the default):

``COMET_METRICS_HOST``        where the server listens (default ``127.0.0.1``)
``COMET_METRICS_PORT``        its port, ASCII digits 0-65535 (default 9108; 0 picks a free one)
``COMET_METRICS_BASIC_AUTH``  ``user:password`` protecting ``/metrics``, ``/readyz``, ``/debug/*``

A bad value fails the load (``commands.ExtensionFailed``) with a ``ValueError`` naming the variable;
a password is never repeated in a message. The handle is ``instrumentation.install.handle_of(bot)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from discord.ext import commands

from instrumentation.install import handle_of, instrument

__all__ = ["BASIC_AUTH_ENV", "HOST_ENV", "PORT_ENV", "ExtensionSettings", "settings_from_env"]

HOST_ENV = "COMET_METRICS_HOST"
PORT_ENV = "COMET_METRICS_PORT"
BASIC_AUTH_ENV = "COMET_METRICS_BASIC_AUTH"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9108

#: A host name, an IPv4 address or an IPv6 address (the characters they are made of).
_HOST = re.compile(r"[A-Za-z0-9.:\-]+")


@dataclass(frozen=True)
class ExtensionSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    basic_auth: tuple[str, str] | None = None

    def __repr__(self) -> str:  # never the password
        auth = "None" if self.basic_auth is None else f"({self.basic_auth[0]!r}, '***')"
        return f"ExtensionSettings(host={self.host!r}, port={self.port}, basic_auth={auth})"


def settings_from_env(environ: Mapping[str, str] | None = None) -> ExtensionSettings:
    """The extension's settings from ``environ`` (default ``os.environ``); ``ValueError`` if invalid."""
    env = os.environ if environ is None else environ
    host = env.get(HOST_ENV, "") or DEFAULT_HOST
    if not _HOST.fullmatch(host):
        raise ValueError(f"{HOST_ENV}: expected a host name or IP address (e.g. 127.0.0.1), got {host!r}")
    port_text = env.get(PORT_ENV, "")
    port = DEFAULT_PORT
    if port_text:
        # str.isdigit() alone accepts other scripts' digits ("٩١٠٨") and superscripts: ASCII only.
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise ValueError(f"{PORT_ENV}: expected a port number 0-65535 (ASCII digits), got {port_text!r}")
        port = int(port_text)
    auth_text = env.get(BASIC_AUTH_ENV, "")
    basic_auth: tuple[str, str] | None = None
    if auth_text:
        user, sep, password = auth_text.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"{BASIC_AUTH_ENV}: expected user:password (both non-empty)")
        basic_auth = (user, password)
    return ExtensionSettings(host=host, port=port, basic_auth=basic_auth)


async def setup(bot: commands.Bot) -> None:
    settings = settings_from_env()
    await instrument(bot, host=settings.host, port=settings.port, basic_auth=settings.basic_auth)


async def teardown(bot: commands.Bot) -> None:
    # Also called by discord.py after a failed setup(): then there is no handle.
    handle = handle_of(bot)
    if handle is not None:
        await handle.close()
