"""Shared test plumbing: the emulator fixtures (``emulator``, ``discord_bot``) come from the plugin."""

from hypothesis import settings

pytest_plugins = ["comet.emulator.pytest_plugin"]

# Hypothesis' per-example deadline is a timing assertion in disguise: on a shared, noisy 2-core machine
# a slow example says nothing about the code. Speed lives in bench/.
settings.register_profile("comet", deadline=None, print_blob=True)
settings.load_profile("comet")
