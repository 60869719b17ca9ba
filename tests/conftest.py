"""Shared test plumbing: the emulator fixtures (``emulator``, ``discord_bot``) come from the plugin."""

pytest_plugins = ["comet.emulator.pytest_plugin"]
