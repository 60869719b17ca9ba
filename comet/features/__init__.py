"""The reloadable features: the cogs (``cogs/``, one extension each) and the helpers they share.
Everything under ``comet.features`` may be hot reloaded; nothing outside it is."""
