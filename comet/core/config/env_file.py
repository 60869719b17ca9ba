"""``.env`` files: read as UTF-8 and parsed as ``KEY=VALUE`` lines, with errors that name the file,
the line and the variable but never show a value (the line may hold a secret)."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from comet.core.config.errors import ConfigError


def read_env_file(path: Path) -> str:
    """The text of a settings file; ConfigError (never a traceback) if it is unreadable or not UTF-8.

    The error names the file, the line and, when the line has a valid ``KEY=``, the variable; it
    never shows the bytes (the line may hold a secret).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the settings file ({exc.strerror or exc}); "
            "fix its permissions or choose another file with --env-file"
        ) from None
    if data.startswith(codecs.BOM_UTF8):  # some Windows editors write one: fine, and not a key
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        head = data[line_start : exc.start].decode("utf-8", errors="replace").strip()
        if head.startswith("export "):
            head = head[len("export ") :].lstrip()
        key, sep, _ = head.partition("=")
        key = key.strip()
        where = f" ({key})" if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else ""
        raise ConfigError(
            f"{path}:{number}{where}: expected UTF-8 text, got bytes that are not UTF-8; "
            "save the file as UTF-8"
        ) from None


def parse_env_file(text: str, *, source: str = ".env") -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments, optional ``export``, single or double quotes.

    Double-quoted values understand ``\\n``, ``\\t``, ``\\"`` and ``\\\\``; unquoted values end at an
    inline `` #`` comment. Only what a .env needs, without an extra dependency.
    """
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"{source}:{number}: expected KEY=VALUE, got a line without a valid key")
        result[key] = _parse_env_value(value.strip(), source=source, number=number)
    return result


def _parse_env_value(value: str, *, source: str, number: int) -> str:
    if value[:1] in {'"', "'"}:
        quote = value[0]
        end = _closing_quote(value, quote)
        if end < 0:
            raise ConfigError(f"{source}:{number}: expected a closing {quote} quote")
        inner = value[1:end]
        if quote == '"':
            inner = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), inner)
        return inner
    comment = re.search(r"\s#", value)
    return (value[: comment.start()] if comment else value).strip()


def _closing_quote(value: str, quote: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\" and quote == '"':
            i += 2
            continue
        if value[i] == quote:
            return i
        i += 1
    return -1
