"""The seed's ``setup_debug_logging``: a rotating file at DEBUG and the console at INFO.

Grown up in four ways:

* **rotation** (``RotatingFileHandler``) and configurable path and levels;
* **discord.py stays at INFO** unless asked: at DEBUG it logs every gateway frame (a third fewer
  round trips and ~10 MB per 6k messages);
* **idempotent**: our handlers carry a marker attribute and a second call replaces them instead of
  adding a second set (hot reload, tests, a launcher that calls it twice);
* every handler gets a ``RedactingFilter`` (the bot token never reaches a file or the console, in the
  message, its arguments or a traceback), and a ``LogRecordCounter`` counts records by level into
  ``comet_log_records_total``.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from instrumentation.metrics import Metrics
from instrumentation.redact import Scrubber

__all__ = ["LOG_FORMAT", "LogRecordCounter", "RedactingFilter", "setup_debug_logging"]

#: The seed's format.
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"

#: Attribute set on every handler this module installs, so a second call can find them.
MARKER = "_comet_debug_logging"
_SCRUBBED = "_comet_scrubbed"

_STANDARD_LEVELS = (
    (logging.DEBUG, "DEBUG"),
    (logging.INFO, "INFO"),
    (logging.WARNING, "WARNING"),
    (logging.ERROR, "ERROR"),
)


class RedactingFilter(logging.Filter):
    """Scrub secrets from a record's final message (``msg % args``), traceback and stack text.

    Attach it to *handlers*: a logger's filters do not see records propagated from child loggers
    such as ``discord.gateway``. The record is rewritten in place, so every handler after the first
    sees the scrubbed text.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        scrubber = self.scrubber
        if not scrubber or getattr(record, _SCRUBBED, None) is scrubber:
            return True
        setattr(record, _SCRUBBED, scrubber)  # one pass per record and scrubber, however many handlers
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        scrubbed = scrubber.scrub(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatter.format() reuses exc_text when set: render the traceback once, scrubbed.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrubber.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrubber.scrub(record.stack_info)
        return True


class LogRecordCounter(logging.Handler):
    """A handler that only counts records by level into ``comet_log_records_total{level}``."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.NOTSET)
        counter = metrics.log_records
        # Children resolved once; custom levels fall into the next standard level up.
        self._children = [(levelno, counter.labels(name)) for levelno, name in _STANDARD_LEVELS]
        self._critical = counter.labels("CRITICAL")

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the counter is thread-safe on its own.
        levelno = record.levelno
        for threshold, child in self._children:
            if levelno <= threshold:
                child.inc()
                return True
        self._critical.inc()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_FORMATTER = logging.Formatter(LOG_FORMAT)


def setup_debug_logging(
    log_path: str | Path | None = "logs/debug.log",
    *,
    file_level: str | int = "DEBUG",
    console_level: str | int = "INFO",
    discord_level: str | int = "INFO",
    scrubber: Scrubber | None = None,
    metrics: Metrics | None = None,
    max_bytes: int = 5_000_000,
    backup_count: int = 5,
) -> logging.Logger:
    """Configure the root logger as the seed does, safely; returns the root logger.

    ``log_path=None`` logs to the console only. Calling it again replaces the handlers it installed
    before (and closes their files); handlers installed by others are left alone.
    """
    file_levelno = _levelno(file_level)
    console_levelno = _levelno(console_level)
    root = logging.getLogger()
    remove_debug_logging(root)

    redactor = RedactingFilter(scrubber if scrubber is not None else Scrubber())
    handlers: list[logging.Handler] = []

    if log_path is not None:
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        file_handler.setLevel(file_levelno)
        handlers.append(file_handler)

    console_handler = logging.StreamHandler(sys.stdout)
    console_handler.setLevel(console_levelno)
    handlers.append(console_handler)

    for handler in handlers:
        handler.setFormatter(_FORMATTER)
        handler.addFilter(redactor)
    if metrics is not None:
        # First, so it counts every record that reaches the root, whatever the handlers' levels.
        handlers.insert(0, LogRecordCounter(metrics))

    for handler in handlers:
        setattr(handler, MARKER, True)
        root.addHandler(handler)
    root.setLevel(min(file_levelno if log_path is not None else console_levelno, console_levelno))
    # discord.py logs every gateway frame at DEBUG; keep its loggers at ``discord_level``.
    logging.getLogger("discord").setLevel(_levelno(discord_level))
    return root


def remove_debug_logging(root: logging.Logger | None = None) -> None:
    """Remove (and close) the handlers ``setup_debug_logging`` installed."""
    root = root if root is not None else logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, MARKER, False):
            root.removeHandler(handler)
            handler.close()


def _levelno(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value
