"""``trace <id>`` / ``trace last``: one kept invocation's timeline, for the owner.

The id is the exemplar on the command-duration histogram (Grafana shows it on the latency panel),
the ``trace`` in the slow/failed log line, and the key of ``/debug/invocations/<id>`` on the
metrics server. Only slow and failed invocations are kept (instrumentation/recorder.py).
"""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from discord.ext import commands

from comet.features.base import NO_MENTIONS, CometCog, comet_bot
from comet.features.owner_gate import OwnerGate
from comet.features.paging import PAGE_LIMIT, fence, paginate

if TYPE_CHECKING:
    from comet.core.bot import CometBot

#: Ids are 16 hex characters; anything else cannot name a kept invocation.
_MAX_ID = 64


def render_trace(data: dict[str, Any]) -> str:
    """A timeline as plain text: one header line, then one line per step."""
    started = datetime.datetime.fromtimestamp(data["started_at"], datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    error = f" {data['error']}" if data.get("error") else ""
    lines = [
        f"trace {data['id']}: {data.get('command') or 'unknown'} ({data['kind']}) "
        f"{data.get('outcome')}{error}, {data.get('duration', 0.0):.3f} s, started {started} UTC"
    ]
    for step in data.get("steps", []):
        waited = f", waited {step['waited']:.3f} s on a rate limit" if step.get("waited") else ""
        lines.append(
            f"+{step['at']:.3f}s  {step['kind']:<8} {step['name']}  {step['duration']:.3f} s "
            f"{step.get('status', '')}{waited}"
        )
    if not data.get("steps"):
        lines.append("(no REST or storage call)")
    if data.get("dropped_steps"):
        lines.append(f"... and {data['dropped_steps']} more steps")
    return "\n".join(lines)


class TraceCog(OwnerGate, CometCog, name="Trace"):
    """The flight recorder's kept invocations, from Discord."""

    def __init__(self, bot: CometBot) -> None:
        super().__init__(bot)

    @commands.command(name="trace")
    async def trace(self, ctx: commands.Context[Any], trace_id: str = "last") -> None:
        """Show one kept invocation (``last``: the most recent slow or failed one)."""
        started = time.perf_counter()
        data = self.bot.invocation_json(trace_id) if len(trace_id) <= _MAX_ID else None
        if data is None:
            await ctx.send(self.t("debug.trace.not_found"), allowed_mentions=NO_MENTIONS)
            self.record(ctx, "trace", "error", started)
            return
        for page in paginate(render_trace(data), PAGE_LIMIT - len(fence(""))):
            await ctx.send(fence(page), allowed_mentions=NO_MENTIONS)
        self.record(ctx, "trace", "ok", started)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(TraceCog(comet_bot(bot)))
