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

import datetime
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer

from connectors.runner import event_id as event_id_of
from gsp.desks import base as desk
from gsp.desks.base import AuditLog, NotOpen, Unavailable  # re-exported
from gsp.desks.quarantine_values import apply_fixes, readable, record_of, release_version
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from schemas import topics
from schemas.codec import Codec, DecodeError, EncodeError

__all__ = ["GROUP", "AuditLog", "NotOpen", "QuarantineDesk", "QuarantineIndexer", "Unavailable", "quarantine_items"]

log = logging.getLogger("gsp.quarantine")
GROUP = "gsp-control-quarantine"
STATUSES = ("open", "released", "discarded")
_VIETNAM = datetime.timezone(datetime.timedelta(hours=7))
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


class QuarantineIndexer(desk.Indexer):
    """Consumes every dataset's quarantine topic into ``quarantine_items``; offsets are committed after the write."""

    stage = "quarantine"

    def __init__(self, bootstrap: str, engine: sa.Engine, codec: Codec, *, consumer_config: dict[str, Any] | None = None,
                 group: str = GROUP, datasets: Iterable[str] = DATASETS) -> None:
        super().__init__(bootstrap, engine, table=quarantine_items, sources=[topics.quarantine(d) for d in datasets],
                         group=group, consumer_config=consumer_config)
        self._codec = codec

    def _row(self, message: Any) -> dict[str, Any]:
        base = {"status": "open", "received_at": self.received_at(message)}
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
        return self.columns_of(quarantine_items, row)


class QuarantineDesk:
    """What a steward does with quarantined records. ``schema_id_of(subject)``: the id the workers resolve."""

    def __init__(self, engine: sa.Engine, *, producer: KafkaProducer, codec: Codec,
                 schema_id_of: Callable[[str], int], audit: AuditLog, clock: Callable[[], float] = time.time) -> None:
        self._engine, self._producer, self._codec, self._audit, self._clock = engine, producer, codec, audit, clock
        self._schema_id_of = schema_id_of
        _metadata.create_all(engine)

    def list(self, dataset: str | None = None, rule: str | None = None, status: str | None = "open",
             limit: int = 100, date: str | None = None) -> list[dict[str, Any]]:
        """Items, oldest first, without their original bytes; ``status=None`` lists every status; ``date``
        (YYYY-MM-DD): only items received that day, Vietnam time."""
        q = quarantine_items.c
        wanted = {q.dataset: dataset, q.rule: rule, q.status: desk.check_status(status, STATUSES)}
        also = [q.received_at.between(*_day(date))] if date else []
        return desk.list_items(self._engine, _LISTED, order_by=[q.received_at, q.event_id], where=wanted, limit=limit,
                               also=also)

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
        actor = self._audit.ready(by)
        with self._engine.begin() as conn:
            item = _item(conn, event_id, open_only=True)
            dataset = DATASETS.get(item["dataset"])
            if dataset is None or item["source_system"] == "unknown":
                raise UserError(f"record {event_id} has no known dataset or source to be released to; it can only be discarded")
            record = record_of(self._codec, item["original"])
            apply_fixes(record, dataset.avro, fixes)
            version = release_version(item["source_version"])
            new_id = event_id_of(item["source_system"], item["source_key"], version)
            record["header"] = {"event_id": new_id, "source_system": item["source_system"], "source_key": item["source_key"],
                                "source_version": version, "ingested_at": desk.now_ms(self._clock)}
            topic = topics.raw(dataset.name)
            try:
                value = self._codec.encode(self._schema_id_of(topics.subject(topic)), record)
            except EncodeError as exc:
                raise UserError(f"the fixed record still does not fit {dataset.contract}: {exc}") from None
            fixed = ", ".join(sorted(fixes)) or "none"
            return self._close(conn, item, actor=actor, status="released", action="quarantine.release",
                               resolution=f"released as {new_id}; fixed fields: {fixed}", released_event_id=new_id,
                               publish=lambda: desk.deliver(self._producer, topic, item["source_key"].encode(), value),
                               details={"fixed_fields": fixed, "released_event_id": new_id, "topic": topic})

    def discard(self, event_id: str, *, reason: str, by: str) -> dict[str, Any]:
        """Close an item for good; the reason is required and kept."""
        reason = (reason or "").strip()
        if not reason:
            raise UserError("a reason is required to discard a quarantined record")
        actor = self._audit.ready(by)
        with self._engine.begin() as conn:
            item = _item(conn, event_id, open_only=True)
            return self._close(conn, item, actor=actor, status="discarded", action="quarantine.discard",
                               resolution=reason, details={"reason": reason})

    def _close(self, conn: sa.Connection, item: dict[str, Any], *, actor: str, status: str, action: str, resolution: str,
               details: dict[str, str], released_event_id: str | None = None,
               publish: Callable[[], None] | None = None) -> dict[str, Any]:
        values = {"status": status, "resolution": resolution, "resolved_by": actor,
                  "resolved_at": desk.now_ms(self._clock), "released_event_id": released_event_id}
        event_id = item["event_id"]
        desk.claim(conn, quarantine_items, event_id, values, what="quarantined record")
        if publish is not None:
            publish()
        self._audit.record(actor=actor, action=action, subject=f"quarantine/{event_id}",
                           event_id=str(uuid.uuid5(_NS, f"{action}/{event_id}")), conn=conn,
                           details={"dataset": item["dataset"], "rule": item["rule"], **details})
        log.info("quarantined record resolved", extra={"stage": "quarantine", "event_id": event_id, "rule": item["rule"],
                                                         "status": status})
        return {**{k: v for k, v in item.items() if k != "original"}, **values}


def _day(date: str) -> tuple[int, int]:
    """The first and last epoch millisecond of a day (YYYY-MM-DD) in Vietnam time (UTC+7, no daylight saving)."""
    try:
        start = datetime.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=_VIETNAM)
    except ValueError:
        raise UserError(f"date {date!r} is not a day: YYYY-MM-DD") from None
    first = int(start.timestamp() * 1000)
    return first, first + 86_400_000 - 1


def _item(conn: sa.Connection, event_id: str, *, open_only: bool) -> dict[str, Any]:
    item = desk.fetch(conn, quarantine_items, event_id, what="quarantined record")
    if open_only and item["status"] != "open":
        raise NotOpen(f"quarantined record {event_id} is already {item['status']} by {item['resolved_by']}: "
                      f"{item['resolution']}")
    return item
