"""``python -m comet``: the same as the ``comet`` command."""

from comet.cli import main

raise SystemExit(main())
