"""Every start-up error is one clear message naming the variable, a non-zero exit, never a traceback.

Each bad case runs the real CLI (``python -m comet config check`` / ``python -m comet run``) as a
process. Tests run as root, which ignores file permissions: an "unwritable" log path is one under a
regular file, which fails for root too.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from bot_support import base_env
from processes import run_python

from comet.core.storage import StorageError, Store

#: Nothing must reach the network in these tests: any Discord call goes to a closed local port.
OFFLINE = {
    "COMET_DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
    "COMET_DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway",
}
TOKEN = "c29tZS5ib3Q.startup.not-a-real-token-value"


def comet(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = base_env(tmp_path, "startup", **OFFLINE)
    variables.update(env)
    return run_python("-m", "comet", *args, env=variables, cwd=tmp_path)  # cwd: no stray .env


def assert_clear_failure(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for text in expected:
        assert text in result.stderr, output
    return result.stderr


# -- files the launcher opens ----------------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, ""], ids=["discord", "demo"])
def test_a_log_path_that_is_a_directory(tmp_path: Path, token: str) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    result = comet(tmp_path, "run", COMET_TOKEN=token, COMET_LOG_PATH=str(folder))
    assert_clear_failure(
        result,
        f"cannot start: COMET_LOG_PATH: cannot write the log file {folder}: it is a directory; "
        "set COMET_LOG_PATH to a file in a writable directory",
    )
    assert result.returncode == 1


@pytest.mark.parametrize("depth", ["comet.log", "sub/comet.log"])
def test_a_log_path_that_cannot_be_created(tmp_path: Path, depth: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n", encoding="utf-8")
    path = afile / depth
    result = comet(tmp_path, "run", COMET_TOKEN=TOKEN, COMET_LOG_PATH=str(path))
    assert_clear_failure(
        result,
        f"cannot start: COMET_LOG_PATH: cannot write the log file {path}: "
        f"{afile} is a file, not a directory; set COMET_LOG_PATH to a file in a writable directory",
    )


@pytest.mark.parametrize("token", [TOKEN, ""], ids=["discord", "demo"])
def test_a_database_path_that_is_a_directory(tmp_path: Path, token: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    result = comet(tmp_path, "run", COMET_TOKEN=token, COMET_DATABASE_PATH=str(folder))
    # Without the fix, aiosqlite's worker thread printed "RuntimeError: Event loop is closed" with
    # its traceback after this message (nearly every time in the demo, where it was seen).
    assert_clear_failure(
        result,
        f"cannot start: COMET_DATABASE_PATH: cannot open the database at {folder}: it is a directory; "
        "set COMET_DATABASE_PATH to a database file in a writable directory",
    )
    assert "Event loop is closed" not in result.stdout + result.stderr


def test_a_database_path_under_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n", encoding="utf-8")
    result = comet(tmp_path, "run", COMET_TOKEN=TOKEN, COMET_DATABASE_PATH=str(afile / "comet.db"))
    assert_clear_failure(result, "COMET_DATABASE_PATH", f"{afile} is a file, not a directory")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database, just text long enough to have a header" * 4)
    result = comet(tmp_path, "run", COMET_TOKEN=TOKEN, COMET_DATABASE_PATH=str(junk))
    assert_clear_failure(result, "COMET_DATABASE_PATH", "file is not a database")


@pytest.mark.asyncio
async def test_a_failed_open_leaves_no_sqlite_worker_thread(tmp_path: Path) -> None:
    def workers() -> list[threading.Thread]:
        # aiosqlite's unnamed worker threads are named after their target function.
        return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name and t.is_alive()]

    before = workers()
    with pytest.raises(StorageError):
        await Store.open(tmp_path)  # a directory
    # The cause of the traceback above: the worker thread outliving the failed open (it then
    # resolves a future on the event loop, which the exiting CLI has closed).
    assert workers() == before


# -- the settings file ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["config", "check"], ["run"]])
def test_an_env_file_that_is_not_utf8(tmp_path: Path, command: list[str]) -> None:
    secret = "s3cr3t-value-after-the-bad-bytes"
    (tmp_path / "bad.env").write_bytes(
        b"COMET_LOCALE=en\nCOMET_TOKEN=abc.def.\xff\xfe" + secret.encode() + b"\n"
    )
    result = comet(tmp_path, "--env-file", "bad.env", *command)
    assert_clear_failure(
        result,
        "configuration error: bad.env:2 (COMET_TOKEN): expected UTF-8 text, got bytes that are not "
        "UTF-8; save the file as UTF-8",
    )
    assert result.returncode == 2
    assert secret not in result.stdout + result.stderr and "abc.def" not in result.stdout + result.stderr


def test_an_env_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "bom.env").write_bytes(b"\xef\xbb\xbfCOMET_LOCALE=en\n")
    result = comet(tmp_path, "--env-file", "bom.env", "config", "check")
    assert result.returncode == 0, result.stderr
    assert "  locale = en" in result.stdout


# -- numbers: ASCII digits only ----------------------------------------------------------------------


@pytest.mark.parametrize("port", ["１２３", "9_1_0_8", "+9108", "9108.0"])
@pytest.mark.parametrize("command", [["config", "check"], ["run"]])
def test_a_port_not_written_in_plain_digits(tmp_path: Path, port: str, command: list[str]) -> None:
    result = comet(tmp_path, *command, COMET_TOKEN=TOKEN, COMET_METRICS_PORT=port)
    assert_clear_failure(
        result,
        f"configuration error: COMET_METRICS_PORT: expected a port 0-65535, got {port!r} "
        "(write whole numbers with the digits 0-9 only: no sign, underscore or decimal point)",
    )
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COMET_OWNER_IDS", "１２３４５"),
        ("COMET_SHARD_COUNT", "2_0"),
        ("COMET_ANTISPAM_MESSAGES", "+5"),
        ("COMET_EMULATOR_PORT", "٨٠"),  # Arabic-Indic digits: int() takes them too
        ("COMET_SLOW_THRESHOLD", "nan"),
        ("COMET_SLOW_THRESHOLD", "1_0"),
        ("COMET_DEMO_RATE", "inf"),
        ("COMET_ANTISPAM_SECONDS", "２.５"),
    ],
)
def test_other_numbers_not_written_in_plain_digits(tmp_path: Path, name: str, value: str) -> None:
    result = comet(tmp_path, "config", "check", **{name: value})
    assert_clear_failure(result, f"configuration error: {name}: expected ", f"got {value!r}")
    assert result.returncode == 2
