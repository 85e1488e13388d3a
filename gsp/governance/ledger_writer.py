"""The control plane's ledger writer: what the workers report on ``gsp.ledger``, chained into the audit ledger.

One consumer in the group ``gsp-ledger``: each partition ``p`` of ``gsp.ledger`` is the chain ``data-<p>``,
so a chain has one writer at a time, and the chain's tip records the last offset it entered: a
fact read again after a restart or a rebalance is skipped, not entered twice (the offset is
committed to Kafka only after the entries are). An embedded broker keeps its topics in memory: once it is
replaced by an empty one (a restart, or `gsp serve` started again), ``gsp.ledger`` counts from 0 again and
the tips' offsets say nothing; :meth:`LedgerWriter.forget_offsets` makes each chain enter its next batch
whole. Each fact gets its subscription version's purpose
and legal basis from the control plane's database, and names its people only by reference. The
same thread stores the chain heads every ``head_interval_s`` and prunes what retention allows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from gsp.desks.base import commit
from gsp.governance.ledger import Entry, Ledger
from gsp.runtime.topic_read import read_whole
from schemas import topics
from schemas.codec import Codec, CodecError

__all__ = ["LedgerWriter", "fact_entry", "witnessed_heads"]

log = logging.getLogger("gsp.ledger")

Terms = Callable[[str, int], dict[str, Any]]


def fact_entry(ledger: Ledger, fact: dict[str, Any], terms: dict[str, Any], *, source: str | None) -> Entry:
    """A LedgerFact as a ledger entry: its terms added, each person replaced by a reference."""
    records = []
    for r in fact["records"]:
        personal_id = r.get("personal_id")
        records.append({"event_id": r.get("event_id"), "agency_event_id": r.get("agency_event_id"),
                        "person_ref": ledger.person_ref(personal_id) if personal_id else None,
                        "source_system": r.get("source_system"), "source_version": r.get("source_version"),
                        "positions": dict(r.get("positions") or {}),
                        **({"verdict": r["verdict"]} if r.get("verdict") else {})})
    body = {"channel": fact["channel"], "fields": list(fact["fields"]), "purpose": terms.get("purpose"),
            "legal_basis": terms.get("legal_basis"), "agency_id": terms.get("agency_id")}
    return Entry(kind=fact["kind"], actor=fact["actor"], at=int(fact["at"]), agency=fact["agency"],
                 subscription_id=fact["subscription_id"], version=int(fact["version"]), dataset=fact["dataset"],
                 body=body, records=records, source=source)


class LedgerWriter:
    def __init__(self, bootstrap: str, ledger: Ledger, codec: Codec, terms: Terms, *, registry: Any = None,
                 consumer_config: dict[str, Any] | None = None, head_interval_s: float = 10.0,
                 retention_days: int = 0, clock: Callable[[], float] = time.time, topic: str = topics.LEDGER,
                 group: str = "gsp-ledger") -> None:
        self._ledger, self._codec, self._terms = ledger, codec, terms
        config = {"bootstrap_servers": bootstrap, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
                  **(consumer_config or {})}
        self._consumer = KafkaConsumer(topic, group_id=group, client_id=group,
                                       enable_auto_commit=False, auto_offset_reset="earliest", **config)
        self._head_interval_s = head_interval_s
        self._retention_ms = retention_days * 86_400_000
        self._clock = clock
        self._last_head = 0.0
        self._last_prune = 0.0
        self._terms_cache: dict[tuple[str, int], dict[str, Any]] = {}
        # None: every tip's offset is trusted; else the chains entered since the broker was replaced.
        self._fresh: set[str] | None = None
        registry = registry if registry is not None else CollectorRegistry()
        self.entered = Counter("gsp_ledger_entries_total", "Facts entered into the audit ledger", ["kind"],
                               registry=registry)
        self.unreadable = Counter("gsp_ledger_unreadable_total", "Records on gsp.ledger that are not a LedgerFact",
                                  registry=registry)
        self.alive = Gauge("gsp_ledger_writer_up", "1 while the ledger writer's last pass succeeded", registry=registry)
        self.failures = 0
        self._last_ok: float | None = None
        self._error: str | None = None

    def _terms_of(self, sid: str, version: int) -> dict[str, Any]:
        key = (sid, version)
        if key not in self._terms_cache:
            self._terms_cache[key] = self._terms(sid, version)
        return self._terms_cache[key]

    def run_once(self, *, timeout_ms: int = 500) -> int:
        """Enter one polled batch; how many facts were read. On failure the batch is read again next time."""
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=2000)
        try:
            for tp, messages in polled.items():
                self._enter(tp, messages)
        except Exception:
            for tp, messages in polled.items():
                self._consumer.seek(tp, messages[0].offset)
            raise
        if polled:
            commit(self._consumer, stage="ledger")
        self._housekeeping()
        return sum(len(m) for m in polled.values())

    def forget_offsets(self) -> None:
        """The broker now holds an empty ``gsp.ledger`` (the embedded one was restarted): offsets start at 0 again,
        so until a chain enters its next batch, its tip's offset does not mark what was already entered."""
        self._fresh = set()

    def _enter(self, tp: TopicPartition, messages: list[Any]) -> None:
        chain = f"data-{tp.partition}"
        fresh = self._fresh
        _, _, entered_up_to = self._ledger.tip(chain)
        if fresh is not None and chain not in fresh:
            entered_up_to = None
        entries = []
        for m in messages:
            if entered_up_to is not None and m.offset <= entered_up_to:
                continue   # entered before a restart or rebalance
            try:
                if m.value is None:
                    raise CodecError("a null value")
                _, fact = self._codec.decode(m.value)
                entry = fact_entry(self._ledger, fact, self._terms_of(fact["subscription_id"], int(fact["version"])),
                                   source=f"{tp.partition}:{m.offset}")
            except (CodecError, KeyError, TypeError, ValueError) as exc:
                self.unreadable.inc()
                log.error("unreadable ledger fact skipped", extra={"offset": m.offset, "error": str(exc)[:200]})
                continue
            entries.append(entry)
        last = messages[-1].offset
        if entries or entered_up_to is None or last > entered_up_to:
            self._ledger.append(chain, entries, source_offset=last)
            if fresh is not None:
                fresh.add(chain)
            for e in entries:
                self.entered.labels(e.kind).inc()

    def _housekeeping(self) -> None:
        now = self._clock()
        if now - self._last_head >= self._head_interval_s:
            self._ledger.checkpoint()
            self._last_head = now
        if self._retention_ms and now - self._last_prune >= 3600:
            removed = self._ledger.prune(int(now * 1000) - self._retention_ms)
            self._last_prune = now
            if removed:
                log.info("ledger entries past retention removed", extra={"entries": removed})

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
                self.alive.set(1)
                self._last_ok, self._error = time.monotonic(), None
            except (sa.exc.SQLAlchemyError, KafkaError, OSError) as exc:
                self.failures += 1
                self.alive.set(0)
                self._error = str(exc)[:200]
                log.error("ledger writing failed, retrying", extra={"error": str(exc)[:300]})
                stop.wait(2.0)
        try:
            self._ledger.checkpoint()  # the tail written since the last head is covered on a clean stop
        except sa.exc.SQLAlchemyError:
            log.exception("final ledger head not stored")

    def health(self) -> dict[str, Any]:
        """For /health: up while the last pass succeeded (it runs at least every half second)."""
        up = None if self._last_ok is None and self._error is None else self._error is None  # None: starting
        return {"up": up, "failures": self.failures,
                "error": self._error}

    def close(self) -> None:
        self._consumer.close()


def witnessed_heads(bootstrap: str, *, topic: str = topics.LEDGER_HEADS, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every head on ``gsp.ledger.heads``, the witness outside the ledger's database, read whole."""
    messages, whole = read_whole(bootstrap, topic, timeout_s=timeout_s, client_id="gsp-audit-verify",
                                 request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=5000)
    if not whole:
        raise KafkaError(f"the witness {topic} was not read whole within {timeout_s:.0f}s")
    heads: list[dict[str, Any]] = []
    for m in messages:
        try:
            heads.append(dict(json.loads(m.value)))
        except (TypeError, ValueError):
            heads.append({"unreadable": repr(m.value)[:80]})
    return heads
