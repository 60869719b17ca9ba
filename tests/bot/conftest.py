"""Fixtures of the bot's tests: the shared harness (``comet``, ``comet_factory``) with this area's
extensions, the bot in each reply language, and child processes (helpers live in bot_support.py)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from bot_support import TEST_EXTENSIONS
from harness import CometFactory, Harness, Profile, comet, comet_factory, product_logging_removed  # noqa: F401
from processes import children  # noqa: F401


@pytest.fixture
def comet_profile() -> Profile:
    return Profile(settings={"extensions": TEST_EXTENSIONS})


@pytest_asyncio.fixture
async def comet_en(comet_factory: CometFactory) -> Harness:  # noqa: F811
    return await comet_factory(locale="en")


@pytest_asyncio.fixture(params=["ja", "en"])
async def localized(request: pytest.FixtureRequest, comet_factory: CometFactory) -> Harness:  # noqa: F811
    """The bot in each reply language."""
    return await comet_factory(locale=request.param)
