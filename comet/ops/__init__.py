"""Operations tooling: config rendering, the local Prometheus/Alertmanager stack, dashboard pictures,
the README's metric table. Nothing here is imported by the bot itself."""
