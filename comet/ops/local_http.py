"""Talking to the stack's local services: free ports, their URLs, plain HTTP GETs and POSTs.

Blocking urllib calls: the stack and its callers (``metric_table --demo``, the ops tests) are plain
scripts without an event loop. A service that does not answer yet reads as status 0 rather than an
exception, since callers poll until it does.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def local_url(port: int) -> str:
    """The base URL of a process of the stack (every one listens on 127.0.0.1)."""
    return f"http://127.0.0.1:{port}"


def http_get(url: str, timeout: float = 3.0, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET; (0, b"") when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return response.status, body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def http_post_json(url: str, payload: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def answers_200(url: str) -> Callable[[], bool]:
    """A predicate: does ``url`` answer 200 now?"""
    return lambda: http_get(url)[0] == 200
