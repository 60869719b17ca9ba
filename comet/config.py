"""Settings of the bot, read once from ``COMET_*`` environment variables and an optional ``.env`` file.

The environment wins over the file, so a deployment can override a checked-in ``.env``. Every value
is validated here: a bad one raises :class:`ConfigError` naming the variable and what it expects, and
start-up stops there instead of failing later somewhere less obvious. Secret values (the token, the
metrics password, extra secrets) are never echoed in those messages.
"""

from __future__ import annotations

import codecs
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from comet.i18n import SUPPORTED as LOCALES
from discord_emulator.endpoints import DISCORD_API_BASE, DISCORD_GATEWAY_URL

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Every extension the bot knows, in load order. ``comet.cogs.demo`` is added only by the offline demo.
DEFAULT_EXTENSIONS: tuple[str, ...] = (
    "comet.cogs.monitoring",
    "comet.cogs.debug",
    "comet.cogs.reload",
    "comet.cogs.community",
    "comet.cogs.moderation",
    "comet.cogs.omikuji",
)
DEMO_EXTENSION = "comet.cogs.demo"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_EXTENSION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable and what it expects."""


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)
    prefix: str = "!"
    owner_ids: frozenset[int] = frozenset()
    debug_mode: bool = False
    #: How long the owner's ``debug`` code may run before it is cancelled.
    debug_timeout: float = 10.0
    #: In debug mode, reload an extension when its file changes (the seed's ``watch_module``).
    reload_watch: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    metrics_basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    discord_api_base: str = DISCORD_API_BASE
    discord_gateway_url: str = DISCORD_GATEWAY_URL
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    locale: str = "ja"
    log_path: str = "logs/comet.log"
    log_level: str = "INFO"
    slow_threshold: float = 1.0
    #: On SIGTERM/SIGINT, how long commands already running may take to finish before they are cancelled.
    shutdown_grace_seconds: float = 5.0
    database_path: str = "data/comet.db"
    mod_log_channel: str = "mod-log"
    moderator_role: str = "Moderator"
    antispam_messages: int = 5
    antispam_seconds: float = 5.0
    antispam_timeout_seconds: int = 300
    demo_rate: float = 2.0
    #: The demo's defaults stay under the alert thresholds (5% slow or failing): a newcomer's
    #: first `make stack` must not page. Raise them to watch an alert fire.
    demo_slow_ratio: float = 0.015
    demo_slow_seconds: float = 1.5
    demo_fail_ratio: float = 0.015
    emulator_port: int = 0
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    #: Push the slash commands to Discord at start-up (one bulk overwrite per start).
    sync_commands: bool = True
    #: Extra values scrubbed from everything sent to Discord and from the logs (besides the token).
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        # Cross-field rules; checked here so that Settings(...) built in code is validated too.
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ConfigError("COMET_SHARD_IDS: expected COMET_SHARD_COUNT to be set as well")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad:
                raise ConfigError(
                    f"COMET_SHARD_IDS: expected shard ids in 0..{self.shard_count - 1}, got {bad}"
                )
        if self.demo_slow_ratio + self.demo_fail_ratio > 1.0:
            raise ConfigError(
                "COMET_DEMO_SLOW_RATIO, COMET_DEMO_FAIL_RATIO: expected ratios that add up to at most 1, "
                f"got {self.demo_slow_ratio} + {self.demo_fail_ratio}"
            )
        if self.locale not in LOCALES:
            raise ConfigError(f"COMET_LOCALE: expected one of {', '.join(LOCALES)}, got {self.locale!r}")

    @property
    def effective_shard_ids(self) -> tuple[int, ...]:
        """The shards this process runs: COMET_SHARD_IDS, else all of COMET_SHARD_COUNT (default 1)."""
        if self.shard_ids is not None:
            return self.shard_ids
        return tuple(range(self.shard_count or 1))

    @property
    def all_secrets(self) -> tuple[str, ...]:
        """Every secret value to scrub: the token, the metrics password, the extra secrets."""
        values = [self.token or ""]
        if self.metrics_basic_auth is not None:
            values.append(self.metrics_basic_auth[1])
        values.extend(self.secrets)
        return tuple(v for v in values if v)

    def describe(self) -> dict[str, Any]:
        """Every setting for display (``comet config check``): secrets shown only as set / not set."""
        hidden = {"token", "metrics_basic_auth", "secrets"}
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in hidden:
                out[f.name] = "(set)" if value else "(not set)"
            elif isinstance(value, frozenset):
                out[f.name] = sorted(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
    ) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) over the ``env_file`` (if it exists)."""
        env: dict[str, str] = {}
        if env_file is not None:
            path = Path(env_file)
            if path.is_file():
                env.update(parse_env_file(read_env_file(path), source=str(path)))
        env.update(os.environ if environ is None else environ)
        return _settings_from_mapping(env)


# -- .env parsing ----------------------------------------------------------------------------------


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


# -- typed readers -----------------------------------------------------------------------------------


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def get(
        self, name: str, default: T, parse: Callable[[str], T], expected: str, *, secret: bool = False
    ) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            shown = "a value that is not" if secret else f"{value!r}"
            hint = f" ({exc.hint})" if isinstance(exc, _NumberSyntax) else ""
            raise ConfigError(f"{name}: expected {expected}, got {shown}{hint}") from None


class _NumberSyntax(ValueError):
    """A number not written the one plain way (ASCII digits): the error adds ``hint``."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


#: Only ASCII digits: Python's int()/float() also take "+5", "1_000", full-width "１２３" and other
#: scripts' digits, "nan" and "inf", none of which an operator means in a port, an id or a count.
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


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = _ascii_int(text)
        if number < low or (high is not None and number > high):
            raise ValueError(text)
        return number

    return parse


def _float_in(low: float, high: float | None = None, *, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        number = _ascii_float(text)
        if not math.isfinite(number):  # "1e999" overflows to inf
            raise ValueError(text)
        if number < low or (low_open and number == low) or (high is not None and number > high):
            raise ValueError(text)
        return number

    return parse


def _bool(text: str) -> bool:
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


def _snowflakes(text: str) -> frozenset[int]:
    ids = _int_list(text)
    if any(i <= 0 for i in ids):
        raise ValueError(text)
    return frozenset(ids)


def _shard_ids(text: str) -> tuple[int, ...]:
    ids = _int_list(text)
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(text)
    return tuple(sorted(ids))


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.upper() if upper else text.lower()
        if value not in options:
            raise ValueError(text)
        return value

    return parse


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not re.fullmatch(rf"(?:{'|'.join(schemes)})://[^\s/]+(?:/\S*)?", text):
            raise ValueError(text)
        return text

    return parse


def _token(text: str) -> str:
    if any(c.isspace() for c in text) or len(text) < 8:
        raise ValueError("token")
    return text


def _basic_auth(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth")
    return user, password


def _extensions(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names or not all(_EXTENSION_RE.fullmatch(n) for n in names):
        raise ValueError(text)
    return names


def _secrets(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _file_path(text: str) -> str:
    # The operating system refuses a NUL in a path, and Python raises ValueError, not OSError, for it.
    if "\x00" in text:
        raise ValueError(text)
    return text


def _host(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", text):
        raise ValueError(text)
    return text


def _settings_from_mapping(env: Mapping[str, str]) -> Settings:
    r = _Reader(env)
    d = Settings()
    # The prefix keeps inner spaces (e.g. "c! ") but not surrounding blanks from .env formatting.
    prefix = env.get("COMET_PREFIX")
    return Settings(
        token=r.get("COMET_TOKEN", d.token, _token, "a Discord bot token (no spaces)", secret=True),
        prefix=d.prefix if prefix is None or prefix == "" else _check_prefix(prefix),
        owner_ids=r.get("COMET_OWNER_IDS", d.owner_ids, _snowflakes, "comma-separated Discord user ids"),
        debug_mode=r.get("COMET_DEBUG_MODE", d.debug_mode, _bool, "true/false (1/0, yes/no, on/off)"),
        debug_timeout=r.get(
            "COMET_DEBUG_TIMEOUT", d.debug_timeout, _float_in(0.0, 3600.0, low_open=True), "seconds > 0"
        ),
        reload_watch=r.get("COMET_RELOAD_WATCH", d.reload_watch, _bool, "true/false (1/0, yes/no, on/off)"),
        metrics_host=r.get("COMET_METRICS_HOST", d.metrics_host, _host, "a host name or IP address"),
        metrics_port=r.get("COMET_METRICS_PORT", d.metrics_port, _int_in(0, 65535), "a port 0-65535"),
        metrics_basic_auth=r.get(
            "COMET_METRICS_BASIC_AUTH", d.metrics_basic_auth, _basic_auth, "user:password", secret=True
        ),
        discord_api_base=r.get(
            "COMET_DISCORD_API_BASE", d.discord_api_base, _url(("http", "https")), "an http(s):// URL"
        ),
        discord_gateway_url=r.get(
            "COMET_DISCORD_GATEWAY_URL", d.discord_gateway_url, _url(("ws", "wss")), "a ws(s):// URL"
        ),
        shard_count=r.get("COMET_SHARD_COUNT", d.shard_count, _int_in(1), "an integer >= 1"),
        shard_ids=r.get(
            "COMET_SHARD_IDS", d.shard_ids, _shard_ids, "comma-separated distinct shard ids >= 0"
        ),
        locale=r.get("COMET_LOCALE", d.locale, _choice(LOCALES), "one of ja, en"),
        log_path=r.get("COMET_LOG_PATH", d.log_path, _file_path, "a file path (no NUL character)"),
        log_level=r.get("COMET_LOG_LEVEL", d.log_level, _choice(LOG_LEVELS, upper=True), _levels()),
        slow_threshold=r.get(
            "COMET_SLOW_THRESHOLD", d.slow_threshold, _float_in(0.0, low_open=True), "seconds > 0"
        ),
        shutdown_grace_seconds=r.get(
            "COMET_SHUTDOWN_GRACE_SECONDS",
            d.shutdown_grace_seconds,
            _float_in(0.0, 600.0),
            "seconds from 0 to 600",
        ),
        database_path=r.get(
            "COMET_DATABASE_PATH", d.database_path, _file_path, "a file path (no NUL character)"
        ),
        mod_log_channel=r.raw("COMET_MOD_LOG_CHANNEL") or d.mod_log_channel,
        moderator_role=r.raw("COMET_MODERATOR_ROLE") or d.moderator_role,
        antispam_messages=r.get(
            "COMET_ANTISPAM_MESSAGES", d.antispam_messages, _int_in(2), "an integer >= 2"
        ),
        antispam_seconds=r.get(
            "COMET_ANTISPAM_SECONDS", d.antispam_seconds, _float_in(0.0, low_open=True), "seconds > 0"
        ),
        antispam_timeout_seconds=r.get(
            "COMET_ANTISPAM_TIMEOUT_SECONDS",
            d.antispam_timeout_seconds,
            _int_in(1, 28 * 24 * 3600),
            "seconds from 1 to 2419200 (28 days, Discord's limit)",
        ),
        demo_rate=r.get(
            "COMET_DEMO_RATE",
            d.demo_rate,
            _float_in(0.0, 1000.0, low_open=True),
            "commands per second, 0-1000",
        ),
        demo_slow_ratio=r.get("COMET_DEMO_SLOW_RATIO", d.demo_slow_ratio, _float_in(0.0, 1.0), "a ratio 0-1"),
        demo_slow_seconds=r.get(
            "COMET_DEMO_SLOW_SECONDS", d.demo_slow_seconds, _float_in(0.0, 10.0), "seconds from 0 to 10"
        ),
        demo_fail_ratio=r.get("COMET_DEMO_FAIL_RATIO", d.demo_fail_ratio, _float_in(0.0, 1.0), "a ratio 0-1"),
        emulator_port=r.get("COMET_EMULATOR_PORT", d.emulator_port, _int_in(0, 65535), "a port 0-65535"),
        extensions=r.get(
            "COMET_EXTENSIONS", d.extensions, _extensions, "comma-separated extension module names"
        ),
        sync_commands=r.get(
            "COMET_SYNC_COMMANDS", d.sync_commands, _bool, "true/false (1/0, yes/no, on/off)"
        ),
        secrets=r.get("COMET_SECRETS", d.secrets, _secrets, "comma-separated secret values", secret=True),
    )


def _check_prefix(prefix: str) -> str:
    if prefix.strip() == "" or len(prefix) > 10:
        raise ConfigError(f"COMET_PREFIX: expected 1-10 characters that are not all blank, got {prefix!r}")
    return prefix


def _levels() -> str:
    return "one of " + ", ".join(LOG_LEVELS)
