"""Settings of the bot, read once from ``COMET_*`` environment variables and an optional ``.env`` file.

Each field is declared once, with everything about it: its variable, its parser, what a bad value is
told it expects, its help text (``.env.example`` is generated from these, ``comet config check``
lists them) and whether it is a secret (never echoed, in an error message or anywhere else). The
environment wins over the file, so a deployment can override a checked-in ``.env``; a bad value
raises ``ConfigError`` naming the variable and start-up stops there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from comet.core.config import parsers as p
from comet.core.config.env_file import parse_env_file, read_env_file
from comet.core.config.errors import ConfigError
from comet.core.i18n import SUPPORTED as LOCALES
from discord_emulator.endpoints import DISCORD_API_BASE, DISCORD_GATEWAY_URL
from instrumentation.metrics import LOG_LEVELS

#: Every extension the bot knows, in load order (``comet.features.cogs.demo``: the offline demo only).
DEFAULT_EXTENSIONS: tuple[str, ...] = (
    "comet.features.cogs.monitoring",
    "comet.features.cogs.debug",
    "comet.features.cogs.trace",
    "comet.features.cogs.profile",
    "comet.features.cogs.reload",
    "comet.features.cogs.community",
    "comet.features.cogs.moderation",
    "comet.features.cogs.omikuji",
)
DEMO_EXTENSION = "comet.features.cogs.demo"

BOOL = "true/false (1/0, yes/no, on/off)"
PATH = "a file path (no NUL character)"


@dataclass(frozen=True, slots=True)
class Variable:
    """How one setting is read from its variable and shown in ``.env.example``."""

    name: str
    parse: Callable[[str], Any]
    expected: str
    help: str
    secret: bool = False
    section: str | None = None  #: starts a group in .env.example, under this comment
    example: str | None = None  #: the value .env.example shows (default: the default's text)
    strip: bool = True  #: False keeps surrounding blanks (a prefix like "c! ")


def setting(
    default: Any, name: str, parse: Callable[[str], Any], expected: str, help: str, **options: Any
) -> Any:
    variable = Variable(name, parse, expected, help, **options)
    return field(default=default, repr=not variable.secret, metadata={"variable": variable})


@dataclass(frozen=True)
class Settings:
    token: str | None = setting(
        None,
        "COMET_TOKEN",
        p.token,
        "a Discord bot token (no spaces)",
        "Discord bot token. Leave empty to run the offline demo (local Discord emulator, synthetic members).",
        secret=True,
    )
    prefix: str = setting(
        "!",
        "COMET_PREFIX",
        p.prefix,
        "1-10 characters that are not all blank",
        "Command prefix for text commands (slash commands work as well).",
        strip=False,
    )
    owner_ids: frozenset[int] = setting(
        frozenset(),
        "COMET_OWNER_IDS",
        p.snowflakes,
        "comma-separated Discord user ids",
        "Extra owners (comma-separated user ids), besides the application's owner / team members.",
    )
    debug_mode: bool = setting(
        False,
        "COMET_DEBUG_MODE",
        p.boolean,
        BOOL,
        "The owner's `debug` eval command is refused unless this is on. Never leave it on in production.",
    )
    debug_timeout: float = setting(
        10.0,
        "COMET_DEBUG_TIMEOUT",
        p.float_in(0.0, 3600.0, low_open=True),
        "seconds > 0",
        "Seconds before a `debug` run is cancelled.",
    )
    reload_watch: bool = setting(
        False,
        "COMET_RELOAD_WATCH",
        p.boolean,
        BOOL,
        "In debug mode, reload an extension when its file changes.",
    )
    locale: str = setting(
        "ja", "COMET_LOCALE", p.choice(LOCALES), "one of ja, en", "Reply language: ja or en."
    )
    metrics_host: str = setting(
        "127.0.0.1",
        "COMET_METRICS_HOST",
        p.host,
        "a host name or IP address",
        "Where /metrics, /healthz and /readyz listen; each shard process needs its own port.",
        section="Metrics endpoints.",
    )
    metrics_port: int = setting(
        9108, "COMET_METRICS_PORT", p.int_in(0, 65535), "a port 0-65535", "Their port."
    )
    metrics_basic_auth: tuple[str, str] | None = setting(
        None,
        "COMET_METRICS_BASIC_AUTH",
        p.basic_auth,
        "user:password",
        "Optional basic auth for the metrics endpoints, user:password (TLS belongs to a reverse proxy).",
        secret=True,
    )
    discord_api_base: str = setting(
        DISCORD_API_BASE,
        "COMET_DISCORD_API_BASE",
        p.url(("http", "https")),
        "an http(s):// URL",
        "Where discord.py sends REST calls: real Discord, an HTTP proxy, or the local emulator.",
        section="Discord.",
    )
    discord_gateway_url: str = setting(
        DISCORD_GATEWAY_URL,
        "COMET_DISCORD_GATEWAY_URL",
        p.url(("ws", "wss")),
        "a ws(s):// URL",
        "Where discord.py opens its gateway websocket.",
    )
    shard_count: int | None = setting(
        None, "COMET_SHARD_COUNT", p.int_in(1), "an integer >= 1", "Sharding: the total number of shards."
    )
    shard_ids: tuple[int, ...] | None = setting(
        None,
        "COMET_SHARD_IDS",
        p.shard_ids,
        "comma-separated distinct shard ids >= 0",
        "The shards this process runs (comma-separated; default: all of them).",
    )
    sync_commands: bool = setting(
        True, "COMET_SYNC_COMMANDS", p.boolean, BOOL, "Push slash commands to Discord at start-up."
    )
    extensions: tuple[str, ...] = setting(
        DEFAULT_EXTENSIONS,
        "COMET_EXTENSIONS",
        p.extensions,
        "comma-separated extension module names",
        "Extensions to load (comma-separated); default: every C.O.M.E.T. extension.",
        example="",
    )
    log_path: str = setting(
        "logs/comet.log",
        "COMET_LOG_PATH",
        p.file_path,
        PATH,
        "The rotating log file (everything from DEBUG up).",
        section="Logging.",
    )
    log_level: str = setting(
        "INFO",
        "COMET_LOG_LEVEL",
        p.choice(LOG_LEVELS, upper=True),
        "one of " + ", ".join(LOG_LEVELS),
        "The console's level: " + ", ".join(LOG_LEVELS) + ".",
    )
    slow_threshold: float = setting(
        1.0,
        "COMET_SLOW_THRESHOLD",
        p.float_in(0.0, low_open=True),
        "seconds > 0",
        "Commands slower than this many seconds are logged as slow.",
    )
    shutdown_grace_seconds: float = setting(
        5.0,
        "COMET_SHUTDOWN_GRACE_SECONDS",
        p.float_in(0.0, 600.0),
        "seconds from 0 to 600",
        "On SIGTERM/SIGINT: new commands are refused at once, running ones get this many seconds to finish.",
    )
    secrets: tuple[str, ...] = setting(
        (),
        "COMET_SECRETS",
        p.secret_list,
        "comma-separated secret values",
        "Extra secret values scrubbed from messages sent to Discord and from the logs (comma-separated).",
        secret=True,
    )
    database_path: str = setting(
        "data/comet.db",
        "COMET_DATABASE_PATH",
        p.file_path,
        PATH,
        "The SQLite database of the community features.",
        section="Community features.",
    )
    mod_log_channel: str = setting(
        "mod-log",
        "COMET_MOD_LOG_CHANNEL",
        p.text,
        "a channel name",
        "The channel moderation actions are logged to.",
    )
    moderator_role: str = setting(
        "Moderator",
        "COMET_MODERATOR_ROLE",
        p.text,
        "a role name",
        "The role that may use moderation commands.",
    )
    antispam_messages: int = setting(
        5,
        "COMET_ANTISPAM_MESSAGES",
        p.int_in(2),
        "an integer >= 2",
        "Anti-spam: this many messages from one member within COMET_ANTISPAM_SECONDS...",
    )
    antispam_seconds: float = setting(
        5.0,
        "COMET_ANTISPAM_SECONDS",
        p.float_in(0.0, low_open=True),
        "seconds > 0",
        "...seconds get them a timeout of COMET_ANTISPAM_TIMEOUT_SECONDS.",
    )
    antispam_timeout_seconds: int = setting(
        300,
        "COMET_ANTISPAM_TIMEOUT_SECONDS",
        p.int_in(1, 28 * 24 * 3600),
        "seconds from 1 to 2419200 (28 days, Discord's limit)",
        "The anti-spam timeout, in seconds.",
    )
    demo_rate: float = setting(
        2.0,
        "COMET_DEMO_RATE",
        p.float_in(0.0, 1000.0, low_open=True),
        "commands per second, 0-1000",
        "Synthetic members' actions per second.",
        section="Offline demo only. The defaults stay under the alert thresholds (5% slow or failing):\n"
        "a newcomer's first `make stack` must not page; COMET_DEMO_SLOW_RATIO=0.6 makes\n"
        "CometSlowResponses fire.",
    )
    demo_slow_ratio: float = setting(
        0.015,
        "COMET_DEMO_SLOW_RATIO",
        p.float_in(0.0, 1.0),
        "a ratio 0-1",
        "Share of slow commands (`work`).",
    )
    demo_slow_seconds: float = setting(
        1.5,
        "COMET_DEMO_SLOW_SECONDS",
        p.float_in(0.0, 10.0),
        "seconds from 0 to 10",
        "How long a slow one takes.",
    )
    demo_fail_ratio: float = setting(
        0.015,
        "COMET_DEMO_FAIL_RATIO",
        p.float_in(0.0, 1.0),
        "a ratio 0-1",
        "Share of failing commands (`boom`).",
    )
    emulator_port: int = setting(
        0,
        "COMET_EMULATOR_PORT",
        p.int_in(0, 65535),
        "a port 0-65535",
        "The emulator's port (0: any free port).",
    )

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
        out: dict[str, Any] = {}
        for f, variable in declared():
            value = getattr(self, f.name)
            if variable.secret:
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
        return settings_from_mapping(env)


def declared() -> Iterator[tuple[Field[Any], Variable]]:
    """Every setting with its variable, in declaration order."""
    for f in fields(Settings):
        yield f, f.metadata["variable"]


def settings_from_mapping(env: Mapping[str, str]) -> Settings:
    """Settings from variables; an unset or empty variable keeps the default."""
    values: dict[str, Any] = {}
    for f, variable in declared():
        raw = env.get(variable.name)
        if raw is None:
            continue
        text = raw.strip() if variable.strip else raw
        if text.strip() == "":
            continue
        values[f.name] = p.parse_value(
            variable.name, text, variable.parse, variable.expected, secret=variable.secret
        )
    return Settings(**values)
