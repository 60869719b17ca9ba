"""Parsers of setting values: each takes the variable's text and returns the typed value or raises
``ValueError``; the settings module turns that into a ``ConfigError`` naming the variable.

Numbers accept only ASCII digits: Python's ``int()``/``float()`` also take "+5", "1_000", full-width
"１２３" and other scripts' digits, "nan" and "inf", none of which an operator means in a port, an
id or a count.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

from comet.core.config.errors import ConfigError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_EXTENSION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_value(name: str, text: str, parse: Callable[[str], T], expected: str, *, secret: bool) -> T:
    """``parse(text)``, or a ConfigError naming ``name`` and what it expects (never a secret's text)."""
    try:
        return parse(text)
    except (ValueError, TypeError) as exc:
        shown = "a value that is not" if secret else f"{text!r}"
        hint = f" ({exc.hint})" if isinstance(exc, _NumberSyntax) else ""
        raise ConfigError(f"{name}: expected {expected}, got {shown}{hint}") from None


class _NumberSyntax(ValueError):
    """A number not written the one plain way (ASCII digits): the error adds ``hint``."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


_ASCII_INT = re.compile(r"[0-9]+")
_ASCII_FLOAT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT_HINT = "write whole numbers with the digits 0-9 only: no sign, underscore or decimal point"
_FLOAT_HINT = "write numbers with the digits 0-9 and an optional decimal point only, like 2 or 0.5"


def _ascii_int(text: str) -> int:
    if not _ASCII_INT.fullmatch(text):
        raise _NumberSyntax(_INT_HINT)
    return int(text, 10)


def _ascii_float(text: str) -> float:
    if not _ASCII_FLOAT.fullmatch(text):
        raise _NumberSyntax(_FLOAT_HINT)
    return float(text)


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = _ascii_int(text)
        if number < low or (high is not None and number > high):
            raise ValueError(text)
        return number

    return parse


def float_in(low: float, high: float | None = None, *, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        number = _ascii_float(text)
        if not math.isfinite(number):  # "1e999" overflows to inf
            raise ValueError(text)
        if number < low or (low_open and number == low) or (high is not None and number > high):
            raise ValueError(text)
        return number

    return parse


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _int_list(text: str) -> tuple[int, ...]:
    items = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not items:
        raise ValueError(text)
    return tuple(_ascii_int(item) for item in items)


def snowflakes(text: str) -> frozenset[int]:
    ids = _int_list(text)
    if any(i <= 0 for i in ids):
        raise ValueError(text)
    return frozenset(ids)


def shard_ids(text: str) -> tuple[int, ...]:
    ids = _int_list(text)
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(text)
    return tuple(sorted(ids))


def choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.upper() if upper else text.lower()
        if value not in options:
            raise ValueError(text)
        return value

    return parse


def url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not re.fullmatch(rf"(?:{'|'.join(schemes)})://[^\s/]+(?:/\S*)?", text):
            raise ValueError(text)
        return text

    return parse


def token(text: str) -> str:
    if any(c.isspace() for c in text) or len(text) < 8:
        raise ValueError("token")
    return text


def basic_auth(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth")
    return user, password


def extensions(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names or not all(_EXTENSION_RE.fullmatch(n) for n in names):
        raise ValueError(text)
    return names


def secret_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def file_path(text: str) -> str:
    # The operating system refuses a NUL in a path, and Python raises ValueError, not OSError, for it.
    if "\x00" in text:
        raise ValueError(text)
    return text


def host(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", text):
        raise ValueError(text)
    return text


def text(value: str) -> str:
    return value


def prefix(value: str) -> str:
    # Read unstripped: a prefix keeps inner and trailing spaces ("c! "), but cannot be all blank.
    if value.strip() == "" or len(value) > 10:
        raise ValueError(value)
    return value
