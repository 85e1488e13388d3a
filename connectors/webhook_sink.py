"""Webhook sink: an agency without Kafka receives its subscription as signed HTTPS POSTs.

``flush`` POSTs the staged events as one JSON batch (its shape and the signature are in
:mod:`connectors.webhook`) and returns once the endpoint answered 2xx, or once the batch is
safely in the dead-letter topic ``dlq.<share topic>``; either way the runner may then commit.

Per attempt, in order:

- wait for the rate limit: a token bucket of ``rate_per_s`` POSTs per second, never dropping;
- resolve the host and refuse loopback, private (RFC 1918, 100.64/10, fc00::/7), link-local,
  unspecified, multicast and other non-global addresses unless ``allow_private_targets``;
  the address checked is the address connected to (the name is resolved once per attempt
  and TLS still verifies the certificate for the name), so a DNS answer cannot change
  between the check and the connection;
- POST with connect and read timeouts, never following a redirect.

A connection error, a timeout, 408, 5xx and 429 are retried after an exponential back-off
with full jitter (0 to ``min(backoff_cap_s, backoff_base_s * 2**n)``; a 429's Retry-After
instead, up to ``retry_after_cap_s``) until ``max_attempts``; any other answer is final.
A batch that was not delivered goes to the dead letter with its reason, attempts and
endpoint as headers; when the dead letter itself fails, :class:`SinkFailed` is raised and
nothing is committed, so the runner hands the same events again later.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import email.utils
import hashlib
import ipaddress
import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from prometheus_client import CollectorRegistry, Counter, Histogram

from connectors.backoff import first_line
from connectors.base import SinkFailed
from connectors.webhook import BATCH_ID_HEADER, SIGNATURE_HEADER, sign

__all__ = ["DeadLetter", "TargetRefused", "WebhookMetrics", "WebhookSink", "dead_letter_topic", "refusal"]

log = logging.getLogger("gsp.sink.webhook")

DeadLetter = Callable[[bytes, dict[str, str]], None]
Resolver = Callable[[str, int], list[str]]

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; not is_private in Python 3.11
_RETRIED_STATUSES = {408, 429}


class TargetRefused(ValueError):
    """The endpoint may not be sent to: not https, not resolvable at start, or resolving to a non-public address."""


def dead_letter_topic(topic: str) -> str:
    return f"dlq.{topic}"


def refusal(address: str) -> str | None:
    """Why ``address`` is not a public internet address (e.g. "loopback"), or None when it is one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") names an interface
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = [("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified), ("link-local", ip.is_link_local),
              ("multicast", ip.is_multicast), ("private", ip.is_private or ip in _SHARED_ADDRESS_SPACE),
              ("reserved", ip.is_reserved or not ip.is_global)]
    return next((name for name, hit in checks if hit), None)


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class WebhookMetrics:
    attempts: Counter
    dead_lettered: Counter
    request_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WebhookMetrics:
        return cls(
            attempts=Counter("gsp_webhook_attempts_total", "Webhook POST attempts by outcome (delivered, server_error, "
                             "throttled, rejected, timeout, connection_error, unsafe_target)",
                             ["sink", "outcome"], registry=registry),
            dead_lettered=Counter("gsp_webhook_dead_lettered_total", "Webhook batches sent to the dead-letter topic, "
                                  "by reason (exhausted, rejected, unsafe_target)", ["sink", "reason"], registry=registry),
            request_seconds=Histogram("gsp_webhook_request_seconds", "Time of one webhook POST, until the answer or "
                                      "the error", ["sink"], registry=registry),
        )


class _TokenBucket:
    """At most ``rate_per_s`` takes per second, one at a time: a take waits for its token, nothing is dropped."""

    def __init__(self, rate_per_s: float, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._next_at = clock()

    def take(self) -> None:
        now = self._clock()
        if now < self._next_at:
            self._sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + self._interval


@dataclass(frozen=True)
class _Answer:
    outcome: str            # a gsp_webhook_attempts_total outcome
    error: str | None       # one line, None when delivered
    retry: bool = False
    retry_after_s: float | None = None


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _retry_after(value: str | None, *, now: float) -> float | None:
    """A Retry-After header in seconds: delta seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class WebhookSink:
    """Delivers a share topic's events to one agency's HTTPS endpoint, signed with its secret."""

    def __init__(self, url: str, secret: bytes, *, name: str, topic: str, dead_letter: DeadLetter,
                 max_attempts: int = 8, rate_per_s: float = 10.0, timeout_s: float = 10.0, allow_http: bool = False,
                 allow_private_targets: bool = False, metrics: WebhookMetrics | None = None,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 10.0, retry_after_cap_s: float = 30.0,
                 ca_file: str | None = None, resolver: Resolver = _resolve, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        if max_attempts < 1 or rate_per_s <= 0 or timeout_s <= 0:
            raise ValueError("max_attempts must be at least 1, rate_per_s and timeout_s above 0")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise TargetRefused(f"webhook url {url!r} is not an http(s) URL with a host")
        if parts.scheme == "http" and not allow_http:
            raise TargetRefused(f"webhook url {url} is not https (allow_http permits http, for tests and demos)")
        if parts.username or parts.password:
            raise TargetRefused("webhook url must not carry credentials; the endpoint authenticates the signature")
        self.name = name
        self.url = url
        self.topic = topic
        self._secret = secret
        self._dead_letter = dead_letter
        self._max_attempts = max_attempts
        self._timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
        self._timeout_s = timeout_s
        self._allow_private = allow_private_targets
        self._metrics = metrics or WebhookMetrics.create(CollectorRegistry())
        self._backoff_base_s, self._backoff_cap_s, self._retry_after_cap_s = backoff_base_s, backoff_cap_s, retry_after_cap_s
        self._resolver, self._clock, self._sleep = resolver, clock, sleep
        self._rng = rng or random.Random()
        self._rate_per_s = rate_per_s
        self._bucket = _TokenBucket(rate_per_s, clock=clock, sleep=sleep)
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._https = parts.scheme == "https"
        self._ca_file = ca_file  # None: the system's trust store
        bracketed = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = bracketed + (f":{parts.port}" if parts.port else "")
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._health: dict[str, Any] = {"state": "idle", "last_success_at": None, "last_failure_at": None,
                                        "last_error": None, "delivered_batches": 0, "delivered_events": 0,
                                        "dead_lettered_batches": 0, "dead_lettered_events": 0}
        self.delays: list[float] = []  # every back-off slept, in order (for /health's readers and tests)
        try:
            self._address()  # refuse a bad target at start, not at the first batch
        except OSError as exc:
            raise TargetRefused(f"webhook url {url}: {first_line(exc)}") from None

    # -- the Sink protocol -------------------------------------------------------------------------------------

    def write_batch(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._pending[event["header"]["event_id"]] = event

    def flush(self) -> None:
        if not self._pending:
            return
        events = list(self._pending.values())
        self._pending.clear()  # on SinkFailed the runner hands the same events again
        ids = [str(e["header"]["event_id"]) for e in events]
        batch_id = hashlib.sha256("\n".join([self.topic, *ids]).encode()).hexdigest()[:32]  # the same on a replay
        body = json.dumps({"topic": self.topic, "batch_id": batch_id, "events": events}, default=_json_value,
                          ensure_ascii=False, separators=(",", ":")).encode()
        answer, attempts = self._deliver(body, batch_id)
        if answer.error is None:
            self._record(state="ok", events=len(events), success=True)
            return
        reason = "unsafe_target" if answer.outcome == "unsafe_target" else "rejected" if not answer.retry else "exhausted"
        headers = {"reason": reason, "error": answer.error, "attempts": str(attempts), "endpoint": self.url,
                   "batch_id": batch_id, "topic": self.topic}
        try:
            self._dead_letter(body, headers)
        except Exception as exc:  # the batch is neither delivered nor dead-lettered: nothing may be committed
            self._record(state="failing", error=f"dead letter failed: {first_line(exc)}")
            raise SinkFailed(f"webhook {self.url}: {answer.error}; dead letter failed: {first_line(exc)}") from exc
        self._metrics.dead_lettered.labels(self.name, reason).inc()
        log.error("webhook batch dead-lettered", extra={"stage": "sink", "sink": self.name, "endpoint": self.url,
                  "batch_id": batch_id, "events": len(events), "reason": reason, "error": answer.error,
                  "attempts": attempts, "topic": dead_letter_topic(self.topic)})
        self._record(state="failing", events=len(events), error=answer.error, dead_lettered=True)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    # -- what the runtime and operators read -------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The endpoint's state (idle, ok, retrying, failing), the last success and failure (unix seconds)."""
        with self._lock:
            return {"endpoint": self.url, **self._health}

    @property
    def longest_flush_s(self) -> float:
        """An upper bound of one flush's duration (timeouts, back-offs, waits), for the consumer's poll interval."""
        waits = max(self._backoff_cap_s, self._retry_after_cap_s) * (self._max_attempts - 1)
        return self._max_attempts * (2 * self._timeout_s + 1 / self._rate_per_s) + waits

    # -- delivery ----------------------------------------------------------------------------------------------

    def _deliver(self, body: bytes, batch_id: str) -> tuple[_Answer, int]:
        answer = _Answer("unsafe_target", "no attempt made")
        for attempt in range(1, self._max_attempts + 1):
            self._bucket.take()
            answer = self._attempt(body, batch_id)
            self._metrics.attempts.labels(self.name, answer.outcome).inc()
            if answer.error is None or not answer.retry or attempt == self._max_attempts:
                return answer, attempt
            if answer.retry_after_s is not None:
                delay = min(answer.retry_after_s, self._retry_after_cap_s)
            else:
                delay = self._rng.uniform(0, min(self._backoff_cap_s, self._backoff_base_s * 2 ** (attempt - 1)))
            if attempt == 1:
                log.warning("webhook endpoint failing; retrying", extra={"stage": "sink", "sink": self.name,
                            "endpoint": self.url, "batch_id": batch_id, "error": answer.error})
            self._record(state="retrying", error=answer.error)
            self.delays.append(delay)
            self._sleep(delay)
        return answer, self._max_attempts

    def _attempt(self, body: bytes, batch_id: str) -> _Answer:
        try:
            address = self._address()
        except TargetRefused as exc:
            return _Answer("unsafe_target", str(exc))
        except OSError as exc:
            return _Answer("connection_error", first_line(exc), retry=True)
        headers = {"Host": self._host_header, "Content-Type": "application/json", "User-Agent": "gsp-webhook/1",
                   SIGNATURE_HEADER: sign(self._secret, body, int(time.time())), BATCH_ID_HEADER: batch_id}
        started = time.perf_counter()
        try:
            response = self._pool(address).urlopen("POST", self._path, body=body, headers=headers, redirect=False,
                                                   retries=False, assert_same_host=False, timeout=self._timeout)
        except urllib3.exceptions.TimeoutError as exc:
            return _Answer("timeout", f"timeout: {first_line(exc)}", retry=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return _Answer("connection_error", f"connection: {first_line(exc)}", retry=True)
        finally:
            self._metrics.request_seconds.labels(self.name).observe(time.perf_counter() - started)
        status = response.status
        if 200 <= status < 300:
            return _Answer("delivered", None)
        error = f"http {status}"
        if status == 429:
            return _Answer("throttled", error, retry=True,
                           retry_after_s=_retry_after(response.headers.get("Retry-After"), now=time.time()))
        if status >= 500 or status in _RETRIED_STATUSES:
            return _Answer("server_error" if status >= 500 else "timeout", error, retry=True)
        return _Answer("rejected", f"{error} (not retried)")

    def _address(self) -> str:
        """The address to connect to: the host's first resolved address, once every one of them was checked."""
        addresses = self._resolver(self._host, self._port)
        if not addresses:
            raise OSError(f"cannot resolve {self._host}")
        if not self._allow_private:
            for address in addresses:
                if why := refusal(address):
                    raise TargetRefused(f"webhook host {self._host} resolves to {address}, a {why} address "
                                       "(allow_private_targets permits it)")
        return addresses[0]

    def _pool(self, address: str) -> urllib3.HTTPConnectionPool:
        pool = self._pools.get(address)
        if pool is None:
            if self._https:  # connect to the checked address; the certificate is still verified for the name
                pool = urllib3.HTTPSConnectionPool(address, self._port, maxsize=1, server_hostname=self._host,
                                                   assert_hostname=self._host, cert_reqs="CERT_REQUIRED",
                                                   ca_certs=self._ca_file)
            else:
                pool = urllib3.HTTPConnectionPool(address, self._port, maxsize=1)
            self._pools[address] = pool
        return pool

    def _record(self, *, state: str, events: int = 0, success: bool = False, error: str | None = None,
                dead_lettered: bool = False) -> None:
        with self._lock:
            was_failing = self._health["state"] in ("retrying", "failing")
            self._health["state"] = state
            if success:
                self._health["last_success_at"] = time.time()
                self._health["delivered_batches"] += 1
                self._health["delivered_events"] += events
                if was_failing:
                    log.warning("webhook endpoint is back", extra={"stage": "sink", "sink": self.name,
                                "endpoint": self.url})
            if error is not None:
                self._health["last_failure_at"] = time.time()
                self._health["last_error"] = error
            if dead_lettered:
                self._health["dead_lettered_batches"] += 1
                self._health["dead_lettered_events"] += events
