"""The pieces of the ``debug`` command that do not need Discord: compiling, running, paging."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comet.features.paging import fence, paginate
from comet.features.repl import (
    BoundedStringIO,
    Failure,
    compile_code,
    execute,
    format_exception,
    strip_code_fence,
)


async def run(source: str, **scope: Any) -> Any:
    namespace: dict[str, Any] = {"asyncio": asyncio, **scope}
    return await execute(compile_code(source), namespace)


@pytest.mark.asyncio
async def test_expressions_statements_and_top_level_await() -> None:
    assert await run("1 + 1") == 2
    assert await run("x = 20\ny = 22\nx + y") == 42
    assert await run("x = 1") is None  # statements only: no result
    assert await run("await asyncio.sleep(0, result='slept')") == "slept"
    assert await run("async def f():\n    return 7\nawait f()") == 7
    assert await run("for i in range(3):\n    await asyncio.sleep(0)\ni") == 2


@pytest.mark.asyncio
async def test_scope_is_shared_between_statements_and_the_final_expression() -> None:
    namespace: dict[str, Any] = {"asyncio": asyncio, "bot": "the-bot"}
    await execute(compile_code("value = bot.upper()"), namespace)
    assert namespace["value"] == "THE-BOT"
    assert await execute(compile_code("value + '!'"), namespace) == "THE-BOT!"


@pytest.mark.asyncio
async def test_exceptions_come_back_as_values_even_system_exit() -> None:
    failure = await run("x = 1\n1 / 0")
    assert isinstance(failure, Failure) and isinstance(failure.exc, ZeroDivisionError)
    assert format_exception(failure.exc) == "ZeroDivisionError: division by zero (line 2)"
    for source in ("raise SystemExit(3)", "exit()", "raise KeyboardInterrupt"):
        result = await run(source, exit=exit)
        assert isinstance(result, Failure), source


@pytest.mark.asyncio
async def test_cancellation_propagates() -> None:
    started = asyncio.Event()
    task = asyncio.ensure_future(run("started.set()\nawait asyncio.sleep(3600)", started=started))
    # Cancel once the code is inside its await, not before the task ran (that would prove nothing).
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_syntax_errors_are_reported_with_their_line() -> None:
    with pytest.raises(SyntaxError) as info:
        compile_code("x = 1\nx +")
    assert format_exception(info.value).startswith("SyntaxError: invalid syntax (line 2)")


def test_code_fences_are_stripped() -> None:
    assert strip_code_fence("```py\nprint(1)\n```") == "print(1)"
    assert strip_code_fence("```python\na = 1\nb = 2\n```") == "a = 1\nb = 2"
    assert strip_code_fence("```\n1 + 1\n```") == "1 + 1"
    assert strip_code_fence("```1 + 1```") == "1 + 1"
    assert strip_code_fence("`bot.latency`") == "bot.latency"
    assert strip_code_fence("  1 + 1  ") == "1 + 1"


def test_bounded_capture_drops_the_excess() -> None:
    buffer = BoundedStringIO(limit=10)
    print("12345", file=buffer)
    print("67890", file=buffer)
    assert buffer.getvalue() == "12345\n6789" and buffer.truncated


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=5000), st.integers(10, 300))
def test_pages_respect_the_limit_and_keep_every_character(text: str, limit: int) -> None:
    pages = paginate(text, limit)
    assert all(0 < len(page) <= limit for page in pages)

    def squash(value: str) -> str:
        return value.replace("\n", "").replace("\u200b", "")

    # Only the line breaks where pages were cut are dropped (and empty pages get a zero-width space).
    assert squash("".join(pages)) == squash(text)


def test_pages_cut_at_line_ends() -> None:
    text = "\n".join(f"line {i:03d}" for i in range(300))  # 8 chars + newline each
    pages = paginate(text, 100)
    assert all(len(p) <= 100 for p in pages)
    assert "\n".join(pages) == text


def test_fence_defuses_backticks_inside() -> None:
    fenced = fence("a ``` b")
    assert fenced.startswith("```\n") and fenced.endswith("\n```")
    assert fenced.count("```") == 2
