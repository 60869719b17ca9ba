"""``setup_debug_logging``: a rotating file at DEBUG and the console at INFO.

Grown up in four ways:

* **rotation** (``RotatingFileHandler``) and configurable path and levels;
* **discord.py stays at INFO** unless asked: at DEBUG it logs every gateway frame (a third fewer
  round trips and ~10 MB per 6k messages);
* **idempotent**: our handlers carry a marker attribute and a second call replaces them instead of
  adding a second set (hot reload, tests, a launcher that calls it twice);
* every handler gets a ``RedactingFilter`` (the bot token never reaches a file or the console, in the
  message, its arguments or a traceback), and a ``LogRecordCounter`` counts records by level into
  ``comet_log_records_total``.

The filter is on the *handlers*, so it sees every record they write, whichever logger it came from
(``discord.*``, ``urllib3`` and ``aiohttp.client`` logging webhook URLs, ``py.warnings`` once
warnings are routed to logging, which ``setup_debug_logging`` does). It formats the message itself
and drops ``record.args``: a call whose arguments do not fit its format is written as one redacted
line instead of reaching ``Handler.handleError`` with its raw arguments, and the product's handlers
print their own errors redacted.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from typing import Any

from instrumentation.metrics import Metrics
from instrumentation.redact import Scrubber

__all__ = [
    "LOG_FORMAT",
    "LogRecordCounter",
    "RedactingFileHandler",
    "RedactingFilter",
    "RedactingStreamHandler",
    "setup_debug_logging",
]

#: The log line format (time, logger, level, message).
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"

#: Attribute set on every handler this module installs, so a second call can find them.
MARKER = "_comet_debug_logging"
_SCRUBBED = "_comet_scrubbed"
#: Whether setup_debug_logging routed warnings to logging (remove_debug_logging undoes it).
_state: dict[str, bool] = {}

_STANDARD_LEVELS = (
    (logging.DEBUG, "DEBUG"),
    (logging.INFO, "INFO"),
    (logging.WARNING, "WARNING"),
    (logging.ERROR, "ERROR"),
)


class RedactingFilter(logging.Filter):
    """Scrub secrets from a record's final message (``msg % args``), traceback, stack and logger name.

    Attach it to *handlers*: a logger's filters do not see records propagated from child loggers
    such as ``discord.gateway`` or ``urllib3.connectionpool``. The record is rewritten in place (the
    formatted, scrubbed message in ``msg``, ``args`` dropped), so every handler after the first sees
    the scrubbed text and no raw argument is left for a handler's error report.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        scrubber = self.scrubber
        if getattr(record, _SCRUBBED, None) is scrubber:
            return True
        setattr(record, _SCRUBBED, scrubber)  # one pass per record and scrubber, however many handlers
        record.msg = scrubber.scrub(_message(record))
        record.args = None
        record.name = scrubber.scrub(record.name)
        if record.exc_info and not record.exc_text:
            # Formatter.format() reuses exc_text when set: render the traceback once, scrubbed.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrubber.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrubber.scrub(record.stack_info)
        return True


def _message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or for arguments that do not fit the format a line saying so."""
    try:
        return record.getMessage()
    except Exception as exc:  # what Handler.handleError would print, with the raw arguments
        problem = f"logging error {type(exc).__name__}: {exc}"
        return f"{_safe_repr(record.msg)} ({problem}; arguments: {_safe_repr(record.args)})"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _report_error(scrubber: Scrubber, record: logging.LogRecord) -> None:
    """``Handler.handleError``'s report on stderr, redacted (and without the raw arguments)."""
    if not (logging.raiseExceptions and sys.stderr):
        return
    try:
        exc = sys.exc_info()[1]
        lines = ["--- Logging error ---\n"]
        if exc is not None:
            lines.extend(traceback.format_exception(exc))
        lines.append(f"Message: {_safe_repr(record.msg)}\nArguments: {_safe_repr(record.args)}\n")
        sys.stderr.write(scrubber.scrub("".join(lines)))
    except RecursionError:
        raise
    except Exception:  # like the standard library: a broken stderr is not worth raising for
        pass


class RedactingFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log file; its error report (a full disk, a failed format) is redacted."""

    def __init__(self, *args: Any, scrubber: Scrubber | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scrubber = scrubber if scrubber is not None else Scrubber()

    def handleError(self, record: logging.LogRecord) -> None:
        _report_error(self.scrubber, record)


class RedactingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The console; its error report is redacted."""

    def __init__(self, *args: Any, scrubber: Scrubber | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scrubber = scrubber if scrubber is not None else Scrubber()

    def handleError(self, record: logging.LogRecord) -> None:
        _report_error(self.scrubber, record)


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
    capture_warnings: bool = True,
) -> logging.Logger:
    """Configure the root logger (file at DEBUG, console at INFO), safely; returns the root logger.

    ``log_path=None`` logs to the console only. Calling it again replaces the handlers it installed
    before (and closes their files); handlers installed by others are left alone. With
    ``capture_warnings`` (the default) warnings are logged (``py.warnings``), so they are redacted too.
    """
    file_levelno = _levelno(file_level)
    console_levelno = _levelno(console_level)
    root = logging.getLogger()
    remove_debug_logging(root)

    scrubber = scrubber if scrubber is not None else Scrubber()
    redactor = RedactingFilter(scrubber)
    handlers: list[RedactingFileHandler | RedactingStreamHandler] = []

    if log_path is not None:
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = RedactingFileHandler(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8", scrubber=scrubber
        )
        file_handler.setLevel(file_levelno)
        handlers.append(file_handler)

    console_handler = RedactingStreamHandler(sys.stdout, scrubber=scrubber)
    console_handler.setLevel(console_levelno)
    handlers.append(console_handler)

    for handler in handlers:
        handler.setFormatter(_FORMATTER)
        handler.addFilter(redactor)
    installed: list[logging.Handler] = list(handlers)
    if metrics is not None:
        # First, so it counts every record that reaches the root, whatever the handlers' levels.
        installed.insert(0, LogRecordCounter(metrics))

    for each in installed:
        setattr(each, MARKER, True)
        root.addHandler(each)
    if capture_warnings:
        # warnings.warn() text goes through the handlers (and their filter) instead of raw stderr.
        logging.captureWarnings(True)
        _state["captured_warnings"] = True
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
    if _state.pop("captured_warnings", False):
        logging.captureWarnings(False)


def _levelno(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value
