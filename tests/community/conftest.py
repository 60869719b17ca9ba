"""Fixtures of the community tests: the shared harness (``tests/harness.py``) — the product started
through the launcher, logged in to the emulator, on a real SQLite file under ``tmp_path``.

``comet`` is a bot (Japanese by default); ``comet_factory`` starts bots with other settings (English,
a tiny anti-spam threshold, a read-only store) or restarts one on the same database file.
"""

from __future__ import annotations

import pytest
from community_support import EXTENSIONS
from harness import Profile, comet, comet_factory, product_logging_removed  # noqa: F401
from processes import children  # noqa: F401


@pytest.fixture
def comet_profile() -> Profile:
    # Tests send commands quickly; only the anti-spam tests want the rule to bite.
    return Profile(settings={"extensions": EXTENSIONS, "antispam_messages": 1000})
