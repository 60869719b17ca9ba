"""``python -m comet``: the same as the ``comet`` command."""

from comet.core.cli import main

raise SystemExit(main())
