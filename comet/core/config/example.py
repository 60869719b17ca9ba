"""``.env.example``, generated from the settings' declarations: ``python -m comet.core.config.example``
writes it, ``--check`` fails (exit 1) when the checked-in file differs, so neither can drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from comet.core.config.settings import declared

EXAMPLE_PATH = Path(__file__).resolve().parents[3] / ".env.example"

HEADER = """\
# C.O.M.E.T. settings. Copy to .env and edit; real environment variables override this file.
# `comet config check` validates them; a bad value stops start-up with a message naming the variable.
# Generated from comet/core/config/settings.py by python -m comet.core.config.example: edit those.
"""


def shown(default: Any) -> str:
    """A default as a variable would spell it."""
    if default is None:
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, frozenset):
        default = sorted(default)
    if isinstance(default, list | tuple):
        return ",".join(str(item) for item in default)
    return str(default)


def render() -> str:
    lines = [HEADER]
    for f, variable in declared():
        if variable.section is not None:
            lines.append("")
            lines.extend(f"# {line}" for line in variable.section.splitlines())
        value = variable.example if variable.example is not None else shown(f.default)
        if variable.secret:
            value = ""  # an example never carries a secret, not even a default one
        lines.append(f"# {variable.help}")
        lines.append(f"{variable.name}={value}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m comet.core.config.example", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the declarations"
    )
    parser.add_argument("--path", type=Path, default=EXAMPLE_PATH)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.is_file() else ""
        if current != text:
            print(
                f"{args.path} differs from comet/core/config/settings.py: "
                "run python -m comet.core.config.example"
            )
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
