"""Settings from COMET_* variables and .env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from processes import child_env, run_python

from comet.core.config import DEFAULT_EXTENSIONS, ConfigError, Settings, parse_env_file


def settings(**env: str) -> Settings:
    return Settings.from_env(env, env_file=None)


def test_defaults_without_any_variable() -> None:
    s = settings()
    assert s.token is None
    assert s.prefix == "!"
    assert s.locale == "ja"
    assert s.metrics_host == "127.0.0.1"
    assert s.metrics_port == 9108
    assert s.debug_mode is False
    assert s.shard_count is None and s.shard_ids is None
    assert s.effective_shard_ids == (0,)
    assert s.extensions == DEFAULT_EXTENSIONS
    assert s.slow_threshold == 1.0


def test_every_variable_is_read() -> None:
    s = settings(
        COMET_TOKEN="abc.def.ghi-jkl",
        COMET_PREFIX="c!",
        COMET_OWNER_IDS="11, 22",
        COMET_DEBUG_MODE="yes",
        COMET_DEBUG_TIMEOUT="2.5",
        COMET_RELOAD_WATCH="on",
        COMET_METRICS_HOST="0.0.0.0",
        COMET_METRICS_PORT="0",
        COMET_METRICS_BASIC_AUTH="prom:s3cret",
        COMET_DISCORD_API_BASE="http://127.0.0.1:9/api/v10",
        COMET_DISCORD_GATEWAY_URL="ws://127.0.0.1:9/gateway",
        COMET_SHARD_COUNT="4",
        COMET_SHARD_IDS="3,1",
        COMET_LOCALE="EN",
        COMET_LOG_PATH="/tmp/x.log",
        COMET_LOG_LEVEL="debug",
        COMET_SLOW_THRESHOLD="0.5",
        COMET_DATABASE_PATH="/tmp/c.db",
        COMET_MOD_LOG_CHANNEL="modlog",
        COMET_MODERATOR_ROLE="Mods",
        COMET_ANTISPAM_MESSAGES="7",
        COMET_ANTISPAM_SECONDS="3.5",
        COMET_ANTISPAM_TIMEOUT_SECONDS="60",
        COMET_DEMO_RATE="10",
        COMET_DEMO_SLOW_RATIO="0.2",
        COMET_DEMO_SLOW_SECONDS="2",
        COMET_DEMO_FAIL_RATIO="0.1",
        COMET_EMULATOR_PORT="8765",
        COMET_EXTENSIONS="comet.features.cogs.monitoring, comet.features.cogs.demo",
        COMET_SYNC_COMMANDS="0",
        COMET_SECRETS="one,two",
    )
    assert s.token == "abc.def.ghi-jkl"
    assert s.prefix == "c!"
    assert s.owner_ids == frozenset({11, 22})
    assert s.debug_mode is True and s.debug_timeout == 2.5 and s.reload_watch is True
    assert (s.metrics_host, s.metrics_port, s.metrics_basic_auth) == ("0.0.0.0", 0, ("prom", "s3cret"))
    assert s.discord_api_base == "http://127.0.0.1:9/api/v10"
    assert s.discord_gateway_url == "ws://127.0.0.1:9/gateway"
    assert s.shard_count == 4 and s.shard_ids == (1, 3) and s.effective_shard_ids == (1, 3)
    assert s.locale == "en" and s.log_level == "DEBUG" and s.log_path == "/tmp/x.log"
    assert s.slow_threshold == 0.5 and s.database_path == "/tmp/c.db"
    assert (s.mod_log_channel, s.moderator_role) == ("modlog", "Mods")
    assert (s.antispam_messages, s.antispam_seconds, s.antispam_timeout_seconds) == (7, 3.5, 60)
    assert (s.demo_rate, s.demo_slow_ratio, s.demo_slow_seconds, s.demo_fail_ratio) == (10, 0.2, 2, 0.1)
    assert s.emulator_port == 8765
    assert s.extensions == ("comet.features.cogs.monitoring", "comet.features.cogs.demo")
    assert s.sync_commands is False
    assert set(s.all_secrets) == {"abc.def.ghi-jkl", "s3cret", "one", "two"}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("COMET_METRICS_PORT", "abc", "a port 0-65535"),
        ("COMET_METRICS_PORT", "70000", "a port 0-65535"),
        ("COMET_DEBUG_MODE", "maybe", "true/false"),
        ("COMET_OWNER_IDS", "12,x", "comma-separated Discord user ids"),
        ("COMET_SHARD_COUNT", "0", "an integer >= 1"),
        ("COMET_LOCALE", "fr", "one of ja, en"),
        ("COMET_LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("COMET_SLOW_THRESHOLD", "-1", "seconds > 0"),
        ("COMET_SLOW_THRESHOLD", "nan", "seconds > 0"),
        ("COMET_DISCORD_API_BASE", "ftp://x", "an http(s):// URL"),
        ("COMET_DISCORD_GATEWAY_URL", "http://x", "a ws(s):// URL"),
        ("COMET_DEMO_RATE", "0", "commands per second"),
        ("COMET_DEMO_FAIL_RATIO", "1.5", "a ratio 0-1"),
        ("COMET_EXTENSIONS", "comet..cogs", "comma-separated extension module names"),
        ("COMET_ANTISPAM_TIMEOUT_SECONDS", "99999999", "28 days"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_expects(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(**{name: value})
    message = str(info.value)
    assert message.startswith(f"{name}: expected ")
    assert expected in message
    assert repr(value) in message


def test_secrets_are_never_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        settings(COMET_TOKEN="has spaces in the token")
    assert "COMET_TOKEN" in str(info.value) and "spaces in the" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        settings(COMET_METRICS_BASIC_AUTH="nocolonpassword")
    assert "COMET_METRICS_BASIC_AUTH: expected user:password" in str(info.value)
    assert "nocolonpassword" not in str(info.value)
    s = settings(COMET_TOKEN="abc.def.ghi", COMET_METRICS_BASIC_AUTH="u:pw123456")
    assert "abc.def.ghi" not in repr(s) and "pw123456" not in repr(s)
    assert s.describe()["token"] == "(set)"


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match="COMET_SHARD_IDS: expected COMET_SHARD_COUNT"):
        settings(COMET_SHARD_IDS="0")
    with pytest.raises(ConfigError, match=r"COMET_SHARD_IDS: expected shard ids in 0\.\.1"):
        settings(COMET_SHARD_COUNT="2", COMET_SHARD_IDS="0,2")
    with pytest.raises(ConfigError, match="COMET_DEMO_SLOW_RATIO, COMET_DEMO_FAIL_RATIO"):
        settings(COMET_DEMO_SLOW_RATIO="0.7", COMET_DEMO_FAIL_RATIO="0.4")


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "export COMET_PREFIX='?'\n"
        'COMET_LOCALE="en"  \n'
        "COMET_METRICS_PORT=9200 # inline comment\n"
        "COMET_LOG_PATH=\n",
        encoding="utf-8",
    )
    s = Settings.from_env({"COMET_METRICS_PORT": "9300"}, env_file=env_file)
    assert (s.prefix, s.locale, s.metrics_port, s.log_path) == ("?", "en", 9300, "logs/comet.log")
    assert Settings.from_env({}, env_file=tmp_path / "missing.env").prefix == "!"


def test_env_file_syntax() -> None:
    parsed = parse_env_file("A=1\nB=\"x\\ny # not a comment\"\nC='raw \\n'\n\n  D = spaced  \n")
    assert parsed == {"A": "1", "B": "x\ny # not a comment", "C": "raw \\n", "D": "spaced"}
    with pytest.raises(ConfigError, match=r"\.env:1: expected KEY=VALUE"):
        parse_env_file("just words")
    with pytest.raises(ConfigError, match=r"\.env:2: expected a closing"):
        parse_env_file('A=1\nB="open')


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "comet", *args, env=child_env(**env), cwd=cwd, timeout=60)


def test_cli_config_check(tmp_path: Path) -> None:
    ok = _cli(
        "config",
        "check",
        env={"COMET_TOKEN": "abc.def.secret-part", "COMET_EXTENSIONS": "comet.features.cogs.monitoring"},
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout
    assert "token = (set)" in ok.stdout
    assert "secret-part" not in ok.stdout + ok.stderr

    bad = _cli("config", "check", env={"COMET_METRICS_PORT": "http"}, cwd=tmp_path)
    assert bad.returncode == 2
    assert "COMET_METRICS_PORT: expected a port 0-65535, got 'http'" in bad.stderr

    missing = _cli("config", "check", env={"COMET_EXTENSIONS": "comet.features.cogs.nope"}, cwd=tmp_path)
    assert missing.returncode == 2
    assert "COMET_EXTENSIONS" in missing.stderr and "comet.features.cogs.nope" in missing.stderr

    (tmp_path / "custom.env").write_text("COMET_LOCALE=de\n", encoding="utf-8")
    from_file = _cli("--env-file", "custom.env", "config", "check", env={}, cwd=tmp_path)
    assert from_file.returncode == 2 and "COMET_LOCALE: expected one of ja, en, got 'de'" in from_file.stderr


def test_cli_run_refuses_bad_settings_before_starting(tmp_path: Path) -> None:
    bad = _cli("run", env={"COMET_SHARD_IDS": "0"}, cwd=tmp_path)
    assert bad.returncode == 2
    assert "COMET_SHARD_IDS: expected COMET_SHARD_COUNT" in bad.stderr
