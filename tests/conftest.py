"""Shared test plumbing: the emulator fixtures (``emulator``, ``discord_bot``) come from the plugin,
seeded with the bot's demo guild (``comet.core.demo_guild``) that every test names its ids from."""

import os

import pytest
from hypothesis import HealthCheck, settings

from comet.core.demo_guild import seed_fan_server
from discord_emulator.seeds import Seed

pytest_plugins = ["discord_emulator.testing.pytest_plugin"]


@pytest.fixture
def emulator_seed() -> Seed:
    return seed_fan_server


# Hypothesis' per-example deadline and its "too slow" health check are timing assertions in disguise:
# on a shared, noisy 2-core machine a slow example says nothing about the code. Speed lives in bench/.
# Derandomized and without the example database (Hypothesis' own "ci" settings): every run tries the
# same examples, so a run's outcome does not depend on the seed it drew nor on what earlier runs left
# in .hypothesis/. HYPOTHESIS_PROFILE=explore searches with fresh random examples instead (a failure
# it finds is printed with its reproduction blob).
settings.register_profile(
    "comet",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", settings.get_profile("comet"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "comet"))
