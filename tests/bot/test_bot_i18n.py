"""One catalogue, two languages: every key in both, same placeholders, sane fallbacks."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from comet.core.i18n import LOCALES_DIR, SUPPORTED, Translator, load_catalogue, t


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def test_both_locales_have_the_same_keys_and_placeholders() -> None:
    ja, en = load_catalogue("ja"), load_catalogue("en")
    assert ja, "the Japanese catalogue is empty"
    assert sorted(set(ja) - set(en)) == [], "keys missing in en"
    assert sorted(set(en) - set(ja)) == [], "keys missing in ja"
    mismatched = [key for key in ja if placeholders(ja[key]) != placeholders(en[key])]
    assert mismatched == []


def test_every_catalogue_file_exists_in_both_locales() -> None:
    files = {loc: sorted(p.name for p in (LOCALES_DIR / loc).glob("*.json")) for loc in SUPPORTED}
    assert files["ja"] == files["en"]
    assert "core.json" in files["ja"]


def test_core_keys_are_namespaced() -> None:
    data = json.loads((LOCALES_DIR / "ja" / "core.json").read_text(encoding="utf-8"))
    assert all(key.startswith("core.") for key in data)


def test_translate_and_format() -> None:
    ja, en = Translator("ja"), Translator("en")
    assert ja.t("core.latency.ms", ms=12.345) == "12.3 ms"
    assert "ポン" in ja.t("core.ping", latency="1 ms")
    assert en.t("core.ping", latency="1 ms") == "🏓 Pong! Gateway latency: 1 ms"
    # A placeholder the caller forgot stays visible instead of raising.
    assert "{latency}" in en.t("core.ping")
    assert en.with_locale("ja").t("core.health.status.healthy") == "正常"


def test_fallbacks(tmp_path: Path) -> None:
    (tmp_path / "ja").mkdir()
    (tmp_path / "en").mkdir()
    (tmp_path / "ja" / "x.json").write_text('{"x": {"only_ja": "ja {n}"}}', encoding="utf-8")
    (tmp_path / "en" / "x.json").write_text('{"x.only_en": "en"}', encoding="utf-8")
    en = Translator("en", directory=tmp_path)
    assert en.t("x.only_ja", n=1) == "ja 1"  # missing in en -> ja
    assert Translator("ja", directory=tmp_path).t("x.only_en") == "en"
    assert en.t("x.nowhere") == "x.nowhere"
    with pytest.raises(ValueError, match="unsupported locale"):
        Translator("fr")


def test_helper_uses_the_bots_translator() -> None:
    from prometheus_client import CollectorRegistry

    from comet.core.bot import CometBot
    from comet.core.config import Settings
    from comet.core.telemetry import Telemetry

    settings = Settings(locale="en", extensions=())
    bot = CometBot(settings, Telemetry.create(CollectorRegistry(), settings))
    assert t(bot, "core.health.status.healthy") == "healthy"
    bot.set_locale("ja")
    assert t(bot, "core.health.status.healthy") == "正常"
    assert t(object(), "core.health.status.healthy") == "正常"  # no bot: Japanese, the default
