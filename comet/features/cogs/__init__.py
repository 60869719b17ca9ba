"""The bot's extensions, one concern each: monitoring, debug and reload (owner tools), community,
moderation, omikuji, and the offline demo's own commands. Metrics are never defined here: cogs use
``bot.telemetry``, so a hot reload keeps every count."""
