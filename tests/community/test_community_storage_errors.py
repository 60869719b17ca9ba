"""A locked or read-only database gives the user a clear message and a log line, never a crash;
restarting the bot on the same file keeps oshi and warnings."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from community_support import MEMBERS, MOD
from harness import CometFactory, Harness
from prometheus_client import CollectorRegistry

from comet.core.demo_guild import DEMO
from comet.core.storage import Store

GUILD = DEMO.guild_id


@pytest.fixture
def exclusive_lock(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection holding the write lock on the bot's database file."""
    holder = sqlite3.connect(tmp_path / "comet.db", isolation_level=None)
    try:
        yield holder
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ja", "⏳ データベースが混み合っていて保存できませんでした。"),
        ("en", "⏳ The database is busy and nothing was saved."),
    ],
)
async def test_locked_database_answers_clearly_and_logs(
    comet_factory: CometFactory,
    exclusive_lock: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    locale: str,
    expected: str,
) -> None:
    # A short busy timeout: each locked write gives up after 0.05 s instead of the default 5 s.
    registry = CollectorRegistry()
    store = await Store.open(tmp_path / "comet.db", registry=registry, busy_timeout=0.05)
    harness: Harness = await comet_factory(locale=locale, store=store, registry=registry)
    exclusive_lock.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR):
        reply = await harness.ask("!oshi set Pekora", author=MEMBERS[0])
        assert reply.content.startswith(expected)
        reply = await harness.ask(f"!warn <@{MEMBERS[1]}> while locked", author=MOD)
        assert reply.content.startswith(expected)
        slash = await harness.slash("oshi", {"name": "Marine"}, author=MEMBERS[2], subcommand="set")
        assert slash.content.startswith(expected) and slash.ephemeral
    failures = [r.getMessage() for r in caplog.records if r.name == "comet.core.bot"]
    assert any("Command oshi set failed" in m and "locked" in m for m in failures), failures
    assert any("Command warn failed" in m for m in failures), failures
    # What the user saw is what the metrics say: failures, under the storage error's class.
    harness.bot.flush_metrics()
    assert harness.sample("comet_commands_total", command="oshi set", kind="prefix", outcome="error") == 1
    assert harness.sample("comet_commands_total", command="oshi set", kind="slash", outcome="error") == 1
    assert harness.sample("comet_commands_total", command="warn", kind="prefix", outcome="error") == 1
    assert harness.sample("comet_commands_total", command="oshi set", kind="prefix", outcome="success") == 0
    assert harness.sample("comet_command_errors_total", command="oshi set", error="StorageError") == 2
    # Nothing was claimed and nothing was written; once the lock is gone, it works again.
    exclusive_lock.execute("ROLLBACK")
    assert await harness.store.get_oshi(GUILD, MEMBERS[0]) is None
    reply = await harness.ask("!oshi set Pekora", author=MEMBERS[0])
    assert "Usada Pekora" in reply.content
    assert harness.sample("comet_function_calls_total", function="storage.set_oshi", outcome="error") == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ja", "⚠️ データベースが読み取り専用のため保存できません。管理者に連絡してください。"),
        ("en", "⚠️ The database is read-only, so nothing can be saved. Please tell an admin."),
    ],
)
async def test_read_only_database_answers_clearly_and_still_reads(
    comet_factory: CometFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    locale: str,
    expected: str,
) -> None:
    path = tmp_path / "comet.db"
    writable = await Store.open(path)
    await writable.set_oshi(GUILD, MEMBERS[0], "houshou_marine")
    await writable.close()
    # SQLite's mode=ro is what a file the bot's user may not write gives (the tests run as root,
    # which ignores file permissions, so chmod alone would prove nothing here).
    read_only = await Store.open(path, read_only=True)
    harness: Harness = await comet_factory(locale=locale, store=read_only)
    with caplog.at_level(logging.ERROR):
        reply = await harness.ask("!oshi set Pekora", author=MEMBERS[0])
        assert reply.content == expected
        reply = await harness.ask(f"!clearwarns <@{MEMBERS[1]}>", author=MOD)
        assert reply.content == expected
    assert any("read_only" in r.getMessage() for r in caplog.records if r.name == "comet.core.bot")
    reply = await harness.ask("!oshi show", author=MEMBERS[0])
    assert "Houshou Marine" in reply.content


@pytest.mark.asyncio
async def test_restart_keeps_oshi_and_warnings(comet_factory: CometFactory, tmp_path: Path) -> None:
    first: Harness = await comet_factory()
    await first.ask("!oshi set すいちゃん", author=MEMBERS[0])
    await first.ask("!oshi set Korone", author=MEMBERS[1])
    await first.ask(f"!warn <@{MEMBERS[2]}> first warning", author=MOD)
    await first.ask(f"!warn <@{MEMBERS[2]}> second warning", author=MOD)
    await first.close()

    second: Harness = await comet_factory(locale="en", database_path=str(tmp_path / "comet.db"))
    reply = await second.ask("!oshi show", author=MEMBERS[0])
    assert reply.content == "💖 Your oshi is Hoshimachi Suisei (星街すいせい)! (hololive gen 0)"
    reply = await second.ask(f"!warnings <@{MEMBERS[2]}>", author=MOD)
    assert reply.content.startswith("📋 Warnings of hoshiyomi (2)")
    assert "first warning" in reply.content and "second warning" in reply.content
    reply = await second.ask("!oshi ranking", author=MEMBERS[3])
    assert "1. Hoshimachi Suisei (星街すいせい) — 1 fans" in reply.content
    assert "2. Inugami Korone (戌神ころね) — 1 fans" in reply.content


@pytest.mark.asyncio
async def test_without_a_store_the_features_say_so(comet_factory: CometFactory, tmp_path: Path) -> None:
    harness: Harness = await comet_factory()
    harness.bot.store = None
    reply = await harness.ask("!oshi set Pekora", author=MEMBERS[0])
    assert reply.content == "⚠️ データベースが使えないため、この機能は今は使えません。"
