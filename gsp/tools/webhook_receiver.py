"""A small webhook receiver on loopback, as an agency would run one: it verifies every POST's signature.

For the demo and the tests. It answers 401 to a request whose ``X-GSP-Signature`` does not
verify (tampered body, wrong secret, stale timestamp), keeps the events of every batch it
accepted, and can be told to misbehave for the next requests (:meth:`WebhookReceiver.answer`
with :class:`Fault`: a 500, a 429 with Retry-After, a slow answer) or for all of them
(``delay_s``), so a sender's retries can be watched against a real server.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connectors.webhook import BATCH_ID_HEADER, SIGNATURE_HEADER, verify

__all__ = ["Arrival", "Fault", "Receiver", "WebhookReceiver"]

PATH = "/gsp/webhook"


@dataclass(frozen=True)
class Fault:
    """How to answer one request: ``status`` after ``delay_s``; a 2xx fault still keeps the batch (a slow receiver)."""
    status: int = 500
    delay_s: float = 0.0
    retry_after: str | None = None


@dataclass(frozen=True)
class Arrival:
    """One signed request: its batch id, event ids, when it arrived (monotonic seconds) and what it was answered."""
    batch_id: str
    event_ids: tuple[str, ...]
    at: float
    status: int


class WebhookReceiver:
    """A ThreadingHTTPServer in a thread accepting signed batches at ``url``; ``start()``, then ``stop()``."""

    def __init__(self, secret: bytes, *, host: str = "127.0.0.1", port: int = 0, window_s: float = 300,
                 tls: ssl.SSLContext | None = None) -> None:
        self._secret = secret
        self._host = host
        self._window_s = window_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._faults: deque[Fault] = deque()
        self.delay_s = 0.0                   # before every answer without a queued fault
        self.events: list[dict[str, Any]] = []  # every accepted event, duplicates included
        self.event_ids: set[str] = set()
        self.arrivals: list[Arrival] = []
        self.refused = 0                     # requests answered 401 (bad or stale signature)
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._scheme = "https" if tls else "http"
        if tls:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._server.server_address[1]}{PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def answer(self, *faults: Fault) -> None:
        """Answer the next requests with these faults, in order; then normally again."""
        with self._lock:
            self._faults.extend(faults)

    def distinct(self) -> int:
        """How many distinct event ids arrived: the records the agency holds (delivery is at least once)."""
        with self._lock:
            return len(self.event_ids)

    def wait_for(self, count: int, *, timeout_s: float) -> bool:
        """Whether ``count`` distinct event ids arrived within ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.event_ids) >= count, timeout=timeout_s)

    def _receive(self, body: bytes, signature: str | None, batch_id: str) -> tuple[int, Fault | None]:
        if not verify(self._secret, body, signature, window_s=self._window_s):
            with self._lock:
                self.refused += 1
            return 401, None
        try:
            batch = json.loads(body)
            events = list(batch["events"])
            ids = tuple(str(e["header"]["event_id"]) for e in events)
        except (ValueError, KeyError, TypeError):
            return 400, None
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            status = fault.status if fault else 200
            self.arrivals.append(Arrival(batch_id, ids, time.monotonic(), status))
            if 200 <= status < 300:
                self.events.extend(events)
                self.event_ids.update(ids)
                self._changed.notify_all()
        return status, fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != PATH:
                    self._reply(404)
                    return
                status, fault = receiver._receive(body, self.headers.get(SIGNATURE_HEADER),
                                                  self.headers.get(BATCH_ID_HEADER, ""))
                delay = fault.delay_s if fault else receiver.delay_s if status == 200 else 0.0
                if delay:
                    time.sleep(delay)
                self._reply(status, retry_after=fault.retry_after if fault else None)

            def _reply(self, status: int, *, retry_after: str | None = None) -> None:
                try:
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (its read timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


Receiver = WebhookReceiver  # the name the demo's channels use
