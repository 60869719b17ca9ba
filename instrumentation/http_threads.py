"""The HTTP plumbing of :class:`~instrumentation.server.MetricsServer`: the standard library's
``HTTPServer`` with worker threads that are kept between requests, the GIL switch interval lowered
while a scrape renders, and a clear error for a port in use. What is served lives in
:mod:`instrumentation.server`.
"""

from __future__ import annotations

import errno
import logging
import queue
import socket
import sys
import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Lowering",
    "PortInUseError",
    "Reply",
    "SwitchInterval",
    "ThreadedServer",
    "address_in_use",
    "switch_interval",
]

logger = logging.getLogger(__name__)

#: How often the accepting thread looks whether the server is stopping (seconds).
ACCEPT_POLL = 0.05
#: A client that sends nothing for this long is dropped (it holds a worker meanwhile).
REQUEST_TIMEOUT = 10.0
#: The names of the server's threads (the accepting one, and the workers).
THREAD_PREFIX = "comet-metrics"
#: Connections served at once; more are closed at once (clients that connect and send nothing
#: would otherwise each hold a worker for ``REQUEST_TIMEOUT``). Prometheus needs one.
MAX_CONNECTIONS = 32
#: A worker with no connection to answer for this long ends; one stays between the scrapes of a
#: Prometheus (every 15-60 s), the others a burst of connections started end after it.
WORKER_IDLE_EXIT = 120.0

#: What a request gets: status, body, headers.
Reply = tuple[int, bytes, dict[str, str]]
#: The application: ``(path, query, headers) -> Reply``, called in the request's thread.
Answer = Callable[[str, str, Message], Reply]


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
    """``HTTPServer`` whose connections are answered by worker threads, kept track of so that
    :meth:`end_workers` and the threads' end can be waited for.

    A worker is started when a connection finds none free, and kept for the next one (at most
    ``MAX_CONNECTIONS``; each ends after ``WORKER_IDLE_EXIT`` without work). A thread per request,
    as socketserver's ``ThreadingMixIn`` makes, cost each idle scrape of the bot 0.4 ms of its
    3.1 ms (starting it, then waiting for it to report started; a fresh stack and cold caches).
    Not ``concurrent.futures.ThreadPoolExecutor``: its workers are joined at interpreter exit (a
    client that sends nothing would hold the bot's exit for ``REQUEST_TIMEOUT``), and it does not
    tell when its threads have ended, which ``MetricsServer.stop()`` promises.

    While the bot's loop is busy, every time a request's thread waits for the GIL (after accepting,
    after each read of the request) it waits up to the interpreter's switch interval, 5 ms: a scrape
    of a few such waits took 10-20 ms. So the interval is lowered to ``switch_interval`` from the
    moment a connection is accepted until its answer is ready, and restored before the answer is
    sent in one write (the wait after that write no longer delays the scraper).
    """

    timeout = ACCEPT_POLL  # handle_request() returns after this without a connection
    # socketserver's default backlog of 5 drops the SYNs of a burst of connections (probes and a
    # scrape at once), which the clients then resend only after a second.
    request_queue_size = 64

    def __init__(self, host: str, port: int, answer: Answer, *, switch_interval: float | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.answer = answer
        self.lowered_interval = switch_interval
        self._lock = threading.Lock()  # guards the three counts below
        self._workers: set[threading.Thread] = set()
        self._open = 0  # connections accepted and not closed yet
        self._idle = 0  # workers waiting for a connection that none is promised to
        self._jobs: queue.SimpleQueue[tuple[Any, Any, Lowering] | None] = queue.SimpleQueue()
        #: Connections closed unanswered because ``MAX_CONNECTIONS`` were open.
        self.refused = 0
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """In the accepting thread: hand the connection to a free worker, or to a new one."""
        with self._lock:
            busy = self._open >= MAX_CONNECTIONS
            if not busy:
                self._open += 1
                new_worker = self._idle == 0
                if not new_worker:
                    self._idle -= 1  # promised to this connection
        if busy:
            self._refuse(request)
            return
        if new_worker:
            thread = threading.Thread(target=self._work, name=f"{THREAD_PREFIX}-request", daemon=True)
            with self._lock:
                self._workers.add(thread)
            try:
                thread.start()
            except BaseException:  # socketserver logs it and closes the connection
                with self._lock:
                    self._workers.discard(thread)
                    self._open -= 1
                raise
        self._jobs.put((request, client_address, switch_interval.lower(self.lowered_interval)))

    def _refuse(self, request: Any) -> None:
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            logger.warning(
                "Metrics server: %d connections already open; closing new ones (%d so far)",
                MAX_CONNECTIONS,
                self.refused,
            )
        self.shutdown_request(request)

    def _work(self) -> None:
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=WORKER_IDLE_EXIT)
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # a worker no connection is promised to may end: this one
                            self._idle -= 1
                            return
                    continue  # every idle worker is promised a connection: this one's is queued
                if job is None:  # end_workers()
                    return
                self._serve_one(*job)
                with self._lock:
                    self._open -= 1
                    self._idle += 1
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _serve_one(self, request: Any, client_address: Any, lowering: Lowering) -> None:
        try:
            _Handler(request, client_address, self, lowering)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            lowering.end()  # if the request ended before its answer (a bad or silent client)
            self.shutdown_request(request)

    def end_workers(self) -> None:
        """Once no connection is accepted any more: every worker ends after answering what it has
        (connections already queued are answered first)."""
        with self._lock:
            count = len(self._workers)
        for _ in range(count):
            self._jobs.put(None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("A metrics request failed", exc_info=True)  # a client gone mid-answer, say

    def request_threads(self) -> list[threading.Thread]:
        """The workers alive now."""
        with self._lock:
            return list(self._workers)

    def idle_workers(self) -> int:
        """Workers waiting for a connection that none is promised to yet."""
        with self._lock:
            return self._idle


class _Handler(BaseHTTPRequestHandler):
    server: ThreadedServer
    timeout = REQUEST_TIMEOUT
    server_version = "comet-metrics"

    def __init__(
        self, request: Any, client_address: Any, server: ThreadedServer, lowering: Lowering | None = None
    ) -> None:
        # Set before the base class's __init__, which handles the request. Optional, as
        # socketserver's RequestHandlerClass is called with three arguments; workers pass one.
        self.lowering = lowering if lowering is not None else Lowering(None)
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        return self.server_version  # not the Python version

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        status, body, headers = self.server.answer(parts.path, parts.query, self.headers)
        self.lowering.end()  # the answer is built: only its write is left
        self.log_request(status)
        reason = self.responses[status][0] if status in self.responses else ""
        head = [f"{self.protocol_version} {status} {reason}", f"Server: {self.version_string()}"]
        head += [f"Date: {self.date_time_string()}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        # Status line, headers and body in one write: one syscall, one wait for the GIL after it.
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: Prometheus scrapes every few seconds and would flood it."""


class Lowering:
    """One holder of a lowered switch interval; :meth:`end` (idempotent) gives it back."""

    __slots__ = ("_ended", "_owner")

    def __init__(self, owner: SwitchInterval | None) -> None:
        self._owner = owner
        self._ended = owner is None

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            assert self._owner is not None
            self._owner.release()


class SwitchInterval:
    """Lower ``sys.setswitchinterval`` while at least one scrape runs; restore it after the last.

    The interval is process-wide, so overlapping scrapes (several servers in one process) share
    one lowering, and the value saved before the first is the one restored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved = 0.0

    def lower(self, interval: float | None) -> Lowering:
        """Lower the interval to ``interval`` (None: leave it) until the result's ``end()``."""
        if interval is None:
            return Lowering(None)
        with self._lock:
            if self._active == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(interval, self._saved))
            self._active += 1
        return Lowering(self)

    def release(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                sys.setswitchinterval(self._saved)


switch_interval = SwitchInterval()


def address_in_use(exc: OSError) -> bool:
    # EADDRINUSE on POSIX, WSAEADDRINUSE (10048) on Windows.
    return exc.errno in {errno.EADDRINUSE, 10048} or "address already in use" in str(exc).lower()
