"""HotReloader with a real discord.py Bot (not connected) and real modules written to disk."""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest
from discord.ext import commands
from prometheus_client import CollectorRegistry

from comet.core.reloader import HotReloader, is_protected, is_reloadable_module
from instrumentation.metrics import Metrics


class Package:
    """A throw-away package on sys.path: base <- helper <- ext (an extension)."""

    def __init__(self, root: Path) -> None:
        self.name = f"hrpkg_{uuid.uuid4().hex[:8]}"
        self.dir = root / self.name
        self.dir.mkdir()
        (self.dir / "__init__.py").write_text("")
        self.write("base", "VALUE = 1\n")
        self.write(
            "helper",
            f"""
            from {self.name} import base
            from {self.name}.base import VALUE

            def value():
                return VALUE
            """,
        )
        self.write_ext(version=1)

    def write(self, module: str, source: str) -> None:
        path = self.dir / f"{module}.py"
        existed = path.exists()
        old = path.stat().st_mtime_ns if existed else 0
        path.write_text(textwrap.dedent(source))
        if existed:  # pyc validation has one-second resolution: make the change unmistakable
            bumped = max(old, path.stat().st_mtime_ns) + 2_000_000_000
            os.utime(path, ns=(bumped, bumped))
        importlib.invalidate_caches()

    def write_ext(self, version: int, broken: bool = False) -> None:
        self.write(
            "ext",
            f"""
            from discord.ext import commands
            from {self.name}.helper import value

            VERSION = {version}

            class Probe(commands.Cog):
                @commands.command(name="probe_{self.name}")
                async def probe(self, ctx):
                    await ctx.send(str(value()))

            async def setup(bot):
                {"raise RuntimeError('setup failed on purpose')" if broken else "pass"}
                await bot.add_cog(Probe())
                bot.ext_versions.append((VERSION, value()))
                bot.ext_loaded.set()
            """,
        )

    def mod(self, name: str) -> str:
        return f"{self.name}.{name}"


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Package]:
    sys.path.insert(0, str(tmp_path))
    pkg = Package(tmp_path)
    try:
        yield pkg
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == pkg.name or n.startswith(pkg.name + ".")]:
            del sys.modules[name]


def make_bot(debug_mode: bool = False) -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    bot.ext_versions = []  # type: ignore[attr-defined]
    bot.ext_loaded = asyncio.Event()  # type: ignore[attr-defined]
    bot.debug_mode = debug_mode  # type: ignore[attr-defined]
    registry = CollectorRegistry()
    bot.telemetry = SimpleNamespace(registry=registry, metrics=Metrics.for_registry(registry))  # type: ignore[attr-defined]
    return bot


def reloads(bot: commands.Bot, operation: str, outcome: str) -> float | None:
    """``comet_extension_reloads_total`` as a scrape reads it (None: the series does not exist)."""
    labels = {"operation": operation, "outcome": outcome}
    return bot.telemetry.registry.get_sample_value("comet_extension_reloads_total", labels)  # type: ignore[attr-defined, no-any-return]


def _modules(package: str) -> list[str]:
    module = importlib.import_module(package)
    found = [package]
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        found.append(info.name)
    return found


def test_what_hot_reload_refuses_follows_from_the_folder() -> None:
    """Everything under comet.features may be reloaded; the process-lifetime code may not."""
    protected = ["comet", "comet.__main__", "comet.features", *_modules("comet.core"), *_modules("comet.ops")]
    protected += _modules("instrumentation")
    assert "comet.core.bot" in protected and "comet.core.storage.store" in protected
    for name in protected:
        assert is_protected(name), name
        assert not is_reloadable_module(name), name
    features = [m for m in _modules("comet.features") if m != "comet.features"]
    assert "comet.features.cogs.debug" in features and "comet.features.talents" in features
    for name in features:
        assert not is_protected(name), name
        assert is_reloadable_module(name), name
    # Outside the project (the emulator, discord.py, the standard library): never reloaded.
    for name in ("discord_emulator.core.world", "discord.ext.commands", "discord.http", "json", "asyncio"):
        assert not is_reloadable_module(name), name


@pytest.mark.asyncio
async def test_seed_messages_and_refusals() -> None:
    bot = make_bot()
    reloader = HotReloader(bot)
    assert await reloader.reload_module("instrumentation.metrics") == (
        "instrumentation.metrics はプロセス全体の状態を持つためリロードできません"
    )
    assert "リロードできません" in await reloader.reload_module("json")
    assert await reloader.reload_module("comet.no_such_module") == (
        "モジュール comet.no_such_module は読み込まれていません"
    )


@pytest.mark.asyncio
async def test_dependencies_reload_before_dependants_then_extensions_using_them(package: Package) -> None:
    bot = make_bot()
    reloader = HotReloader(bot, reloadable_roots=(package.name,))
    await bot.load_extension(package.mod("ext"))
    assert bot.ext_versions == [(1, 1)]  # type: ignore[attr-defined]

    package.write("base", "VALUE = 2\n")
    # Named dependant-first on purpose: the reloader must still reload base before helper.
    results = await reloader.reload_modules([package.mod("helper"), package.mod("base")])

    assert [r.name for r in results] == [package.mod("base"), package.mod("helper"), package.mod("ext")]
    assert all(r.ok for r in results), results
    assert results[0].message == f"モジュール {package.mod('base')} をリロードしました"
    assert sys.modules[package.mod("helper")].value() == 2
    assert bot.ext_versions[-1] == (1, 2)  # type: ignore[attr-defined]  # the extension picked it up
    assert reloads(bot, "reload", "success") == 1


@pytest.mark.asyncio
async def test_a_broken_module_reports_the_seed_error_and_keeps_the_old_code(package: Package) -> None:
    bot = make_bot()
    reloader = HotReloader(bot, reloadable_roots=(package.name,))
    importlib.import_module(package.mod("helper"))
    package.write("base", "VALUE = = 3\n")
    message = await reloader.reload_module(package.mod("base"))
    assert message.startswith("リロードエラー: SyntaxError")
    assert sys.modules[package.mod("base")].VALUE == 1


@pytest.mark.asyncio
async def test_extension_reload_is_atomic_and_counted(package: Package) -> None:
    bot = make_bot()
    reloader = HotReloader(bot, reloadable_roots=(package.name,))
    assert (await reloader.extension("load", package.mod("ext"))).ok
    package.write_ext(version=2, broken=True)

    result = await reloader.extension("reload", package.mod("ext"))

    assert not result.ok
    assert "setup failed on purpose" in (result.error or "")
    assert bot.get_command(f"probe_{package.name}") is not None  # the old extension still serves
    assert sys.modules[package.mod("ext")].VERSION == 1
    assert reloads(bot, "load", "success") == 1
    assert reloads(bot, "reload", "error") == 1

    package.write_ext(version=3)
    assert (await reloader.extension("reload", package.mod("ext"))).ok
    assert (await reloader.extension("unload", package.mod("ext"))).ok
    assert bot.get_command(f"probe_{package.name}") is None
    missing = await reloader.extension("unload", package.mod("ext"))
    assert not missing.ok and "ExtensionNotLoaded" in (missing.error or "")
    assert reloads(bot, "unload", "error") == 1


@pytest.mark.asyncio
async def test_the_reload_extension_itself_cannot_be_unloaded() -> None:
    reloader = HotReloader(make_bot())
    result = await reloader.extension("unload", "reload")
    assert not result.ok and result.name == "comet.features.cogs.reload" and result.error == "refused"


@pytest.mark.asyncio
async def test_file_watcher_reloads_a_changed_extension_only_in_debug_mode(package: Package) -> None:
    bot = make_bot(debug_mode=False)
    reloader = HotReloader(bot, reloadable_roots=(package.name,))
    await bot.load_extension(package.mod("ext"))
    assert not reloader.start_watching(interval=0.05)
    assert not reloader.watching

    bot.debug_mode = True  # type: ignore[attr-defined]
    assert reloader.start_watching(interval=0.05)
    try:
        await asyncio.wait_for(reloader.watch_ready.wait(), 5)  # first snapshot taken
        bot.ext_loaded.clear()  # type: ignore[attr-defined]
        package.write_ext(version=2)
        await asyncio.wait_for(bot.ext_loaded.wait(), 5)  # type: ignore[attr-defined]
    finally:
        await reloader.stop_watching()
    assert bot.ext_versions[-1] == (2, 1)  # type: ignore[attr-defined]
    assert reloads(bot, "reload", "success") == 1
    assert not reloader.watching


@pytest.mark.asyncio
async def test_check_files_reports_only_changes(package: Package) -> None:
    bot = make_bot(debug_mode=True)
    reloader = HotReloader(bot, reloadable_roots=(package.name,))
    await bot.load_extension(package.mod("ext"))
    snapshot, results = await reloader.check_files(reloader._watched_files())
    assert results == []
    package.write_ext(version=5)
    snapshot, results = await reloader.check_files(snapshot)
    assert [r.name for r in results] == [package.mod("ext")] and results[0].ok
    _, results = await reloader.check_files(snapshot)
    assert results == []
