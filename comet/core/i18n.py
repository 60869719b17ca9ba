"""One message catalogue for every user-facing reply, Japanese by default and English by setting.

Each area owns its own file per locale (``comet/locales/ja/core.json``, ``.../debug.json``,
``.../community.json``); the loader merges every ``*.json`` of a locale into one flat mapping of
namespaced keys ("core.ping", "debug.disabled", ...). A key missing in one locale falls back to the
other one, and a key missing everywhere shows as the key itself (visible in a test, never a crash).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
SUPPORTED = ("ja", "en")
DEFAULT_LOCALE = "ja"


def load_catalogue(locale: str, directory: Path = LOCALES_DIR) -> dict[str, str]:
    """Every key of ``locale``, merged from all its JSON files (sorted by file name)."""
    merged: dict[str, str] = {}
    folder = directory / locale
    if not folder.is_dir():
        return merged
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of key -> message")
        for key, value in _flatten(data):
            if key in merged:
                log.warning("i18n key %s defined twice for %s (%s wins)", key, locale, path.name)
            merged[key] = value
    return merged


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    # Files may be flat ({"core.ping": "..."}) or nested ({"core": {"ping": "..."}}); both give "core.ping".
    items: list[tuple[str, str]] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            items.extend(_flatten(value, f"{full}."))
        elif isinstance(value, str):
            items.append((full, value))
        else:
            raise ValueError(f"i18n key {full}: expected a string, got {type(value).__name__}")
    return items


class _Lenient(dict[str, Any]):
    """Format arguments where a placeholder the caller did not pass stays visible, not a KeyError."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Translator:
    """``Translator("ja").t("core.ping", ms=12)``; ``bot.i18n`` is the bot's translator."""

    def __init__(self, locale: str = DEFAULT_LOCALE, directory: Path = LOCALES_DIR) -> None:
        if locale not in SUPPORTED:
            raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(SUPPORTED)}")
        self.locale = locale
        self.directory = directory
        self._catalogues: dict[str, dict[str, str]] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read every catalogue file (after an extension's strings changed)."""
        self._catalogues = {loc: load_catalogue(loc, self.directory) for loc in SUPPORTED}

    def with_locale(self, locale: str) -> Translator:
        other = Translator.__new__(Translator)
        if locale not in SUPPORTED:
            raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(SUPPORTED)}")
        other.locale = locale
        other.directory = self.directory
        other._catalogues = self._catalogues
        return other

    def keys(self, locale: str | None = None) -> set[str]:
        return set(self._catalogues.get(locale or self.locale, {}))

    def has(self, key: str) -> bool:
        return any(key in catalogue for catalogue in self._catalogues.values())

    def template(self, key: str, locale: str | None = None) -> str:
        wanted = locale or self.locale
        found = self._catalogues.get(wanted, {}).get(key)
        if found is not None:
            return found
        for other in SUPPORTED:
            found = self._catalogues.get(other, {}).get(key)
            if found is not None:
                return found
        log.warning("i18n key %s is missing in every locale", key)
        return key

    def t(self, key: str, /, **kwargs: Any) -> str:
        """The message for ``key`` in this translator's locale, formatted with ``kwargs``."""
        text = self.template(key)
        if not kwargs:
            return text
        try:
            return text.format_map(_Lenient(kwargs))
        except (ValueError, IndexError, AttributeError):
            log.warning("i18n key %s has a bad format string", key)
            return text

    __call__ = t


def translator_for(obj: Any) -> Translator:
    """The translator of a bot, a Context or an Interaction (its client); Japanese if none is set."""
    bot = getattr(obj, "bot", None) or getattr(obj, "client", None) or obj
    found = getattr(bot, "i18n", None)
    if isinstance(found, Translator):
        return found
    return _fallback()


_FALLBACK: Translator | None = None


def _fallback() -> Translator:
    global _FALLBACK
    if _FALLBACK is None:
        _FALLBACK = Translator(DEFAULT_LOCALE)
    return _FALLBACK


def t(obj: Any, key: str, /, **kwargs: Any) -> str:
    """``t(ctx, "core.ping", ms=3)``: translate with the translator of ``ctx``'s bot."""
    return translator_for(obj).t(key, **kwargs)
