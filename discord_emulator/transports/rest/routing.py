"""A small path router that also yields the templated route name (for the record and for faults).

Routes with more literal segments win (``/users/@me`` before ``/users/{user_id}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Awaitable[tuple[int, Any]]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    segments: tuple[str, ...]
    handler: Handler
    literals: int


class Router:
    def __init__(self) -> None:
        self._table: dict[tuple[str, int], list[Route]] = {}

    def add(self, method: str, template: str, handler: Handler) -> None:
        segments = tuple(template.strip("/").split("/"))
        literals = sum(1 for s in segments if not s.startswith("{"))
        route = Route(method, template, segments, handler, literals)
        bucket = self._table.setdefault((method, len(segments)), [])
        bucket.append(route)
        bucket.sort(key=lambda r: -r.literals)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        parts = path.strip("/").split("/")
        for route in self._table.get((method, len(parts)), ()):
            params: dict[str, str] = {}
            for seg, part in zip(route.segments, parts, strict=True):
                if seg[0] == "{":
                    if not part:
                        break
                    params[seg[1:-1]] = part
                elif seg != part:
                    break
            else:
                return route, params
        return None, {}
