"""Hot reload of extensions and plain helper modules (``HotReloader``).

Extensions go through discord.py's ``reload_extension``, which is atomic: when the new code fails
to import or its ``setup`` raises, the old extension stays loaded. Plain helper modules the owner
names are reloaded with ``importlib.reload`` in dependency order (a module before the modules that
import it), and then the loaded extensions that use them are reloaded so they pick the new code up.

Only modules under ``comet.features`` (the cogs and their helpers) are reloaded. Everything else
holds state for the whole process and is refused: ``comet.core`` (the bot class, settings,
telemetry, storage, i18n, the HTTP scrubber, this module), ``instrumentation`` (metric objects
registered once on the launcher's registry), and the standard library or discord.py, which are not
safe to reload in a live process.

In debug mode an optional watcher polls the files of loaded extensions and watched modules and
reloads what changed (``watch_module``).
"""

from __future__ import annotations

import asyncio
import contextlib
import graphlib
import importlib
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from discord.ext import commands

from comet.core.i18n import t

__all__ = ["RELOADABLE_ROOTS", "HotReloader", "ReloadResult", "is_protected", "is_reloadable_module"]

log = logging.getLogger(__name__)

Operation = Literal["load", "reload", "unload"]

#: The one package whose modules may be reloaded: the features (cogs and their helpers). Everything
#: else lives as long as the process (``comet.core``: the bot class, settings, telemetry, storage,
#: i18n, HTTP scrubbing, shutdown, this module; ``comet.ops``; ``instrumentation``, whose metric
#: objects are registered once; the emulator, discord.py, the standard library), so what hot reload
#: refuses follows from the folder a module lives in.
RELOADABLE_ROOTS: tuple[str, ...] = ("comet.features",)

#: The project's own packages: an extension named inside them must be under a reloadable root.
#: Other extensions (a user's own) go through discord.py's atomic reload like the features do.
PROCESS_PACKAGES = frozenset({"comet", "instrumentation", "discord_emulator"})

#: Extensions that cannot be unloaded from Discord (the owner would lose the way back).
UNUNLOADABLE = frozenset({"comet.features.cogs.reload"})


def is_reloadable_module(module_name: str, roots: Iterable[str] = RELOADABLE_ROOTS) -> bool:
    """A module the owner may reload: one inside a reloadable package (not the package itself)."""
    return any(module_name.startswith(root + ".") for root in roots)


def is_protected(module_name: str, roots: Iterable[str] = RELOADABLE_ROOTS) -> bool:
    """True for modules hot reload must never touch: everything outside the reloadable packages."""
    return not is_reloadable_module(module_name, roots)


@dataclass(frozen=True)
class ReloadResult:
    """What happened to one extension or module."""

    name: str
    operation: Operation | Literal["module"]
    ok: bool
    message: str
    error: str | None = None


def _error_text(exc: BaseException) -> str:
    """The error and, for extension failures, the exception that caused it."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or getattr(exc, "original", None)
    if cause is not None and str(cause) not in text:
        text += f" ({type(cause).__name__}: {cause})"
    return text


def _dependencies(module: ModuleType, candidates: set[str]) -> set[str]:
    """The names in ``candidates`` that ``module`` uses (imports it or objects defined in it)."""
    found: set[str] = set()
    for value in list(vars(module).values()):
        name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if not isinstance(name, str):
            continue
        if name in candidates and name != module.__name__:
            found.add(name)
    return found


class HotReloader:
    """The hot reloader, on discord.py's atomic extension reload."""

    def __init__(
        self,
        bot: commands.Bot | commands.AutoShardedBot,
        *,
        reloadable_roots: Iterable[str] = RELOADABLE_ROOTS,
    ) -> None:
        self.bot = bot
        self.reloadable_roots = tuple(reloadable_roots)
        self.watched_modules: set[str] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self.watch_interval = 1.0
        #: Set once the watcher has taken its first snapshot (changes after it are seen).
        self.watch_ready = asyncio.Event()

    # -- messages and metrics ------------------------------------------------------------------

    def _t(self, key: str, **kwargs: Any) -> str:
        # The bot's language; a bot without a translator gets the Japanese messages (the default locale).
        return t(self.bot, key, **kwargs)

    def _count(self, operation: Operation, ok: bool) -> None:
        telemetry = getattr(self.bot, "telemetry", None)
        if telemetry is None:
            return
        telemetry.metrics.extension_reloads.labels(operation, "success" if ok else "error").inc()

    # -- the public API (reload_module, watch_module) ----------------------------------------

    def watch_module(self, module_name: str) -> None:
        """Watch a module's file (reloaded by the watcher when it changes; debug mode only)."""
        self.watched_modules.add(module_name)

    async def reload_module(self, module_name: str) -> str:
        """Reload one module and say how it went (in the bot's language)."""
        results = await self.reload_modules([module_name])
        return results[0].message

    # -- modules -------------------------------------------------------------------------------

    def resolve_extension(self, name: str) -> str:
        """``debug`` -> ``comet.features.cogs.debug`` when that is what the owner meant."""
        if name in self.bot.extensions or "." in name:
            return name
        return f"comet.features.cogs.{name}"

    async def reload_modules(self, names: Iterable[str]) -> list[ReloadResult]:
        """Reload plain modules (dependencies first), then the loaded extensions that use them."""
        results: list[ReloadResult] = []
        plain: list[str] = []
        extensions: list[str] = []
        for name in dict.fromkeys(names):
            if name in self.bot.extensions:
                extensions.append(name)
            elif name not in sys.modules:
                results.append(
                    ReloadResult(
                        name, "module", False, self._t("reload.module_missing", module=name), "missing"
                    )
                )
            elif not is_reloadable_module(name, self.reloadable_roots):
                results.append(
                    ReloadResult(
                        name, "module", False, self._t("reload.module_refused", module=name), "refused"
                    )
                )
            else:
                plain.append(name)

        reloaded: set[str] = set()
        for name in self._dependency_order(plain):
            try:
                importlib.reload(sys.modules[name])
            except Exception as exc:
                log.warning("reload of module %s failed: %s", name, type(exc).__name__)
                text = _error_text(exc)
                results.append(
                    ReloadResult(name, "module", False, self._t("reload.module_error", error=text), text)
                )
            else:
                reloaded.add(name)
                results.append(ReloadResult(name, "module", True, self._t("reload.module_done", module=name)))

        for name in self._dependants(reloaded):
            if name not in extensions:
                extensions.append(name)
        for name in extensions:
            results.append(await self.extension("reload", name))
        return results

    def _dependency_order(self, names: list[str]) -> list[str]:
        candidates = set(names)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name in names:
            sorter.add(name, *_dependencies(sys.modules[name], candidates))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError:
            return names

    def _dependants(self, modules: set[str]) -> list[str]:
        """Loaded extensions that use any of ``modules``."""
        if not modules:
            return []
        found = []
        for name in list(self.bot.extensions):
            module = sys.modules.get(name)
            if module is not None and _dependencies(module, modules):
                found.append(name)
        return found

    # -- extensions ----------------------------------------------------------------------------

    async def extension(self, operation: Operation, name: str) -> ReloadResult:
        """Load, reload or unload one extension; counted in comet_extension_reloads_total."""
        name = self.resolve_extension(name)
        if operation == "unload" and name in UNUNLOADABLE:
            return ReloadResult(
                name, operation, False, self._t("reload.refused_unload", extension=name), "refused"
            )
        if name.split(".")[0] in PROCESS_PACKAGES and is_protected(name, self.reloadable_roots):
            return ReloadResult(
                name, operation, False, self._t("reload.module_refused", module=name), "refused"
            )
        action = {
            "load": self.bot.load_extension,
            "reload": self.bot.reload_extension,
            "unload": self.bot.unload_extension,
        }[operation]
        started = time.perf_counter()
        try:
            await action(name)
        except Exception as exc:
            self._count(operation, False)
            text = _error_text(exc)
            log.warning("%s of extension %s failed: %s", operation, name, type(exc).__name__)
            return ReloadResult(
                name, operation, False, self._t(f"reload.{operation}_error", extension=name, error=text), text
            )
        self._count(operation, True)  # CometBot itself registers new commands as metric labels
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s of extension %s done in %.1f ms", operation, name, elapsed_ms)
        return ReloadResult(
            name, operation, True, self._t(f"reload.{operation}_done", extension=name, ms=f"{elapsed_ms:.0f}")
        )

    # -- file watcher (debug mode only) --------------------------------------------------------

    @property
    def watching(self) -> bool:
        return self._watch_task is not None and not self._watch_task.done()

    def start_watching(self, interval: float | None = None) -> bool:
        """Start the polling watcher; False (and nothing started) unless debug mode is on."""
        if not getattr(self.bot, "debug_mode", False):
            return False
        if interval is not None:
            self.watch_interval = interval
        if not self.watching:
            self.watch_ready.clear()
            self._watch_task = asyncio.get_running_loop().create_task(
                self._watch_loop(), name="comet-reload-watcher"
            )
        return True

    async def stop_watching(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _watched_files(self) -> dict[str, int]:
        """Module name -> newest mtime (ns) among its file and its submodules' files."""
        names = [*self.bot.extensions, *self.watched_modules]
        mtimes: dict[str, int] = {}
        modules = list(sys.modules.items())
        for name in names:
            newest = -1
            for mod_name, module in modules:
                if mod_name != name and not mod_name.startswith(name + "."):
                    continue
                path = getattr(module, "__file__", None)
                if not path:
                    continue
                with contextlib.suppress(OSError):
                    newest = max(newest, os.stat(path).st_mtime_ns)
            if newest >= 0:
                mtimes[name] = newest
        return mtimes

    async def check_files(self, previous: dict[str, int]) -> tuple[dict[str, int], list[ReloadResult]]:
        """Reload what changed since ``previous``; returns the new snapshot and the results."""
        current = self._watched_files()
        changed = [n for n, mtime in current.items() if n in previous and previous[n] != mtime]
        results: list[ReloadResult] = []
        if changed:
            log.info("watcher: %d changed module(s): %s", len(changed), ", ".join(changed))
            results = await self.reload_modules(changed)
            current = self._watched_files()  # a reload may have imported new submodules
        return current, results

    async def _watch_loop(self) -> None:
        snapshot = self._watched_files()
        self.watch_ready.set()
        while getattr(self.bot, "debug_mode", False):
            await asyncio.sleep(self.watch_interval)  # polling interval, not a wait for a condition
            try:
                snapshot, _ = await self.check_files(snapshot)
            except Exception:
                log.exception("watcher: check failed")
        log.info("watcher stopped: debug mode is off")
