"""The ``comet`` command (also ``python -m comet``).

``comet run``            connect to Discord with ``COMET_TOKEN``; without a token, run the offline demo
                          (a local Discord emulator with synthetic members) so /metrics has live data.
``comet config check``   validate the settings (environment and .env) and show them, secrets hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Sequence

from comet.core.config import ConfigError, Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comet", description="C.O.M.E.T. Discord bot")
    parser.add_argument("--env-file", default=".env", help="settings file read under the environment (.env)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (the offline demo when COMET_TOKEN is not set)")
    config = sub.add_parser("config", help="settings")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("check", help="validate the settings and show them (secrets hidden)")
    return parser


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _out(message: str) -> None:
    print(message, flush=True)


def load_settings(env_file: str) -> Settings | None:
    try:
        return Settings.from_env(env_file=env_file)
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def config_check(env_file: str) -> int:
    settings = load_settings(env_file)
    if settings is None:
        return 2
    missing = [name for name in settings.extensions if not _importable(name)]
    if missing:
        not_found = ", ".join(missing)
        _err(f"configuration error: COMET_EXTENSIONS: expected importable modules, not found: {not_found}")
        return 2
    _out("configuration OK")
    for key, value in settings.describe().items():
        shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else value
        _out(f"  {key} = {shown}")
    mode = "Discord (COMET_TOKEN set)" if settings.token else "offline demo (no COMET_TOKEN)"
    _out(f"`comet run` would start: {mode}")
    return 0


def run(env_file: str) -> int:
    from comet.core.launcher import StartupError

    settings = load_settings(env_file)
    if settings is None:
        return 2
    try:
        if settings.token:
            from comet.core.launcher import serve

            return asyncio.run(serve(settings, announce=_out))
        from comet.core.demo import run_demo

        return asyncio.run(run_demo(settings, announce=_out))
    except StartupError as exc:
        _err(f"cannot start: {exc}")
        return exc.exit_code
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config":
        return config_check(args.env_file)
    return run(args.env_file)
