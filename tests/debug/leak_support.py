"""Helpers of the leak battery (``test_debug_leak_battery.py``): the forms, the needles, checks
whose failure messages never show the token, and logging plumbing.

Failure messages never show the token: every check is a boolean computed first (so pytest has no
string to print), the helpers that hold the text hide their frames from pytest's traceback (which
prints a frame's arguments), and a failure names the needle that leaked and shows an excerpt in
which every letter and digit is masked.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import pprint
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from debug_support import TOKEN, leak_forms

from instrumentation.logging import MARKER
from instrumentation.redact import Scrubber

SIG = TOKEN.split(".")[-1]
HALF = 35  # inside the signature: each half alone is not a known form

#: Every form docs/debugging.md says is covered (its list is checked against this one, below).
#: Python expressions over ``T``, the token; the debug runs compute them inside the bot.
FORM_EXPRESSIONS = [
    # exact forms
    "T",
    "T[::-1]",
    "base64.b64encode(T.encode()).decode()",
    "base64.b64encode(T.encode()).decode().rstrip('=')",
    "base64.urlsafe_b64encode(T.encode()).decode()",
    "base64.urlsafe_b64encode(T.encode()).decode().rstrip('=')",
    "T.encode().hex()",
    "T.encode().hex().upper()",
    "T.split('.')[-1]",
    # the characters joined by one repeated separator (any, up to 64 characters)
    "' '.join(T)",
    "','.join(T)",
    "', '.join(T)",
    "'-'.join(T)",
    "chr(10).join(T)",
    "chr(9).join(T)",
    "' | '.join(T)",
    "'<=>'.join(T)",
    "('.' * 20).join(T)",
    "'-'.join(T.split('.')[-1])",
    # list and tuple reprs
    "str(list(T))",
    "repr(tuple(T))",
    "str(list(T.split('.')[-1]))",
    "pprint.pformat(list(T))",
    "json.dumps(list(T))",
    # split by whitespace
    "T[:35] + chr(10) + T[35:]",
    "textwrap.fill(T, 20)",
    "T[:10] + '   ' + T[10:50] + chr(10) * 2 + T[50:]",
]

_NAMESPACE = {"T": TOKEN, "base64": base64, "json": json, "pprint": pprint, "textwrap": textwrap}
FORMS = {expression: str(eval(expression, dict(_NAMESPACE))) for expression in FORM_EXPRESSIONS}

#: What must never arrive anywhere, by a name that is safe to print.
NEEDLES = {f"form#{i}": form for i, form in enumerate(FORMS.values())}
NEEDLES.update({f"exact#{i}": form for i, form in enumerate(leak_forms(TOKEN))})
NEEDLES.update({"token": TOKEN, "signature": SIG, "first half": TOKEN[:HALF], "second half": TOKEN[HALF:]})
#: Searched for with all whitespace removed too (a secret split over lines is still a secret).
CORE = ("token", "signature", "second half")


def leaks(text: str) -> list[str]:
    """The names of the needles in ``text`` (the core ones also with its whitespace squeezed out)."""
    squeezed = "".join(text.split())
    found = [name for name, needle in NEEDLES.items() if needle in text]
    return found + [f"{name} (squeezed)" for name in CORE if NEEDLES[name] in squeezed]


def excerpt(text: str, limit: int = 400) -> str:
    """``text`` with every letter and digit masked (``[REDACTED]`` shown as ``#``): safe to show."""
    return re.sub(r"[A-Za-z0-9]", "·", text.replace("[REDACTED]", "#"))[:limit]


def expect(condition: bool, what: str, text: str = "") -> None:
    """``assert condition`` with a message that shows ``text`` masked (never pytest's own repr)."""
    __tracebackhide__ = True  # pytest would print this frame's arguments, ``text`` among them
    assert condition, f"{what}: {excerpt(text)!r}"


def assert_clean(text: str, where: str) -> None:
    __tracebackhide__ = True  # pytest would print this frame's arguments, ``text`` among them
    found = leaks(text)
    assert not found, f"{found} leaked in {where}: {excerpt(text)!r}"


def carried(text: str, tag: str) -> list[str]:
    """The middles of every ``<<tag:...:tag>>`` copy in ``text``."""
    return re.findall(re.escape(f"<<{tag}:") + r"(.*?)" + re.escape(f":{tag}>>"), text, re.DOTALL)


def intact(text: str, tag: str) -> bool:
    """Each carried copy is the redaction alone, give or take a bracket or quote of a list repr."""
    copies = carried(text, tag)
    return bool(copies) and all(
        "[REDACTED]" in copy and not copy.replace("[REDACTED]", "").strip("[]()'\", \n") for copy in copies
    )


def require_requests() -> None:
    """``discord.SyncWebhook`` sends with ``requests`` (a dev dependency): a clear failure without it."""
    try:
        import requests  # noqa: F401
    except ModuleNotFoundError:
        pytest.fail("requests is not installed (discord.SyncWebhook needs it): make test installs it")


class _ScrubbingFormatter(logging.Formatter):
    """Wraps pytest's own formatter: its report of captured logs never shows the token either."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.scrubber = Scrubber([TOKEN])

    def format(self, record: logging.LogRecord) -> str:
        return self.scrubber.scrub(self.inner.format(record))


@pytest.fixture(autouse=True)
def pytest_log_reports_redacted(request: pytest.FixtureRequest) -> Iterator[None]:
    """pytest's log capture runs before the product's handlers: scrub what it would print.

    Only the formatting is wrapped (records are left as they are), so the product's own filter
    still sees raw records and is what the tests check.
    """
    plugin = request.config.pluginmanager.get_plugin("logging-plugin")
    names = ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler")
    handlers = [h for h in (getattr(plugin, n, None) for n in names) if isinstance(h, logging.Handler)]
    saved = [(h, h.formatter) for h in handlers]
    for handler, formatter in saved:
        handler.setFormatter(_ScrubbingFormatter(formatter))
    yield
    for handler, formatter in saved:
        handler.setFormatter(formatter)  # type: ignore[arg-type]


@contextlib.contextmanager
def only_product_handlers() -> Iterator[None]:
    """The root logger with the product's handlers alone, as in production (pytest's capture
    handler raises on a record that does not format, before the product's handlers see it)."""
    root = logging.getLogger()
    others = [h for h in root.handlers if not getattr(h, MARKER, False)]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


def read_logs(path: Path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return "".join(p.read_text(encoding="utf-8") for p in sorted(path.parent.glob("debug.log*")))


def message_text(message: Any) -> str:
    files = "".join(data.decode("utf-8", "replace") + name for name, data in message.files)
    return str(message.text) + files
