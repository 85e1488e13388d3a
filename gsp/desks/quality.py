"""Quality scorecards for data stewards: snapshots in SQL, and `gsp quality report`.

Workers publish cumulative tallies on ``gsp.quality``; the recorder keeps the
latest tally of every worker, sums them per dataset, and stores a snapshot row
(at most one per dataset per ``every_s``) so trends can be shown.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, TextIO

import sqlalchemy as sa
from kafka import KafkaConsumer

from gsp.desks.base import commit
from gsp.errors import UserError
from schemas import topics
from schemas.codec import Codec, CodecError
from streams.quality import DIMENSIONS, merge, scores, worst_fields

__all__ = ["QualityRecorder", "latest_scores", "latest_snapshots", "render_report", "report"]

_metadata = sa.MetaData()
_snapshots = sa.Table(
    "quality_snapshots", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(128), nullable=False, index=True),
    sa.Column("taken_at", sa.BigInteger, nullable=False),
    sa.Column("records", sa.BigInteger, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
    sa.Column("cells", sa.Text, nullable=False),
    sa.Column("rules", sa.Text, nullable=False),
)


class QualityRecorder:
    def __init__(self, bootstrap: str, engine: sa.Engine, codec: Codec, *, consumer_config: dict[str, Any],
                 every_s: float = 10.0) -> None:
        self._engine = engine
        self._codec = codec
        self._every_s = every_s
        _metadata.create_all(engine)
        self._consumer = KafkaConsumer(topics.QUALITY, group_id="gsp-control-quality", auto_offset_reset="earliest",
                                       enable_auto_commit=False, **consumer_config)
        self._latest: dict[str, dict[str, dict[str, Any]]] = {}   # dataset -> worker -> snapshot
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def run_once(self, *, timeout_ms: int = 200) -> None:
        for messages in self._consumer.poll(timeout_ms=timeout_ms).values():
            for message in messages:
                try:
                    _, snapshot = self._codec.decode(message.value)
                except CodecError:
                    continue
                with self._lock:
                    self._latest.setdefault(snapshot["dataset"], {})[snapshot["worker"]] = snapshot
        now = time.monotonic()
        for dataset in list(self._latest):
            if now - self._written.get(dataset, 0.0) >= self._every_s:
                self.record(dataset)
        commit(self._consumer, stage="quality")  # skipped mid-rebalance: the tallies are cumulative, re-reading is harmless

    def records(self, dataset: str) -> int:
        with self._lock:
            return sum(s["records"] for s in self._latest.get(dataset, {}).values())

    def record(self, dataset: str) -> dict[str, Any]:
        """Store the current sum of the workers' tallies for a dataset."""
        with self._lock:
            merged = merge(self._latest.get(dataset, {}).values())
        row = {"dataset": dataset, "taken_at": int(time.time() * 1000), "records": merged["records"],
               "scores": json.dumps(scores(merged["cells"])), "cells": json.dumps(merged["cells"]),
               "rules": json.dumps(merged["rules"])}
        with self._engine.begin() as conn:
            conn.execute(sa.insert(_snapshots).values(**row))
        self._written[dataset] = time.monotonic()
        return row

    def run(self, stop: threading.Event) -> None:
        """Until stopped; a database or broker failure raises, for the supervisor to back off and restart."""
        while not stop.is_set():
            self.run_once()

    def close(self) -> None:
        self._consumer.close()


def latest_snapshots(engine: sa.Engine, dataset: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The newest two snapshots per dataset (newest first)."""
    _metadata.create_all(engine)
    out: dict[str, list[dict[str, Any]]] = {}
    query = sa.select(_snapshots).order_by(_snapshots.c.dataset, _snapshots.c.taken_at.desc(), _snapshots.c.id.desc())
    if dataset:
        query = query.where(_snapshots.c.dataset == dataset)
    with engine.connect() as conn:
        for row in conn.execute(query):
            rows = out.setdefault(row.dataset, [])
            if len(rows) < 2:
                rows.append({"taken_at": row.taken_at, "records": row.records, "scores": json.loads(row.scores),
                             "cells": json.loads(row.cells), "rules": json.loads(row.rules)})
    return out


def latest_scores(engine: sa.Engine) -> dict[str, dict[str, float | None]]:
    """Dataset -> the scores of its latest snapshot. One row per dataset is read, however long the history: the
    catalog asks on every request, while `latest_snapshots` walks every snapshot ever taken."""
    _metadata.create_all(engine)
    newest = sa.select(sa.func.max(_snapshots.c.id)).group_by(_snapshots.c.dataset)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_snapshots.c.dataset, _snapshots.c.scores).where(_snapshots.c.id.in_(newest)))
        return {row.dataset: json.loads(row.scores) for row in rows}


def _quarantine_states(engine: sa.Engine) -> dict[str, dict[str, int]]:
    """dataset -> status (open, released, discarded) -> items, from the stewards' quarantine desk."""
    from gsp.desks.quarantine import quarantine_items as q

    q.metadata.create_all(engine)
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for dataset, status, n in conn.execute(sa.select(q.c.dataset, q.c.status, sa.func.count())
                                               .group_by(q.c.dataset, q.c.status)):
            out.setdefault(dataset, {})[status] = int(n)
    return out


def report(engine: sa.Engine, dataset: str | None = None) -> dict[str, Any]:
    """Per dataset: the four scores, the worst fields and rules, the change since the previous snapshot,
    and the quarantine left unresolved ("sạch" also means nothing left in quarantine).

    An unreachable or unusable database is a UserError naming it: the reader can fix the URL or start it."""
    try:
        quarantine = _quarantine_states(engine)
        snapshots = latest_snapshots(engine, dataset)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        raise UserError(f"control-plane database {engine.url.render_as_string(hide_password=True)} "
                        f"unreachable: {reason}") from None
    result: dict[str, Any] = {}
    for name, (latest, *previous) in snapshots.items():
        before = previous[0]["scores"] if previous else {}
        result[name] = {
            "taken_at": latest["taken_at"], "records": latest["records"], "scores": latest["scores"],
            "trend": {d: (round(latest["scores"][d] - before[d], 6)
                          if latest["scores"].get(d) is not None and before.get(d) is not None else None)
                      for d in DIMENSIONS},
            "worst_fields": worst_fields(latest["cells"]),
            "worst_rules": sorted(latest["rules"].items(), key=lambda kv: (-kv[1], kv[0]))[:5],
            "quarantine": quarantine.get(name, {}),
        }
    return result


def render_report(data: dict[str, Any], out: TextIO) -> None:
    labels = {"correct": "correct (đúng)", "complete": "complete (đủ)", "clean": "clean (sạch)", "live": "live (sống)"}
    for dataset, r in data.items():
        out.write(f"{dataset}: {r['records']} records\n")
        for d in DIMENSIONS:
            score, trend = r["scores"].get(d), r["trend"].get(d)
            shown = "   n/a" if score is None else f"{score:6.3f}"
            change = "" if trend is None else f"  ({trend:+.3f} since previous)"
            out.write(f"  {labels[d]:<16} {shown}{change}\n")
        out.write("  worst fields: " + ", ".join(f"{c['field']} {c['dimension']} {c['failures']}/{c['checks']}"
                                                 for c in r["worst_fields"]) + "\n")
        out.write("  worst rules:  " + ", ".join(f"{rule} {n}" for rule, n in r["worst_rules"]) + "\n")
        states = r["quarantine"]
        out.write(f"  quarantine:   {states.get('open', 0)} open, {states.get('released', 0)} released, "
                  f"{states.get('discarded', 0)} discarded\n\n")
