"""The one error a bad setting raises."""


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable and what it expects."""
