"""The bot's ``/metrics`` credentials for docker compose: generated once, never printed.

    python -m comet.ops.scrape_credentials --out FILE [--user prometheus]

In compose the bot listens on 0.0.0.0 (its network), where it serves ``/debug/invocations/<id>``
(the timeline behind an exemplar) only with basic auth; so compose always has credentials. This
one-shot step (compose's ``credentials`` service) makes sure ``FILE`` holds them, as one line
``user:password`` (the value of ``COMET_METRICS_BASIC_AUTH``, mode 0600):

* ``COMET_METRICS_BASIC_AUTH`` set (the operator's choice): ``FILE`` gets it;
* else ``FILE`` exists: kept as it is (written once: a restart never changes the password under
  a running bot or Prometheus);
* else new ones: user ``prometheus`` and a random password (``secrets.token_urlsafe(32)``).

The bot reads ``FILE`` at start (compose's bot command exports it as ``COMET_METRICS_BASIC_AUTH``),
the render step (``--metrics-auth-file FILE``) writes its password into Prometheus' ``password_file``.
Only which of the three happened is printed, never the password. No YAML: runs without the ops extra.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from comet.ops.render_args import METRICS_BASIC_AUTH_ENV, metrics_basic_auth
from comet.ops.rule_transforms import RenderError

#: The user of generated credentials (Prometheus is the one scraping).
DEFAULT_USER = "prometheus"
FILE_MODE = 0o600


def parse_credentials(text: str, *, source: str) -> tuple[str, str]:
    """``user:password`` (one line) as the bot reads COMET_METRICS_BASIC_AUTH; RenderError otherwise."""
    value = text.strip("\n")
    if "\n" in value:
        raise RenderError(f"{source}: expected one line user:password")
    try:
        auth = metrics_basic_auth({METRICS_BASIC_AUTH_ENV: value})
    except RenderError:
        auth = None
    if auth is None:
        raise RenderError(f"{source}: expected user:password (delete the file to generate new credentials)")
    return auth


def read_credentials(path: Path) -> tuple[str, str]:
    """The credentials in ``path``; RenderError naming the file when it is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RenderError(
            f"{path}: no credentials file (python -m comet.ops.scrape_credentials writes it)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"{path}: cannot read the credentials file ({exc})") from exc
    return parse_credentials(text, source=str(path))


def write_credentials(path: Path, auth: tuple[str, str]) -> None:
    """Write ``user:password`` atomically, readable by its owner only from the first byte."""
    user, password = auth
    if not user or ":" in user or not password or "\n" in user + password:
        raise RenderError("credentials: expected a user without ':' and a password, on one line")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{user}:{password}")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_credentials(
    path: Path, environ: Mapping[str, str], *, user: str = DEFAULT_USER
) -> tuple[tuple[str, str], str]:
    """The credentials ``path`` holds afterwards, and how: ``given``, ``kept`` or ``generated``."""
    given = metrics_basic_auth(environ)
    if given is not None:
        if read_or_none(path) != given:
            write_credentials(path, given)
        return given, "given"
    if path.exists():
        return read_credentials(path), "kept"
    generated = (user, secrets.token_urlsafe(32))
    write_credentials(path, generated)
    return generated, "generated"


def read_or_none(path: Path) -> tuple[str, str] | None:
    try:
        return read_credentials(path)
    except RenderError:
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m comet.ops.scrape_credentials", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", required=True, type=Path, help="the credentials file (user:password)")
    parser.add_argument(
        "--user", default=DEFAULT_USER, help=f"user of generated credentials ({DEFAULT_USER})"
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = build_parser().parse_args(argv)
    try:
        (user, _), how = ensure_credentials(args.out, environ, user=args.user)
    except RenderError as exc:
        print(f"scrape_credentials: {exc}", file=sys.stderr)
        return 2
    what = {
        "given": f"from {METRICS_BASIC_AUTH_ENV}",
        "kept": "kept (written earlier)",
        "generated": "generated",
    }[how]
    # The user and the file, never the password.
    print(f"scrape credentials for user {user!r} in {args.out}: {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
