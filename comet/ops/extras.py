"""The ``ops`` extra: what the ops tooling needs beyond the bot's own dependencies.

The bot never imports PyYAML or matplotlib, so a production install (``pip install comet-bot``)
lacks them. The modules that need one import it through a ``try`` that raises :class:`MissingExtra`
instead; the commands import those modules inside ``main`` and print the error's one line (the
install command) rather than a traceback. ``--help`` works without the extra.
"""

from __future__ import annotations

import sys

#: How to get the extra: from the package index, or from a checkout of this repository.
INSTALL_HINT = "pip install 'comet-bot[ops]' (in a checkout: pip install -e '.[ops]')"


class MissingExtra(ImportError):
    """A distribution of the ops extra is not installed; the message says how to install it."""

    def __init__(self, distribution: str) -> None:
        super().__init__(f"{distribution} is not installed (the ops tooling needs it): {INSTALL_HINT}")
        self.distribution = distribution


def report(program: str, error: MissingExtra) -> int:
    """Print ``error`` as the command's one-line message; the exit status of a command that cannot run."""
    print(f"{program}: {error}", file=sys.stderr)
    return 2
