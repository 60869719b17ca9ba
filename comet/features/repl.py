"""The evaluation engine of ``debug``, apart from the commands: strip a code fence, compile the code
(the last expression's value is the result; top-level ``await`` works), run it in a namespace with
its output captured within a bound, and format what it raised."""

from __future__ import annotations

import ast
import asyncio
import inspect
import io
import traceback
from dataclasses import dataclass
from types import CodeType
from typing import Any

#: Captured stdout beyond this is dropped (a runaway print loop must not eat the heap).
MAX_CAPTURE_CHARS = 2_000_000


class BoundedStringIO(io.StringIO):
    """A StringIO that keeps at most ``limit`` characters and remembers it dropped the rest."""

    def __init__(self, limit: int = MAX_CAPTURE_CHARS) -> None:
        super().__init__()
        self.limit = limit
        self.truncated = False

    def write(self, s: str) -> int:
        room = self.limit - self.tell()
        if room <= 0:
            self.truncated = True
            return len(s)
        if len(s) > room:
            self.truncated = True
            super().write(s[:room])
            return len(s)
        return super().write(s)


def strip_code_fence(code: str) -> str:
    """Accept ```py ... ```, ``` ... ``` and `...` as Discord users type code."""
    code = code.strip()
    if code.startswith("```") and code.endswith("```") and len(code) >= 6:
        body = code[3:-3]
        first, _, rest = body.partition("\n")
        if rest and first.strip().isidentifier():  # a language tag such as py / python
            body = rest
        return body.strip("\n")
    if code.startswith("`") and code.endswith("`") and len(code) >= 2:
        return code[1:-1]
    return code


def compile_code(source: str) -> list[tuple[CodeType, bool]]:
    """Compile statements and a final expression, ``await`` allowed at top level.

    Returns (code, is_final_expression) pairs run in order; the last expression's value (if the
    code ends with one) is the result.
    """
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = ast.parse(source, "<debug>", "exec")
    final: ast.expr | None = None
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        final = last.value
        tree.body.pop()
    codes: list[tuple[CodeType, bool]] = []
    if tree.body:
        codes.append((compile(tree, "<debug>", "exec", flags=flags), False))
    if final is not None:
        expression = ast.Expression(final)
        ast.fix_missing_locations(expression)
        codes.append((compile(expression, "<debug>", "eval", flags=flags), True))
    return codes


@dataclass
class Failure:
    """An exception raised by the owner's code (kept as a value so the runner never raises it)."""

    exc: BaseException


async def execute(codes: list[tuple[CodeType, bool]], namespace: dict[str, Any]) -> Any:
    """Run compiled code in ``namespace``; the final expression's value, or a Failure."""
    result: Any = None
    try:
        for code, is_expression in codes:
            value = eval(code, namespace)  # the owner's code: this is the point of the command
            if code.co_flags & inspect.CO_COROUTINE:
                value = await value
            if is_expression:
                result = value
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # SystemExit/KeyboardInterrupt too: they must not stop the bot
        return Failure(exc)
    return result


def format_exception(exc: BaseException) -> str:
    """``Type: message`` plus the lines of the owner's code the traceback went through."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<debug>"]
    where = f" (line {frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    message = str(exc)
    return f"{type(exc).__name__}{': ' + message if message else ''}{where}"
