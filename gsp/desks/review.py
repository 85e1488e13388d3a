"""The stewards' match review: pairs the matcher proposed, and the desk where they are accepted or rejected.

The stream worker writes a MatchResult to ``review.<dataset>.v1`` when it
proposes a registry record for a subscriber: POSSIBLE when its probabilistic
search found someone likely for an unknown id, MISMATCH when the record of the
subscriber's own id disagrees on some fields but is likely the same person.
The :class:`ReviewIndexer` copies those into the control plane's database keyed
by event id; an item whose pair (dataset, source key, personal id) was already
decided is stored closed with that decision, so a pair is never asked twice.
The :class:`ReviewDesk` publishes a decision as three acknowledged events before
it closes the item (and any other open item of the pair):

- a ReviewDecision on the compacted ``gsp.review.decisions``, keyed by the pair,
  which the workers follow so they apply it instead of asking again;
- a MatchResult (method ``review``) on ``match.<dataset>.v1``, so the share
  stage delivers it: MATCHED with the proposed personal id for an accept; for
  a reject NO_MATCH without one (a POSSIBLE), or the MISMATCH again (the worker
  does the same with a remembered decision). Its event id follows from the item
  and the decision, so a decision retried after a failure republishes the same
  event;
- an AuditEvent on ``gsp.audit``.

Decisions are also kept in ``review_decisions``, by pair, apart from the items:
:meth:`ReviewDesk.export` writes them as labelled pairs for re-estimating m.
"""

from __future__ import annotations

import csv
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from kafka import KafkaProducer

from connectors.runner import event_id as event_id_of
from gsp.desks import base as desk
from gsp.desks.quarantine_values import readable
from gsp.desks.review_registry import Lookup, compared
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from schemas import topics
from schemas.codec import Codec, DecodeError
from schemas.envelope import Verdict
from streams.matching import decided_verdict

__all__ = ["GROUP", "ReviewDesk", "ReviewIndexer", "review_decisions", "review_items"]

log = logging.getLogger("gsp.review")
GROUP = "gsp-control-review"
STATUSES = ("open", "accepted", "rejected")
_NS = uuid.UUID("6b1f0e2d-3c4a-5b6c-9d7e-8f9a0b1c2d3e")
_SOURCE = "gsp.review"  # source system of decision events
_MATCHED = tuple(d.name for d in DATASETS.values() if d.linked)
_EXPORTED = ("dataset", "source_key", "personal_id", "decision", "probability", "decided_by", "decided_at")

_metadata = sa.MetaData()
review_items = sa.Table(
    "review_items", _metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),  # the proposed MatchResult header's event id
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("source_key", sa.String(256), nullable=False),
    sa.Column("personal_id", sa.String(64), nullable=False),  # the registry record proposed
    sa.Column("verdict", sa.String(16), nullable=False),  # the worker's: POSSIBLE (searched) or MISMATCH (own id)
    sa.Column("probability", sa.Float),
    sa.Column("score", sa.Float, nullable=False),  # match weight
    sa.Column("levels", sa.Text, nullable=False),  # JSON: comparison -> agreement level
    # Carried over to the decided MatchResult: the fields' agreement, the proposal's header (JSON) and record.
    sa.Column("agreeing_fields", sa.Text, nullable=False),
    sa.Column("disagreeing_fields", sa.Text, nullable=False),
    sa.Column("header", sa.Text, nullable=False),
    sa.Column("record", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | accepted | rejected
    sa.Column("decided_by", sa.String(128)),
    sa.Column("reason", sa.Text),
    sa.Column("decided_at", sa.BigInteger),  # epoch milliseconds
    sa.Column("match_event_id", sa.String(64)),  # the decided MatchResult's event id
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Index("ix_review_items_work", "status", "dataset"),
    sa.Index("ix_review_items_pair", "dataset", "source_key", "personal_id"),
)
review_decisions = sa.Table(
    "review_decisions", _metadata,
    sa.Column("dataset", sa.String(128), primary_key=True),
    sa.Column("source_key", sa.String(256), primary_key=True),
    sa.Column("personal_id", sa.String(64), primary_key=True),
    sa.Column("decision", sa.String(16), nullable=False),  # ACCEPTED | REJECTED
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_by", sa.String(128), nullable=False),
    sa.Column("decided_at", sa.BigInteger, nullable=False),
    sa.Column("probability", sa.Float),
    sa.Column("levels", sa.Text, nullable=False),
    sa.Column("item_id", sa.String(64), nullable=False),  # the item the steward decided on
)
_LISTED = [c for c in review_items.c if c.name not in ("record", "header", "agreeing_fields", "disagreeing_fields")]


class ReviewIndexer(desk.Indexer):
    """Consumes every matched dataset's review topic into ``review_items``; offsets are committed after the write."""

    stage = "review"

    def __init__(self, bootstrap: str, engine: sa.Engine, codec: Codec, *, consumer_config: dict[str, Any] | None = None,
                 group: str = GROUP, datasets: Iterable[str] = _MATCHED) -> None:
        super().__init__(bootstrap, engine, table=review_items, sources=[topics.review(d) for d in datasets],
                         group=group, consumer_config=consumer_config)
        self._codec = codec

    def _row(self, message: Any) -> dict[str, Any] | None:
        where = {"stage": "review", "topic": message.topic, "partition": message.partition, "offset": message.offset}
        try:
            _, result = self._codec.decode(message.value or b"")
        except DecodeError as exc:
            log.error("undecodable review event skipped", extra={**where, "error": str(exc)})
            return None
        if result["verdict"] not in (Verdict.POSSIBLE, Verdict.MISMATCH) or not result["personal_id"]:
            log.error("review event without a proposed pair skipped", extra={**where, "verdict": result["verdict"]})
            return None
        header = result["header"]
        return {"item_id": header["event_id"], "dataset": result["dataset"], "source_key": result["source_key"],
                "personal_id": result["personal_id"], "verdict": result["verdict"], "probability": result.get("probability"), "score": result["score"],
                "levels": _json(result.get("levels") or {}), "agreeing_fields": _json(result["agreeing_fields"]),
                "disagreeing_fields": _json(result["disagreeing_fields"]), "header": _json(header),
                "record": result["record"], "status": "open", "decided_by": None, "reason": None, "decided_at": None,
                "received_at": self.received_at(message)}

    def _store(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        # A pair decided already is not asked again, even if the worker proposed it before it saw the decision.
        d = review_decisions.c
        decided = {_pair(r._mapping): r for r in conn.execute(
            sa.select(review_decisions).where(d.source_key.in_({row["source_key"] for row in rows})))}
        for row in rows:
            decision = decided.get(_pair(row))
            if decision is not None:
                row.update(status=decision.decision.lower(), decided_by=decision.decided_by, reason=decision.reason,
                           decided_at=decision.decided_at)
        super()._store(conn, rows)


class ReviewDesk:
    """What a steward does with proposed matches. ``schema_id_of(subject)``: the id the workers resolve."""

    def __init__(self, engine: sa.Engine, *, producer: KafkaProducer, codec: Codec,
                 schema_id_of: Callable[[str], int], audit: desk.AuditLog, clock: Callable[[], float] = time.time,
                 registry: Lookup | None = None) -> None:
        """``registry``: the registry record of a personal id, shown beside an item (:mod:`gsp.desks.review_registry`)."""
        self._engine, self._producer, self._codec, self._audit, self._clock = engine, producer, codec, audit, clock
        self._schema_id_of = schema_id_of
        self._registry = registry
        _metadata.create_all(engine)

    def list(self, dataset: str | None = None, status: str | None = "open", limit: int = 100) -> list[dict[str, Any]]:
        """Items, oldest first, without their record; ``status=None`` lists every status."""
        q = review_items.c
        return [_listed(item) for item in desk.list_items(
            self._engine, _LISTED, order_by=[q.received_at, q.item_id], limit=limit,
            where={q.dataset: dataset, q.status: desk.check_status(status, STATUSES)})]

    def counts(self) -> dict[str, int]:
        """Open items per dataset."""
        q = review_items.c
        with self._engine.connect() as conn:
            return {dataset: int(n) for dataset, n in conn.execute(
                sa.select(q.dataset, sa.func.count()).where(q.status == "open").group_by(q.dataset).order_by(q.dataset))}

    def show(self, item_id: str) -> dict[str, Any]:
        """One item: the proposed personal id, probability and levels, next to the subscriber's record decoded."""
        with self._engine.connect() as conn:
            item = desk.fetch(conn, review_items, item_id, what="review item")
        return {**_listed(item), "agreeing_fields": json.loads(item["agreeing_fields"]),
                "disagreeing_fields": json.loads(item["disagreeing_fields"]), "record": readable(self._codec, item["record"])}

    def detail(self, item_id: str) -> dict[str, Any]:
        """:meth:`show`, and the registry entry beside it with the fields compared (``registry``,
        ``registry_error``, ``fields``: see :func:`gsp.desks.review_registry.compared`)."""
        shown = self.show(item_id)
        record = shown["record"]
        return {**shown, **compared(shown["dataset"], shown["personal_id"],
                                    record["value"] if record["format"] == "avro" else None, shown["levels"], self._registry)}

    def accept(self, item_id: str, *, by: str, reason: str = "") -> dict[str, Any]:
        """The subscriber is the proposed registry record: publish MATCHED, then close the item."""
        return self._decide(item_id, "ACCEPTED", by=by, reason=(reason or "").strip())

    def reject(self, item_id: str, *, by: str, reason: str) -> dict[str, Any]:
        """The subscriber is not the proposed registry record: publish NO_MATCH (MISMATCH for a subscriber's
        own id), then close the item."""
        reason = (reason or "").strip()
        if not reason:
            raise UserError("a reason is required to reject a proposed match")
        return self._decide(item_id, "REJECTED", by=by, reason=reason)

    def republish(self) -> int:
        """Every decision on record on ``gsp.review.decisions`` again (the broker lost the topic), as it was first
        published; how many. Unavailable if the broker does not acknowledge one: the caller tries again later."""
        schema_id = self._schema_id_of(topics.subject(topics.REVIEW_DECISIONS))
        with self._engine.connect() as conn:
            decisions = [dict(row._mapping) for row in conn.execute(sa.select(review_decisions))]
        for row in decisions:
            key = topics.decision_key(row["dataset"], row["source_key"], row["personal_id"])
            desk.deliver(self._producer, topics.REVIEW_DECISIONS, key.encode(),
                         self._codec.encode(schema_id, _decision(row, row["decision"], row)))
        return len(decisions)

    def export(self, out: TextIO | str | Path) -> int:
        """Every decision as CSV: the pair, decision, probability, who and when, and a ``level.<comparison>``
        column per comparison seen (empty where a pair has no level for it). The number of decisions written."""
        if isinstance(out, str | Path):
            with open(out, "w", newline="", encoding="utf-8") as file:
                return self.export(file)
        d = review_decisions.c
        with self._engine.connect() as conn:
            decisions = [{**row._mapping, "levels": json.loads(row.levels)} for row in conn.execute(
                sa.select(review_decisions).order_by(d.decided_at, d.dataset, d.source_key, d.personal_id))]
        comparisons = sorted({name for decision in decisions for name in decision["levels"]})
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*_EXPORTED, *(f"level.{name}" for name in comparisons)])
        for decision in decisions:
            writer.writerow([*(decision[c] for c in _EXPORTED), *(decision["levels"].get(name, "") for name in comparisons)])
        return len(decisions)

    def _decide(self, item_id: str, decision: str, *, by: str, reason: str) -> dict[str, Any]:
        actor = self._audit.ready(by)
        decision_schema_id = self._schema_id_of(topics.subject(topics.REVIEW_DECISIONS))
        with self._engine.begin() as conn:
            item = _open_item(conn, item_id)
            result_topic = topics.match(item["dataset"])
            result_schema_id = self._schema_id_of(topics.subject(result_topic))
            values = {"status": decision.lower(), "decided_by": actor, "reason": reason,
                      "decided_at": desk.now_ms(self._clock)}
            # Other open items of the pair (the worker proposed it again before anyone decided) close with it.
            closed = [item, *_open_siblings(conn, item)]
            for each in closed:
                desk.claim(conn, review_items, each["item_id"],
                           {**values, "match_event_id": _match_event_id(each["item_id"], decision)}, what="review item")
            event = _decision(item, decision, values)
            remembered = _remembered(event, item_id)
            conn.execute(desk.upsert(conn, review_decisions).values(**remembered).on_conflict_do_update(
                index_elements=[c.name for c in review_decisions.primary_key], set_=remembered))
            key = topics.decision_key(item["dataset"], item["source_key"], item["personal_id"])
            desk.deliver(self._producer, topics.REVIEW_DECISIONS, key.encode(), self._codec.encode(decision_schema_id, event))
            for each in closed:
                result = _result(each, decision, _match_event_id(each["item_id"], decision))
                desk.deliver(self._producer, result_topic, each["source_key"].encode(),
                             self._codec.encode(result_schema_id, result))
            also_closed = [each["item_id"] for each in closed[1:]]
            action = f"review.{'accept' if decision == 'ACCEPTED' else 'reject'}"
            self._audit.record(actor=actor, action=action, subject=f"review/{item_id}",
                               event_id=str(uuid.uuid5(_NS, f"{action}/{item_id}")), conn=conn,
                               details={"dataset": item["dataset"], "decision": decision, "reason": reason,
                                        "topic": result_topic, "match_event_id": _match_event_id(item_id, decision),
                                        "also_closed": ",".join(also_closed)})
        log.info("proposed match decided", extra={"stage": "review", "item_id": item_id, "decision": decision,
                                                   "also_closed": len(also_closed)})
        return {**_listed(item), **values, "match_event_id": _match_event_id(item_id, decision),
                "match_verdict": decided_verdict(item["verdict"], decision), "also_closed": also_closed}


def _open_item(conn: sa.Connection, item_id: str) -> dict[str, Any]:
    item = desk.fetch(conn, review_items, item_id, what="review item")
    if item["status"] != "open":
        because = f": {item['reason']}" if item["reason"] else ""
        raise desk.NotOpen(f"review item {item_id} is already {item['status']} by {item['decided_by']}{because}")
    return item


def _open_siblings(conn: sa.Connection, item: dict[str, Any]) -> list[dict[str, Any]]:
    q = review_items.c
    return [desk.fetch(conn, review_items, sibling, what="review item") for sibling in conn.execute(
        sa.select(q.item_id).where(q.dataset == item["dataset"], q.source_key == item["source_key"],
                                   q.personal_id == item["personal_id"], q.status == "open", q.item_id != item["item_id"])
        .order_by(q.received_at, q.item_id)).scalars()]


def _result(item: dict[str, Any], decision: str, match_event_id: str) -> dict[str, Any]:
    """The MatchResult a decision makes of a proposal: the same record, probability and levels, a verdict
    (:func:`streams.matching.decided_verdict`, as the worker applies it) and the proposed person unless NO_MATCH."""
    verdict = decided_verdict(item["verdict"], decision)
    return {"header": {**json.loads(item["header"]), "event_id": match_event_id}, "dataset": item["dataset"],
            "source_key": item["source_key"], "verdict": verdict,
            "personal_id": None if verdict is Verdict.NO_MATCH else item["personal_id"],
            "agreeing_fields": json.loads(item["agreeing_fields"]), "disagreeing_fields": json.loads(item["disagreeing_fields"]),
            "score": item["score"], "record": item["record"], "method": "review", "probability": item["probability"],
            "levels": json.loads(item["levels"])}


def _decision(item: dict[str, Any], decision: str, values: dict[str, Any]) -> dict[str, Any]:
    key = topics.decision_key(item["dataset"], item["source_key"], item["personal_id"])
    at = values["decided_at"]
    return {"header": {"event_id": event_id_of(_SOURCE, key, str(at)), "source_system": _SOURCE, "source_key": key,
                       "source_version": str(at), "ingested_at": at},
            "dataset": item["dataset"], "source_key": item["source_key"], "personal_id": item["personal_id"],
            "decision": decision, "reason": values["reason"], "decided_by": values["decided_by"], "decided_at": at,
            "probability": item["probability"], "levels": json.loads(item["levels"])}


def _remembered(event: dict[str, Any], item_id: str) -> dict[str, Any]:
    return {**{c.name: event[c.name] for c in review_decisions.c if c.name in event and c.name != "levels"},
            "levels": _json(event["levels"]), "item_id": item_id}


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    return {**{c.name: item[c.name] for c in _LISTED}, "levels": json.loads(item["levels"])}


def _pair(row: Any) -> tuple[str, str, str]:
    return row["dataset"], row["source_key"], row["personal_id"]


def _match_event_id(item_id: str, decision: str) -> str:
    return str(uuid.uuid5(_NS, f"{item_id}/{decision}"))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
