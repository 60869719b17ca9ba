"""Settings (``settings.py``: each declared once), their parsers, ``.env`` files and the generated
``.env.example`` (``python -m comet.config.example``)."""

from comet.config.env_file import parse_env_file, read_env_file
from comet.config.errors import ConfigError
from comet.config.settings import DEFAULT_EXTENSIONS, DEMO_EXTENSION, Settings, Variable, declared

__all__ = [
    "DEFAULT_EXTENSIONS",
    "DEMO_EXTENSION",
    "ConfigError",
    "Settings",
    "Variable",
    "declared",
    "parse_env_file",
    "read_env_file",
]
