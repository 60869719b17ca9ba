"""The process-lifetime application: settings, the bot class, the launcher, telemetry, storage,
HTTP scrubbing, i18n, shutdown and the CLI. Hot reload never touches these (see reloader.py)."""
