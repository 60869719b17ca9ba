"""Settings (``settings.py``: each declared once), their parsers, ``.env`` files and the generated
``.env.example`` (``python -m comet.core.config.example``)."""

from comet.core.config.env_file import parse_env_file, read_env_file
from comet.core.config.errors import ConfigError
from comet.core.config.settings import DEFAULT_EXTENSIONS, DEMO_EXTENSION, Settings, Variable, declared

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
