"""``@timed``: every public data method of Store is timed as ``storage.<name>``, and a call records
the same ``comet_function_*`` series ``monitor_performance`` records, on the store's registry."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from comet.core.storage import StorageError, Store, timed
from comet.core.storage.timing import timed_operation

GUILD = 987654321

#: Public coroutine methods that manage the store rather than query it: not timed.
LIFECYCLE = frozenset({"open", "close", "flush", "schema_version"})

#: The storage series the bot exports today (tests, alerts and dashboards read ``storage.*``).
EXPORTED = frozenset(
    f"storage.{name}"
    for name in (
        "set_oshi",
        "get_oshi",
        "remove_oshi",
        "oshi_ranking",
        "add_warning",
        "list_warnings",
        "clear_warnings",
        "record_action",
        "list_actions",
    )
)


def _public_coroutine_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


def _calls(registry: CollectorRegistry, function: str, outcome: str) -> float | None:
    return registry.get_sample_value("comet_function_calls_total", {"function": function, "outcome": outcome})


def _count(registry: CollectorRegistry, function: str) -> float | None:
    return registry.get_sample_value("comet_function_duration_seconds_count", {"function": function})


def _storage_functions(registry: CollectorRegistry) -> set[str]:
    return {
        sample.labels["function"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "comet_function_calls_total" and sample.labels["function"].startswith("storage.")
    }


def test_every_public_data_method_of_store_is_timed_under_its_own_name() -> None:
    methods = _public_coroutine_methods(Store)
    assert LIFECYCLE <= methods.keys()
    data = {name: member for name, member in methods.items() if name not in LIFECYCLE}
    assert data, "no data methods found: the introspection is broken"
    untimed = sorted(name for name, member in data.items() if timed_operation(member) is None)
    assert untimed == [], f"public data methods of Store without @timed: {untimed}"
    assert {name: timed_operation(member) for name, member in data.items()} == {name: name for name in data}
    # Lifecycle calls stay out of the storage series (the panels show queries only).
    assert [name for name in LIFECYCLE if timed_operation(methods[name]) is not None] == []
    assert timed_operation(Store.__aenter__) is None and timed_operation(Store.__aexit__) is None


def test_timed_keeps_the_method_s_name_doc_and_signature() -> None:
    method = Store.set_oshi
    assert method.__name__ == "set_oshi"
    assert method.__doc__ is not None and "oshi" in method.__doc__
    assert list(inspect.signature(method).parameters) == ["self", "guild_id", "user_id", "talent_key"]


def test_timed_refuses_a_function_that_is_not_async() -> None:
    def not_async(self: Store) -> None:
        return None

    with pytest.raises(TypeError):
        timed(not_async)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_the_exported_storage_series_are_unchanged_and_exist_before_any_call(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = await Store.open(tmp_path / "comet.db", registry=registry)
    await store.close()
    assert _storage_functions(registry) == EXPORTED
    for function in EXPORTED:
        for outcome in ("success", "error", "cancelled"):
            assert _calls(registry, function, outcome) == 0, (function, outcome)
        assert _count(registry, function) == 0, function
        assert registry.get_sample_value("comet_slow_calls_total", {"function": function}) == 0, function


@pytest.mark.asyncio
async def test_a_call_records_its_own_series_on_the_store_s_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    other = CollectorRegistry()
    store = await Store.open(tmp_path / "comet.db", registry=registry)
    bystander = await Store.open(tmp_path / "other.db", registry=other)
    try:
        assert await store.set_oshi(GUILD, 1, "usada_pekora") is None
        entry = await store.get_oshi(GUILD, 1)
        assert entry is not None and entry.talent_key == "usada_pekora"
    finally:
        await store.close()
        await bystander.close()
    assert _calls(registry, "storage.set_oshi", "success") == 1
    assert _calls(registry, "storage.set_oshi", "error") == 0
    assert _count(registry, "storage.set_oshi") == 1
    assert _count(registry, "storage.get_oshi") == 1
    assert _count(registry, "storage.remove_oshi") == 0  # each method has its own recorder
    assert _count(other, "storage.set_oshi") == 0  # and each store its own registry

    # A call on the closed store fails inside the timed span, under the method's name.
    with pytest.raises(StorageError) as info:
        await store.set_oshi(GUILD, 1, "houshou_marine")
    assert (info.value.kind, info.value.operation) == ("closed", "set_oshi")
    assert _calls(registry, "storage.set_oshi", "error") == 1
    assert _count(registry, "storage.set_oshi") == 2


@pytest.mark.asyncio
async def test_an_sqlite_failure_is_a_storage_error_named_after_the_method(tmp_path: Path) -> None:
    path = tmp_path / "comet.db"
    writable = await Store.open(path)
    await writable.close()
    registry = CollectorRegistry()
    store = await Store.open(path, read_only=True, registry=registry)
    try:
        with pytest.raises(StorageError) as info:
            await store.add_warning(GUILD, 1, 2, "refused")
        assert (info.value.kind, info.value.operation) == ("read_only", "add_warning")
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert await store.list_warnings(GUILD, 1) == []  # rolled back; the store still reads
    finally:
        await store.close()
    assert _calls(registry, "storage.add_warning", "error") == 1
    assert _calls(registry, "storage.add_warning", "success") == 0
    assert _calls(registry, "storage.list_warnings", "success") == 1


class GatedStore(Store):
    """A store with extra timed methods, to see the operation name come from ``__name__``."""

    @timed
    async def wait_at_gate(self, started: asyncio.Event, gate: asyncio.Event) -> None:
        started.set()
        await gate.wait()

    @timed
    async def run_bad_sql(self) -> None:
        await self._fetchall("THIS IS NOT SQL")


@pytest.mark.asyncio
async def test_a_subclass_s_timed_methods_get_series_errors_and_cancellations(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = await GatedStore.open(tmp_path / "comet.db", registry=registry)
    try:
        assert _storage_functions(registry) == EXPORTED | {"storage.wait_at_gate", "storage.run_bad_sql"}
        with pytest.raises(StorageError) as info:
            await store.run_bad_sql()
        assert (info.value.kind, info.value.operation) == ("other", "run_bad_sql")
        assert _calls(registry, "storage.run_bad_sql", "error") == 1

        started, gate = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(store.wait_at_gate(started, gate))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _calls(registry, "storage.wait_at_gate", "cancelled") == 1
        assert _calls(registry, "storage.wait_at_gate", "error") == 0
        assert _count(registry, "storage.wait_at_gate") == 1
    finally:
        await store.close()
