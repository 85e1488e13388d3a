"""The stewards' quarantine: an index of quarantined records, and the desk where they are released or discarded.

The data plane only writes quarantine events (``quarantine.<dataset>.v1``). The
:class:`QuarantineIndexer` copies them into the control plane's database keyed
by event id, so a replay changes nothing and never reopens a resolved item.
The :class:`QuarantineDesk` lists items, shows the original value, releases a
fixed record back into ``raw.<dataset>.v1`` or discards it with a reason.
Nothing leaves quarantine silently: an item is closed only in the transaction
that saw the broker acknowledge the released record and the ``gsp.audit`` event.

A release gives the record a new source version (``<version>+release<N>``) and
so a new event id. The version follows from the item alone, so a release
retried after a crash republishes the same event and idempotent sinks absorb it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy.dialects import postgresql, sqlite

from connectors.runner import event_id as event_id_of
from gsp.catalog import DATASETS
from gsp.errors import GspError, NotFound, UserError
from gsp.quarantine_values import apply_fixes, readable, record_of, release_version
from schemas import topics
from schemas.codec import Codec, DecodeError, EncodeError, UnknownSchema, contract

__all__ = ["GROUP", "AuditLog", "NotOpen", "QuarantineDesk", "QuarantineIndexer", "Unavailable", "quarantine_items"]

log = logging.getLogger("gsp.quarantine")
GROUP = "gsp-control-quarantine"
STATUSES = ("open", "released", "discarded")
_NS = uuid.UUID("4d3c2b1a-6f5e-5a7b-8c9d-0e1f2a3b4c5d")

_metadata = sa.MetaData()
quarantine_items = sa.Table(
    "quarantine_items", _metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),  # the QualityIssue header's event id
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("field", sa.String(256)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("key", sa.Text),
    # The header's source fields: a release derives the new version and event id from them.
    sa.Column("source_system", sa.String(128), nullable=False),
    sa.Column("source_key", sa.Text, nullable=False),
    sa.Column("source_version", sa.String(256), nullable=False),
    sa.Column("source_topic", sa.String(256)),
    sa.Column("source_partition", sa.Integer),
    sa.Column("source_offset", sa.BigInteger),
    sa.Column("original", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | released | discarded
    sa.Column("resolution", sa.Text),
    sa.Column("resolved_by", sa.String(128)),
    sa.Column("resolved_at", sa.BigInteger),  # epoch milliseconds, like the events' timestamps
    sa.Column("released_event_id", sa.String(64)),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Index("ix_quarantine_items_work", "status", "dataset", "rule"),
)
_LISTED = [c for c in quarantine_items.c if c.name != "original"]


class NotOpen(UserError):
    """The item was already released or discarded."""


class Unavailable(GspError):
    """The broker did not acknowledge an action; the item was left open."""


def _ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


def _deliver(producer: KafkaProducer, topic: str, key: bytes, value: bytes) -> None:
    try:
        producer.send(topic, key=key, value=value).get(timeout=30)
    except KafkaError as exc:
        raise Unavailable(f"the broker did not acknowledge the write to {topic}; the item is left open: {exc}") from None


class QuarantineIndexer:
    """Consumes every dataset's quarantine topic into ``quarantine_items``; offsets are committed after the write."""

    def __init__(self, bootstrap: str, engine: sa.Engine, codec: Codec, *, consumer_config: dict[str, Any] | None = None,
                 group: str = GROUP, datasets: Iterable[str] = DATASETS) -> None:
        self._engine, self._codec = engine, codec
        _metadata.create_all(engine)
        config = {"bootstrap_servers": bootstrap, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
                  **(consumer_config or {})}
        self._consumer = KafkaConsumer(*[topics.quarantine(d) for d in datasets], group_id=group, client_id=group,
                                       enable_auto_commit=False, auto_offset_reset="earliest", **config)
        self.indexed = 0

    def run_once(self, *, timeout_ms: int = 500) -> int:
        """Index one batch; the number of quarantine events read. On failure the batch is read again next time."""
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=1000)
        if not polled:
            return 0
        try:
            rows: dict[str, dict[str, Any]] = {}
            for row in (self._row(m) for batch in polled.values() for m in batch):
                rows.setdefault(row["event_id"], row)
            insert = (postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert)(quarantine_items)
            with self._engine.begin() as conn:
                conn.execute(insert.on_conflict_do_nothing(index_elements=["event_id"]), list(rows.values()))
        except Exception:
            for tp, batch in polled.items():
                self._consumer.seek(tp, batch[0].offset)
            raise
        self._consumer.commit()
        self.indexed += (read := sum(len(batch) for batch in polled.values()))
        return read

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except (sa.exc.SQLAlchemyError, KafkaError, UnknownSchema) as exc:
                log.error("quarantine indexing failed, retrying", extra={"stage": "quarantine", "error": str(exc)[:300]})
                stop.wait(2.0)

    def close(self) -> None:
        self._consumer.close()

    def _row(self, message: Any) -> dict[str, Any]:
        base = {"status": "open", "received_at": message.timestamp if message.timestamp and message.timestamp > 0 else _ms()}
        try:
            _, issue = self._codec.decode(message.value or b"")
        except DecodeError as exc:
            # Not a QualityIssue: held as an item of its own rather than lost. (An unknown schema id is
            # more likely a registry outage than bad bytes: it raises, and the batch is read again.)
            ref = f"{message.topic}/{message.partition}/{message.offset}"
            log.error("undecodable quarantine event", extra={"stage": "quarantine", "topic": message.topic})
            return {**base, "event_id": str(uuid.uuid5(_NS, ref)), "dataset": message.topic.split(".", 1)[1].rsplit(".", 1)[0],
                    "stage": "quarantine", "rule": "quarantine.undecodable", "field": None, "reason": f"not a QualityIssue: {exc}",
                    "key": message.key.decode("utf-8", "replace") if message.key else None, "source_system": "unknown",
                    "source_key": ref, "source_version": "0", "original": message.value or b"", "source_topic": message.topic,
                    "source_partition": message.partition, "source_offset": message.offset}
        header = issue.pop("header")
        row = {**base, **issue, "event_id": header["event_id"],
               **{k: header[k] for k in ("source_system", "source_key", "source_version")}}
        return {k: v for k, v in row.items() if k in quarantine_items.c}  # fields added to the contract later are not columns


class AuditLog:
    """Publishes control-plane actions on ``gsp.audit`` and waits for the broker's ack.

    ``register(subject, schema_json) -> id`` registers the AuditEvent contract on
    first use (registering an identical schema again returns its existing id).
    """

    subject = topics.subject(topics.AUDIT)

    def __init__(self, producer: KafkaProducer, codec: Codec, *, register: Callable[[str, str], int],
                 clock: Callable[[], float] = time.time) -> None:
        self._producer, self._codec, self._register, self._clock = producer, codec, register, clock
        self._schema_id: int | None = None

    def prepare(self) -> int:
        """Register the contract once; call it outside any transaction on the registry's database."""
        if self._schema_id is None:
            schema = contract("vn.gsp.control.AuditEvent")
            schema_id = self._register(self.subject, json.dumps(schema, ensure_ascii=False))
            self._codec.add(schema_id, schema)
            self._schema_id = schema_id
        return self._schema_id

    def record(self, *, actor: str, action: str, subject: str, details: dict[str, str],
               event_id: str | None = None) -> dict[str, Any]:
        schema_id = self.prepare()
        event = {"event_id": event_id or str(uuid.uuid4()), "at": _ms(self._clock), "actor": actor, "action": action,
                 "subject": subject, "details": details}
        _deliver(self._producer, topics.AUDIT, subject.encode(), self._codec.encode(schema_id, event))
        return event


class QuarantineDesk:
    """What a steward does with quarantined records. ``schema_id_of(subject)``: the id the workers resolve."""

    def __init__(self, engine: sa.Engine, *, producer: KafkaProducer, codec: Codec,
                 schema_id_of: Callable[[str], int], audit: AuditLog, clock: Callable[[], float] = time.time) -> None:
        self._engine, self._producer, self._codec, self._audit, self._clock = engine, producer, codec, audit, clock
        self._schema_id_of = schema_id_of
        _metadata.create_all(engine)

    def list(self, dataset: str | None = None, rule: str | None = None, status: str | None = "open",
             limit: int = 100) -> list[dict[str, Any]]:
        """Items, oldest first, without their original bytes; ``status=None`` lists every status."""
        if status is not None and status not in STATUSES:
            raise UserError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        q = quarantine_items.c
        query = sa.select(*_LISTED).order_by(q.received_at, q.event_id).limit(max(1, min(int(limit), 1000)))
        for column, wanted in ((q.dataset, dataset), (q.rule, rule), (q.status, status)):
            if wanted is not None:
                query = query.where(column == wanted)
        with self._engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Open items: dataset -> rule -> count."""
        q = quarantine_items.c
        out: dict[str, dict[str, int]] = {}
        with self._engine.connect() as conn:
            for dataset, rule, n in conn.execute(sa.select(q.dataset, q.rule, sa.func.count()).where(q.status == "open")
                                                 .group_by(q.dataset, q.rule).order_by(q.dataset, q.rule)):
                out.setdefault(dataset, {})[rule] = int(n)
        return out

    def show(self, event_id: str) -> dict[str, Any]:
        """One item, its original value in a form a steward can read: avro or json (decoded), text or base64."""
        with self._engine.connect() as conn:
            item = _item(conn, event_id, open_only=False)
        return {**item, "original": readable(self._codec, item["original"])}

    def release(self, event_id: str, *, fixes: dict[str, str | None], by: str) -> dict[str, Any]:
        """Publish the fixed record to ``raw.<dataset>.v1`` under a new event id, then mark the item released."""
        actor = self._ready(by)
        with self._engine.begin() as conn:
            item = _item(conn, event_id, open_only=True)
            dataset = DATASETS.get(item["dataset"])
            if dataset is None or item["source_system"] == "unknown":
                raise UserError(f"record {event_id} has no known dataset or source to be released to; it can only be discarded")
            record = record_of(self._codec, item["original"])
            apply_fixes(record, contract(dataset.contract), fixes)
            version = release_version(item["source_version"])
            new_id = event_id_of(item["source_system"], item["source_key"], version)
            record["header"] = {"event_id": new_id, "source_system": item["source_system"], "source_key": item["source_key"],
                                "source_version": version, "ingested_at": _ms(self._clock)}
            topic = topics.raw(dataset.name)
            try:
                value = self._codec.encode(self._schema_id_of(topics.subject(topic)), record)
            except EncodeError as exc:
                raise UserError(f"the fixed record still does not fit {dataset.contract}: {exc}") from None
            fixed = ", ".join(sorted(fixes)) or "none"
            return self._close(conn, item, actor=actor, status="released", action="quarantine.release",
                               resolution=f"released as {new_id}; fixed fields: {fixed}", released_event_id=new_id,
                               publish=lambda: _deliver(self._producer, topic, item["source_key"].encode(), value),
                               details={"fixed_fields": fixed, "released_event_id": new_id, "topic": topic})

    def discard(self, event_id: str, *, reason: str, by: str) -> dict[str, Any]:
        """Close an item for good; the reason is required and kept."""
        reason = (reason or "").strip()
        if not reason:
            raise UserError("a reason is required to discard a quarantined record")
        actor = self._ready(by)
        with self._engine.begin() as conn:
            item = _item(conn, event_id, open_only=True)
            return self._close(conn, item, actor=actor, status="discarded", action="quarantine.discard",
                               resolution=reason, details={"reason": reason})

    def _ready(self, by: str) -> str:
        actor = (by or "").strip()
        if not actor or len(actor) > 128:
            raise UserError("say who is acting (by): a user name of at most 128 characters")
        self._audit.prepare()  # before the transaction: on SQLite the registry may share this database, which it locks
        return actor

    def _close(self, conn: sa.Connection, item: dict[str, Any], *, actor: str, status: str, action: str, resolution: str,
               details: dict[str, str], released_event_id: str | None = None,
               publish: Callable[[], None] | None = None) -> dict[str, Any]:
        # The row is updated first and committed last: a concurrent action waits for it, then finds it closed.
        values = {"status": status, "resolution": resolution, "resolved_by": actor, "resolved_at": _ms(self._clock),
                  "released_event_id": released_event_id}
        q = quarantine_items.c
        event_id = item["event_id"]
        if conn.execute(sa.update(quarantine_items).where(q.event_id == event_id, q.status == "open")
                        .values(**values)).rowcount != 1:
            raise NotOpen(f"quarantined record {event_id} was resolved by someone else meanwhile")
        if publish is not None:
            publish()
        self._audit.record(actor=actor, action=action, subject=f"quarantine/{event_id}",
                           event_id=str(uuid.uuid5(_NS, f"{action}/{event_id}")),
                           details={"dataset": item["dataset"], "rule": item["rule"], **details})
        log.info("quarantined record resolved", extra={"stage": "quarantine", "event_id": event_id, "rule": item["rule"],
                                                         "status": status})
        return {**{k: v for k, v in item.items() if k != "original"}, **values}


def _item(conn: sa.Connection, event_id: str, *, open_only: bool) -> dict[str, Any]:
    row = conn.execute(sa.select(quarantine_items).where(quarantine_items.c.event_id == event_id)).first()
    if row is None:
        raise NotFound(f"no quarantined record {event_id!r}")
    item = {**row._mapping, "original": bytes(row.original)}
    if open_only and item["status"] != "open":
        raise NotOpen(f"quarantined record {event_id} is already {item['status']} by {item['resolved_by']}: "
                      f"{item['resolution']}")
    return item
