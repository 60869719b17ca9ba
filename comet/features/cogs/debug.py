"""Owner debug tools (``DebugCog``): a remote shell and views into the running bot.

``debug <code>`` evaluates Python in the bot's process (a remote shell: owner only, refused unless
debug mode is on, timed out, audit-logged, counted). ``memory``, ``tasks``, ``loglevel`` and
``timeit`` look inside the running bot. Every attempt, refused or not, is counted in
``comet_debug_invocations_total{command,outcome}`` and written to the ``comet.audit`` log (who,
which command, outcome, duration; never the code's output).

Secrets: a run's whole output is scrubbed here before it is cut into pages (so a secret cannot
survive by being split across two messages, nor by being printed in parts on several lines or in
part printed and in part returned), and again by the HTTP layer (comet.core.secure_http) that every
message, file, webhook and interaction reply goes through, so code that calls ``channel.send``
itself is covered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import logging
import time
import weakref
from collections.abc import Iterator
from types import CodeType
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from comet.features.base import NO_MENTIONS, CometCog, comet_bot, subcommand
from comet.features.owner_gate import OwnerGate, audit_log
from comet.features.paging import MAX_PAGES, PAGE_LIMIT, fence, paginate
from comet.features.repl import (
    BoundedStringIO,
    Failure,
    compile_code,
    execute,
    format_exception,
    strip_code_fence,
)
from instrumentation.metrics import LOG_LEVELS

if TYPE_CHECKING:
    from comet.core.bot import CometBot
    from comet.core.telemetry import Telemetry

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
#: How long a timed-out run may take to honour its cancellation before we answer anyway.
CANCEL_GRACE = 1.0


# -- output -------------------------------------------------------------------------------------


# -- the cog ------------------------------------------------------------------------------------


class DebugCog(OwnerGate, CometCog, name="Debug"):
    """Owner-only tools for looking inside the live bot."""

    def __init__(self, bot: CometBot) -> None:
        super().__init__(bot)
        self.timeout: float = bot.settings.debug_timeout
        self.max_pages = MAX_PAGES
        # redirect_stdout swaps sys.stdout for the whole process: one run at a time.
        self._stdout_lock = asyncio.Lock()
        self._last_result: Any = None
        self._task_snapshot: list[weakref.ref[asyncio.Task[Any]]] = []

    # -- shared plumbing -----------------------------------------------------------------------

    @property
    def _telemetry(self) -> Telemetry:
        return self.bot.telemetry

    def scrub(self, text: str) -> str:
        """Remove every configured secret (and the live token) from ``text``."""
        scrubber = self._telemetry.scrubber
        # The live token, even when the settings did not carry it (adding a known secret is a no-op).
        scrubber.add(self.bot.http.token)
        return str(scrubber.scrub(text))

    async def send_output(
        self, ctx: commands.Context[Any], text: str, *, filename: str = "output.txt"
    ) -> None:
        """Scrubbed, fenced, paginated (<= PAGE_LIMIT per message), or a file when too long."""
        text = self.scrub(text)
        pages = paginate(text, PAGE_LIMIT - len(fence("")))
        if len(pages) <= self.max_pages:
            for page in pages:
                await ctx.send(fence(page), allowed_mentions=NO_MENTIONS)
            return
        data = io.BytesIO(text.encode("utf-8"))
        await ctx.send(
            self.t("debug.output_file", chars=len(text)),
            file=discord.File(data, filename=filename),
            allowed_mentions=NO_MENTIONS,
        )

    @contextlib.contextmanager
    def audited(self, ctx: commands.Context[Any], command: str) -> Iterator[None]:
        """Record ok / error around an owner command's body."""
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.record(ctx, command, "error", started=started, detail=f"error={type(exc).__name__}")
            raise
        self.record(ctx, command, "ok", started=started)

    # -- debug ---------------------------------------------------------------------------------

    def namespace(self, ctx: commands.Context[Any]) -> dict[str, Any]:
        return {
            "__name__": "__debug_eval__",
            "__builtins__": __builtins__,
            "bot": self.bot,
            "ctx": ctx,
            "guild": ctx.guild,
            "channel": ctx.channel,
            "author": ctx.author,
            "message": ctx.message,
            "discord": discord,
            "commands": commands,
            "asyncio": asyncio,
            "_": self._last_result,
        }

    @commands.command(name="debug")
    async def debug_command(self, ctx: commands.Context[Any], *, code: str) -> None:
        """デバッグコマンド実行 — evaluate Python (owner only, debug mode only)."""
        if not self.bot.debug_mode:
            # セキュリティ上の理由で本番環境では無効化 (the refusal's reason, kept as the message users see)
            self.record(ctx, "debug", "disabled")
            await ctx.send(self.t("debug.disabled"))
            return
        started = time.perf_counter()
        detail = f"code_chars={len(code)}"
        try:
            codes = compile_code(strip_code_fence(code))
        except SyntaxError as exc:
            self.record(ctx, "debug", "error", started=started, detail=f"{detail} error=SyntaxError")
            await self.send_output(ctx, self.t("debug.error", error=format_exception(exc)))
            return

        outcome, text = await self.run(ctx, codes)
        self.record(ctx, "debug", outcome, started=started, detail=detail)
        await self.send_output(ctx, text)

    async def run(self, ctx: commands.Context[Any], codes: list[tuple[CodeType, bool]]) -> tuple[str, str]:
        """Run the code with captured stdout under the timeout; (outcome, text to show)."""
        buffer = BoundedStringIO()
        namespace = self.namespace(ctx)
        async with self._stdout_lock:
            with contextlib.redirect_stdout(buffer):
                task = asyncio.get_running_loop().create_task(
                    execute(codes, namespace), name=f"comet-debug-{ctx.message.id}"
                )
                done, _ = await asyncio.wait({task}, timeout=self.timeout)
                stuck = False
                if not done:
                    task.cancel()
                    # Code that swallows CancelledError keeps running; do not wait for it forever.
                    finished, _ = await asyncio.wait({task}, timeout=CANCEL_GRACE)
                    stuck = not finished
        output = buffer.getvalue()
        if buffer.truncated:
            output += "\n" + self.t("debug.truncated", chars=buffer.limit)
        if output and not output.endswith("\n"):
            output += "\n"

        if not done:
            if stuck:
                task.add_done_callback(_log_late_exception)
            text = output + self.t("debug.timeout", seconds=f"{self.timeout:g}")
            if stuck:
                text += "\n" + self.t("debug.timeout_stuck", name=task.get_name())
            return "timeout", text
        result = task.result()
        if isinstance(result, Failure):
            output, error = self.scrub_run(output, format_exception(result.exc), str(result.exc))
            return "error", output + self.t("debug.error", error=error)
        self._last_result = result
        if result is None and output:
            return "ok", output.rstrip("\n")
        output, shown = self.scrub_run(output, str(result), str(result))
        return "ok", output + self.t("debug.result", result=shown)

    def scrub_run(self, output: str, shown: str, value: str) -> tuple[str, str]:
        """Scrub a run's printed output and the text shown after it as one output.

        ``shown`` (the result, or the error line) contains the code's ``value`` (the result, or the
        exception's message): a secret printed in part and returned or raised in part is caught
        across the two, not only within each. ``send_output`` scrubs the whole reply again.
        """
        scrubber = self._telemetry.scrubber
        scrubber.add(self.bot.http.token)
        head, found, tail = shown.partition(value) if value else (shown, "", "")
        if not found:
            return str(scrubber.scrub(output)), str(scrubber.scrub(shown))
        output, value = scrubber.scrub_parts([output, value])
        return str(output), str(scrubber.scrub(head)) + str(value) + str(scrubber.scrub(tail))

    # -- memory --------------------------------------------------------------------------------

    @commands.group(name="memory", invoke_without_command=True)
    async def memory_command(self, ctx: commands.Context[Any]) -> None:
        """Memory report: RSS, gc counts, tracked objects, tracemalloc growth since the last call."""
        with self.audited(ctx, "memory"):
            await self.send_output(ctx, self.memory_report())

    @subcommand(memory_command, name="collect")
    async def memory_collect(self, ctx: commands.Context[Any]) -> None:
        """Run gc.collect() and report what it freed."""
        with self.audited(ctx, "memory"):
            result = self._telemetry.memory.force_cleanup()
            text = self.t("debug.memory.collected", collected=result.get("collected", "?"))
            await self.send_output(ctx, text + "\n" + self.memory_report(usage=result))

    @subcommand(memory_command, name="trace")
    async def memory_trace(self, ctx: commands.Context[Any], action: str) -> None:
        """``memory trace start|stop``: tracemalloc costs throughput, so it runs only on demand."""
        with self.audited(ctx, "memory"):
            tracker = self._telemetry.memory
            action = action.lower()
            if action == "start":
                tracker.start_tracing()
                await ctx.send(self.t("debug.memory.trace_started"))
            elif action == "stop":
                tracker.stop_tracing()
                await ctx.send(self.t("debug.memory.trace_stopped"))
            else:
                raise commands.BadArgument(self.t("debug.memory.trace_usage"))

    def memory_report(self, usage: dict[str, Any] | None = None) -> str:
        tracker = self._telemetry.memory
        if usage is None:
            usage = tracker.get_memory_usage()
        lines = [self.t("debug.memory.title")]
        for key, value in usage.items():
            if key == "collected":
                continue
            if isinstance(value, int) and key.endswith("_bytes"):
                value = f"{value / 1024 / 1024:.1f} MiB"
            lines.append(f"  {key}: {value}")
        by_kind = tracker.tracked_by_kind()
        if by_kind:
            lines.append("  tracked_by_kind: " + ", ".join(f"{k}={v}" for k, v in sorted(by_kind.items())))
        try:
            growth = tracker.growth_since_last(limit=10) if tracker.is_tracing else None
        except RuntimeError:  # tracemalloc started elsewhere, without our baseline
            growth = None
        if growth is not None:
            lines.append(self.t("debug.memory.growth_title"))
            if not growth:
                lines.append("  " + self.t("debug.memory.no_growth"))
            for item in growth:
                lines.append(
                    f"  {item.size_diff_bytes / 1024:+.1f} KiB {item.count_diff:+d} blocks  {item.site}"
                )
        else:
            lines.append(self.t("debug.memory.trace_off"))
        return "\n".join(lines)

    # -- tasks ---------------------------------------------------------------------------------

    @commands.group(name="tasks", invoke_without_command=True)
    async def tasks_command(self, ctx: commands.Context[Any]) -> None:
        """List the running asyncio tasks (numbered for ``tasks cancel <n>``)."""
        with self.audited(ctx, "tasks"):
            current = asyncio.current_task()
            tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
            self._task_snapshot = [weakref.ref(t) for t in tasks]
            lines = [self.t("debug.tasks.title", count=len(tasks))]
            for index, task in enumerate(tasks, start=1):
                coro = task.get_coro()
                where = getattr(coro, "__qualname__", type(coro).__name__)
                mark = " *" if task is current else ""
                lines.append(f"{index:>3}. {task.get_name()}  {where}{mark}")
            await self.send_output(ctx, "\n".join(lines), filename="tasks.txt")

    @subcommand(tasks_command, name="cancel")
    async def tasks_cancel(self, ctx: commands.Context[Any], number: int) -> None:
        """Cancel task ``number`` from the last ``tasks`` listing."""
        with self.audited(ctx, "tasks"):
            task = None
            if 1 <= number <= len(self._task_snapshot):
                task = self._task_snapshot[number - 1]()
            if task is None or task.done():
                await ctx.send(self.t("debug.tasks.no_such_task", number=number))
                return
            if task is asyncio.current_task():
                await ctx.send(self.t("debug.tasks.not_self"))
                return
            task.cancel()
            audit_log.info("owner-command command=tasks cancelled task=%r", task.get_name())
            await ctx.send(self.t("debug.tasks.cancelled", number=number, name=task.get_name()))

    # -- loglevel ------------------------------------------------------------------------------

    @commands.command(name="loglevel")
    async def loglevel_command(
        self, ctx: commands.Context[Any], level: str | None = None, logger_name: str | None = None
    ) -> None:
        """``loglevel <level> [logger]`` — change a logger's level (root by default)."""
        with self.audited(ctx, "loglevel"):
            logger = logging.getLogger(None if logger_name in (None, "root") else logger_name)
            name = logger.name
            current = logging.getLevelName(logger.getEffectiveLevel())
            if level is None:
                await ctx.send(self.t("debug.loglevel.current", logger=name, level=current))
                return
            if level.upper() not in LOG_LEVELS:
                await ctx.send(self.t("debug.loglevel.invalid", level=level, levels=", ".join(LOG_LEVELS)))
                return
            logger.setLevel(level.upper())
            await ctx.send(self.t("debug.loglevel.changed", logger=name, old=current, new=level.upper()))

    # -- timeit --------------------------------------------------------------------------------

    @commands.command(name="timeit")
    async def timeit_command(self, ctx: commands.Context[Any], *, command_line: str) -> None:
        """Run a command line as if the owner typed it, and report its time and exception."""
        with self.audited(ctx, "timeit"):
            message = copy.copy(ctx.message)
            message.content = f"{ctx.prefix or ''}{command_line}"
            alt_ctx = await self.bot.get_context(message)
            errors: list[BaseException] = []

            def capture(error_ctx: commands.Context[Any], error: BaseException) -> bool:
                if error_ctx is alt_ctx:
                    errors.append(error)
                    return True
                return False

            # wait_for registers its listener at call time; dispatch runs the check synchronously
            # inside bot.invoke, so ``errors`` is filled by the time invoke returns.
            waiter = asyncio.ensure_future(self.bot.wait_for("command_error", check=capture))
            started = time.perf_counter()
            try:
                await self.bot.invoke(alt_ctx)
            finally:
                elapsed_ms = (time.perf_counter() - started) * 1000
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
            name = alt_ctx.command.qualified_name if alt_ctx.command else command_line.split()[0]
            if errors:
                error = errors[0]
                original = getattr(error, "original", error)
                text = self.t(
                    "debug.timeit.error",
                    command=name,
                    ms=f"{elapsed_ms:.1f}",
                    error=f"{type(original).__name__}: {original}",
                )
            else:
                text = self.t("debug.timeit.ok", command=name, ms=f"{elapsed_ms:.1f}")
            await ctx.send(self.scrub(text), allowed_mentions=NO_MENTIONS)


def _log_late_exception(task: asyncio.Task[Any]) -> None:
    """A timed-out run that ignored cancellation finished later: note it (type only)."""
    if task.cancelled():
        log.info("debug run %s finally cancelled", task.get_name())
        return
    result = task.result()
    outcome = type(result.exc).__name__ if isinstance(result, Failure) else "ok"
    log.info("debug run %s finished after its timeout: %s", task.get_name(), outcome)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(DebugCog(comet_bot(bot)))
