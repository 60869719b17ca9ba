"""The HTTP plumbing of :class:`~instrumentation.server.MetricsServer`: the standard library's
``HTTPServer`` with a thread per request, the GIL switch interval lowered while a scrape renders,
and a clear error for a port in use. What is served lives in :mod:`instrumentation.server`.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["PortInUseError", "Reply", "SwitchInterval", "ThreadedServer", "address_in_use", "switch_interval"]

logger = logging.getLogger(__name__)

#: How often the accepting thread looks whether the server is stopping (seconds).
ACCEPT_POLL = 0.05
#: A client that sends nothing for this long is dropped (a thread per request must not hang).
REQUEST_TIMEOUT = 10.0
#: The names of the server's threads (the accepting one, and one per request).
THREAD_PREFIX = "comet-metrics"

#: What a request gets: status, body, headers.
Reply = tuple[int, bytes, dict[str, str]]
#: The application: ``(path, query, headers) -> Reply``, called in the request's thread.
Answer = Callable[[str, str, Any], Reply]


class PortInUseError(OSError):
    """The metrics port is taken; the message names ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"cannot serve metrics on {host}:{port}: the port is already in use",
        )
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


class ThreadedServer(HTTPServer):
    """``HTTPServer`` with a named thread per request, kept track of so stop() can wait for them."""

    daemon_threads = True
    timeout = ACCEPT_POLL  # handle_request() returns after this without a connection

    def __init__(self, host: str, port: int, answer: Answer) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.answer = answer
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_one,
            args=(request, client_address),
            name=f"{THREAD_PREFIX}-request",
            daemon=True,
        )
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("A metrics request failed", exc_info=True)  # a client gone mid-answer, say

    def request_threads(self) -> list[threading.Thread]:
        with self._threads_lock:
            return list(self._threads)


class _Handler(BaseHTTPRequestHandler):
    server: ThreadedServer
    timeout = REQUEST_TIMEOUT
    server_version = "comet-metrics"
    sys_version = ""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        status, body, headers = self.server.answer(parts.path, parts.query, self.headers)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: Prometheus scrapes every few seconds and would flood it."""


class SwitchInterval:
    """Lower ``sys.setswitchinterval`` while at least one render runs; restore it after the last.

    The interval is process-wide, so overlapping renders (several servers in one process) share
    one lowering, and the value saved before the first is the one restored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved = 0.0

    @contextmanager
    def lowered(self, interval: float | None) -> Iterator[None]:
        if interval is None:
            yield
            return
        with self._lock:
            if self._active == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(interval, self._saved))
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    sys.setswitchinterval(self._saved)


switch_interval = SwitchInterval()


def address_in_use(exc: OSError) -> bool:
    # EADDRINUSE on POSIX, WSAEADDRINUSE (10048) on Windows.
    return exc.errno in {errno.EADDRINUSE, 10048} or "address already in use" in str(exc).lower()
