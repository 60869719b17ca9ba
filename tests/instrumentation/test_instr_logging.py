"""setup_debug_logging: seed format, rotation, idempotence, discord.* level, redaction, counting."""

from __future__ import annotations

import base64
import logging
import logging.handlers
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from instrumentation.logging import (
    MARKER,
    LogRecordCounter,
    RedactingFilter,
    remove_debug_logging,
    setup_debug_logging,
)
from instrumentation.metrics import Metrics
from instrumentation.redact import Scrubber

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.secret-hmac-part-0123456789"
SEED_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - [\w.]+ - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - "
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    discord_logger = logging.getLogger("discord")
    saved = (list(root.handlers), root.level, discord_logger.level)
    yield
    remove_debug_logging(root)  # and routes warnings back where they went
    for handler in list(root.handlers):
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[1])
    discord_logger.setLevel(saved[2])


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, MARKER, False)]


def test_seed_format_file_at_debug_console_at_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "debug.log"
    root = setup_debug_logging(path)
    assert root is logging.getLogger()
    assert root.level == logging.DEBUG
    log = logging.getLogger("comet.test")
    log.debug("debug detail")
    log.info("ready")
    for handler in ours(root):
        handler.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(SEED_LINE.match(line) for line in lines)
    assert lines[0].endswith(" - comet.test - DEBUG - debug detail")
    console = capsys.readouterr().out
    assert "ready" in console and "debug detail" not in console
    kinds = sorted(type(h).__name__ for h in ours(root))
    assert kinds == ["RedactingFileHandler", "RedactingStreamHandler"]
    assert any(isinstance(h, logging.handlers.RotatingFileHandler) for h in ours(root))


def test_second_call_adds_no_handler_and_replaces_the_file(tmp_path: Path) -> None:
    root = setup_debug_logging(tmp_path / "a.log", metrics=Metrics.for_registry(CollectorRegistry()))
    first = ours(root)
    assert len(first) == 3  # counter, file, console
    root = setup_debug_logging(tmp_path / "b.log", metrics=Metrics.for_registry(CollectorRegistry()))
    second = ours(root)
    assert len(second) == 3
    assert not set(first) & set(second)
    logging.getLogger("comet.test").warning("after reconfiguration")
    for handler in second:
        handler.flush()
    assert "after reconfiguration" in (tmp_path / "b.log").read_text()
    assert "after reconfiguration" not in (tmp_path / "a.log").read_text()


def test_discord_loggers_stay_at_info_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "debug.log"
    setup_debug_logging(path)
    assert logging.getLogger("discord").level == logging.INFO
    logging.getLogger("discord.gateway").debug("frame payload")
    logging.getLogger("discord.gateway").info("shard connected")
    setup_debug_logging(path, discord_level="DEBUG")
    logging.getLogger("discord.gateway").debug("second frame payload")
    for handler in ours(logging.getLogger()):
        handler.flush()
    text = path.read_text()
    assert "shard connected" in text
    assert "frame payload" not in text.replace("second frame payload", "")
    assert "second frame payload" in text


def test_rotation(tmp_path: Path) -> None:
    path = tmp_path / "debug.log"
    setup_debug_logging(path, max_bytes=2_000, backup_count=2, console_level="CRITICAL")
    log = logging.getLogger("comet.rotation")
    for i in range(200):
        log.debug("line %d %s", i, "x" * 40)
    assert path.exists()
    assert (tmp_path / "debug.log.1").exists() and (tmp_path / "debug.log.2").exists()
    assert not (tmp_path / "debug.log.3").exists()
    assert path.stat().st_size <= 2_000


def test_token_is_redacted_from_message_args_and_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "debug.log"
    setup_debug_logging(path, scrubber=Scrubber([TOKEN]))
    log = logging.getLogger("comet.secrets")
    log.info("connecting with token %s", TOKEN)
    log.warning("base64 form: " + base64.b64encode(TOKEN.encode()).decode())
    log.info("hmac alone: %s", TOKEN.split(".")[-1])
    try:
        raise RuntimeError(f"login failed for {TOKEN}")
    except RuntimeError:
        log.exception("login error")
    logging.getLogger("discord.http").warning("headers: %r", {"Authorization": f"Bot {TOKEN}"})
    for handler in ours(logging.getLogger()):
        handler.flush()
    written = path.read_text() + capsys.readouterr().out
    assert "secret-hmac-part" not in written
    assert base64.b64encode(TOKEN.encode()).decode()[:20] not in written
    assert written.count("[REDACTED]") >= 2 * 5  # file and console, five records
    assert (
        "Traceback (most recent call last)" in written
        and "RuntimeError: login failed for [REDACTED]" in written
    )


def test_redacting_filter_on_any_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s n=%d", (TOKEN, 3), None)
    assert RedactingFilter(Scrubber([TOKEN])).filter(record)
    assert record.getMessage() == "token=[REDACTED] n=3"
    untouched = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", (3,), None)
    RedactingFilter(Scrubber([TOKEN])).filter(untouched)
    # Formatted here, arguments dropped: no raw argument is left for a handler's error report.
    assert untouched.getMessage() == "n=3" and untouched.args is None


def test_records_counted_by_level(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = Metrics.for_registry(registry)
    setup_debug_logging(tmp_path / "debug.log", metrics=metrics, console_level="CRITICAL")

    def count(level: str) -> float:
        value = registry.get_sample_value("comet_log_records_total", {"level": level})
        assert value is not None  # pre-initialised
        return value

    before = {level: count(level) for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}
    log = logging.getLogger("comet.counted")
    log.debug("d")
    log.info("i")
    log.info("i2")
    log.warning("w")
    log.error("e")
    log.critical("c")
    log.log(25, "between INFO and WARNING")
    logging.getLogger("discord.gateway").debug("not emitted at INFO: not counted")
    assert count("DEBUG") - before["DEBUG"] == 1
    assert count("INFO") - before["INFO"] == 2
    assert count("WARNING") - before["WARNING"] == 2  # level 25 counts with the next level up
    assert count("ERROR") - before["ERROR"] == 1
    assert count("CRITICAL") - before["CRITICAL"] == 1


def test_counter_handler_standalone() -> None:
    registry = CollectorRegistry()
    counter = LogRecordCounter(Metrics.for_registry(registry))
    logger = logging.getLogger("comet.standalone-counter")
    logger.addHandler(counter)
    logger.propagate = False
    try:
        logger.error("boom")
    finally:
        logger.removeHandler(counter)
        logger.propagate = True
    assert registry.get_sample_value("comet_log_records_total", {"level": "ERROR"}) == 1


def test_console_only_and_bad_level() -> None:
    root = setup_debug_logging(None, console_level="WARNING")
    assert [type(h).__name__ for h in ours(root)] == ["RedactingStreamHandler"]
    assert root.level == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        setup_debug_logging(None, console_level="LOUD")
