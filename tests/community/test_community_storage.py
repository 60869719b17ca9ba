"""Store: migrations, oshi/warnings/actions round trips, restart, locked and read-only files, metrics."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

import pytest
from processes import child_env
from prometheus_client import CollectorRegistry

from comet.core.storage import SCHEMA_VERSION, StorageError, Store, migrations
from comet.core.storage.timing import timed_operations

GUILD = 987654321


@pytest.mark.asyncio
async def test_open_creates_parent_dir_wal_and_migrations(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "comet.db"
    store = await Store.open(path)
    try:
        assert path.exists()
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
    finally:
        raw.close()
    # Re-opening applies nothing twice.
    again = await Store.open(path)
    try:
        assert await again.schema_version() == SCHEMA_VERSION
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_oshi_set_get_remove_ranking_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "comet.db"
    store = await Store.open(path)
    assert await store.set_oshi(GUILD, 1, "usada_pekora") is None
    assert await store.set_oshi(GUILD, 1, "houshou_marine") == "usada_pekora"
    await store.set_oshi(GUILD, 2, "houshou_marine")
    await store.set_oshi(GUILD, 3, "usada_pekora")
    await store.set_oshi(GUILD, 4, "houshou_marine")
    await store.set_oshi(GUILD + 1, 5, "usada_pekora")  # another guild does not count
    assert await store.oshi_ranking(GUILD) == [("houshou_marine", 3), ("usada_pekora", 1)]
    assert await store.oshi_ranking(GUILD, limit=1) == [("houshou_marine", 3)]
    assert await store.remove_oshi(GUILD, 4) == "houshou_marine"
    assert await store.remove_oshi(GUILD, 4) is None
    await store.close()

    reopened = await Store.open(path)
    try:
        entry = await reopened.get_oshi(GUILD, 1)
        assert entry is not None and entry.talent_key == "houshou_marine"
        assert await reopened.get_oshi(GUILD, 4) is None
        assert await reopened.oshi_ranking(GUILD) == [("houshou_marine", 2), ("usada_pekora", 1)]
    finally:
        await reopened.close()


@pytest.mark.asyncio
async def test_warnings_and_actions_are_recorded_together(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "comet.db")
    try:
        first = await store.add_warning(GUILD, 10, 99, "spam")
        second = await store.add_warning(GUILD, 10, 99, "rude")
        await store.add_warning(GUILD, 11, 99, "other member")
        warnings = await store.list_warnings(GUILD, 10)
        assert [w.reason for w in warnings] == ["spam", "rude"]
        assert [w.id for w in warnings] == [first.id, second.id]
        assert await store.clear_warnings(GUILD, 10, 99) == 2
        assert await store.list_warnings(GUILD, 10) == []
        assert len(await store.list_warnings(GUILD, 11)) == 1
        await store.record_action(GUILD, "timeout", 10, 99, "10m: cool down")
        actions = await store.list_actions(GUILD)
        assert [a.action for a in actions] == ["timeout", "clearwarns", "warn", "warn", "warn"]
        assert actions[1].reason == "2 cleared"
        mine = await store.list_actions(GUILD, target_id=11)
        assert [(a.action, a.reason) for a in mine] == [("warn", "other member")]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_concurrent_writes_do_not_interleave(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "comet.db", synchronous="NORMAL")
    try:
        await asyncio.gather(*(store.add_warning(GUILD, n % 3, 1, f"r{n}") for n in range(60)))
        total = sum([len(await store.list_warnings(GUILD, user)) for user in range(3)])
        assert total == 60
        assert len(await store.list_actions(GUILD, limit=100)) == 60
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_database_methods_are_timed_on_the_given_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = await Store.open(tmp_path / "comet.db", registry=registry)
    try:
        await store.add_warning(GUILD, 1, 2, "x")
        await store.list_warnings(GUILD, 1)
    finally:
        await store.close()
    labels = {"function": "storage.add_warning", "outcome": "success"}
    assert registry.get_sample_value("comet_function_calls_total", labels) == 1
    count = registry.get_sample_value(
        "comet_function_duration_seconds_count", {"function": "storage.list_warnings"}
    )
    assert count == 1
    # A method never called still has its series (0), so the storage panels are never empty.
    untouched = {"function": "storage.clear_warnings", "outcome": "error"}
    assert registry.get_sample_value("comet_function_calls_total", untouched) == 0


@pytest.mark.asyncio
async def test_locked_database_raises_a_clear_error_and_reads_still_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "comet.db"
    registry = CollectorRegistry()
    store = await Store.open(path, busy_timeout=0.05, registry=registry)
    await store.set_oshi(GUILD, 1, "usada_pekora")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(StorageError) as info:
            await store.add_warning(GUILD, 1, 2, "while locked")
        assert info.value.kind == "locked"
        assert "add_warning" in str(info.value)
        assert any("storage.add_warning" in r.getMessage() for r in caplog.records)
        entry = await store.get_oshi(GUILD, 1)  # WAL readers are not blocked by the writer's lock
        assert entry is not None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Once the lock is gone, writes work again on the same connection.
    await store.add_warning(GUILD, 1, 2, "after")
    assert [w.reason for w in await store.list_warnings(GUILD, 1)] == ["after"]
    await store.close()
    error_labels = {"function": "storage.add_warning", "outcome": "error"}
    assert registry.get_sample_value("comet_function_calls_total", error_labels) == 1


@pytest.mark.asyncio
async def test_read_only_database_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "comet.db"
    store = await Store.open(path)
    await store.set_oshi(GUILD, 1, "usada_pekora")
    await store.close()
    ro = await Store.open(path, read_only=True)
    try:
        assert ro.read_only
        entry = await ro.get_oshi(GUILD, 1)
        assert entry is not None and entry.talent_key == "usada_pekora"
        with pytest.raises(StorageError) as info:
            await ro.set_oshi(GUILD, 1, "houshou_marine")
        assert info.value.kind == "read_only"
    finally:
        await ro.close()


@pytest.mark.asyncio
async def test_read_only_new_file_cannot_be_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # an empty (schema v0) file
    with pytest.raises(StorageError) as info:
        await Store.open(path, read_only=True)
    assert info.value.kind == "read_only"


@pytest.mark.asyncio
async def test_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StorageError) as info:
        await Store.open(path)
    assert info.value.kind == "corrupt"


@pytest.mark.asyncio
async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "comet.db")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StorageError) as info:
        await store.get_oshi(GUILD, 1)
    assert info.value.kind == "closed"


@pytest.mark.asyncio
async def test_a_new_migration_is_applied_once_and_a_broken_one_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "comet.db"
    store = await Store.open(path)
    await store.set_oshi(GUILD, 1, "usada_pekora")
    await store.close()

    upgraded = (*migrations.MIGRATIONS, (2, "oshi note", ("ALTER TABLE oshi ADD COLUMN note TEXT",)))
    monkeypatch.setattr(migrations, "MIGRATIONS", upgraded)
    store = await Store.open(path)
    try:
        assert await store.schema_version() == 2
        entry = await store.get_oshi(GUILD, 1)  # the data survived the upgrade
        assert entry is not None and entry.talent_key == "usada_pekora"
    finally:
        await store.close()
    again = await Store.open(path)  # nothing is applied twice (ALTER TABLE would fail)
    await again.close()

    broken = (*upgraded, (3, "broken", ("CREATE TABLE extra (x)", "THIS IS NOT SQL")))
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    with pytest.raises(StorageError):
        await Store.open(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 2
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "extra" not in tables  # the whole migration rolled back
    finally:
        raw.close()


@pytest.mark.asyncio
async def test_storage_series_exist_before_the_first_call(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = await Store.open(tmp_path / "comet.db", registry=registry)
    await store.close()
    methods = timed_operations(Store)
    assert "set_oshi" in methods and "list_actions" in methods
    for method in methods:
        labels = {"function": f"storage.{method}", "outcome": "error"}
        assert registry.get_sample_value("comet_function_calls_total", labels) == 0
        count = registry.get_sample_value(
            "comet_function_duration_seconds_count", {"function": f"storage.{method}"}
        )
        assert count == 0


@pytest.mark.asyncio
async def test_two_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    """Two shard processes starting on one new database: each reads "v0" before either migrates;
    the second must see, under the write lock, that the first already applied the migrations."""
    path = tmp_path / "comet.db"
    first, second = await asyncio.gather(
        Store.open(path, registry=CollectorRegistry()), Store.open(path, registry=CollectorRegistry())
    )
    try:
        assert await first.schema_version() == await second.schema_version() == SCHEMA_VERSION
        await first.set_oshi(1, 2, "usada_pekora")
        assert (await second.get_oshi(1, 2)) is not None
    finally:
        await first.close()
        await second.close()
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.asyncio
async def test_an_open_that_sqlite_answers_locked_at_once_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite answers "database is locked" without waiting in its busy handler where waiting could
    deadlock (another process switching the new file to WAL or migrating it): the open tries again."""
    real_configure = Store._configure
    answers = iter([sqlite3.OperationalError("database is locked")])

    async def configure_busy_once(self: Store, busy_timeout: float, synchronous: str) -> None:
        for error in answers:
            raise error
        await real_configure(self, busy_timeout, synchronous)

    monkeypatch.setattr(Store, "_configure", configure_busy_once)
    with caplog.at_level(logging.INFO, logger="comet.core.storage"):
        store = await Store.open(tmp_path / "comet.db", registry=CollectorRegistry())
    try:
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()
    assert any("is busy" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_file_that_stays_locked_fails_the_open_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "comet.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process that holds the new file and never lets go
    try:
        with pytest.raises(StorageError) as failure:
            await Store.open(path, registry=CollectorRegistry(), busy_timeout=0.2)
        assert failure.value.kind == "locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


OPEN_IN_A_CHILD = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from comet.core.storage import Store

async def main() -> None:
    store = await Store.open(sys.argv[1], registry=CollectorRegistry())
    await store.close()

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_four_processes_starting_on_one_new_file_all_open_it(tmp_path: Path) -> None:
    """Real processes, as four shard processes starting at once (before the retry, about one start
    in ten of four processes failed with "database is locked")."""
    for attempt in range(6):
        path = tmp_path / f"comet-{attempt}.db"
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                OPEN_IN_A_CHILD,
                str(path),
                env=child_env(),
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(4)
        ]
        errors = [(await child.communicate())[1].decode() for child in children]
        assert [child.returncode for child in children] == [0] * 4, errors
        with sqlite3.connect(path) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))
