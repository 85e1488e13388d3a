"""The source runner: poll, stamp headers, encode, produce, and store the position after delivery.

Records that do not fit the contract (a NULL in a required column, a value of
the wrong type) go to the dataset's quarantine topic with the reason and the
record mapped to the contract, so a steward can fix and release it; the run goes on. So do records the
source already knows to be bad (a :class:`~connectors.base.Problem`: a line that is not JSON), with the
source's rule and reason and the record as read. A delete (``SourceRecord.deleted``) is published like any
record, with ``header.deleted`` set. A delivery failure is an infrastructure failure:
``run_once`` raises before the position is stored, so a restart replays the batch.

``step`` (and ``run``, its loop) survive outages instead: a source that cannot
be read, a batch the broker did not acknowledge, or a broker that does not
answer is waited out with bounded exponential back-off (:mod:`connectors.backoff`),
reported by ``health()`` and the ``gsp_connector_up`` gauge, and the source is
rewound to the last stored position before the next attempt. Every few seconds,
idle or not, the runner also checks that the broker still holds its last stored
position; an embedded broker restarted empty does not, and then the source is
replayed from the beginning so the new broker receives everything again
(idempotent sinks absorb the replay).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.backoff import Backoff
from connectors.base import Source, SourceRecord, SourceUnavailable
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore, PositionLost
from schemas import envelope, topics
from schemas.codec import Codec, EncodeError
from schemas.datasets import Dataset
from schemas.envelope import event_id  # re-exported: the desks and tools import it from here

__all__ = ["DeliveryFailed", "SourceRunner", "Target", "event_id"]

log = logging.getLogger("gsp.connector")


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge a batch; its position was not stored."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where a source's records go and under which contracts."""
    dataset: str
    source_system: str
    topic: str
    schema_id: int
    schema: dict[str, Any]
    quarantine_topic: str
    quarantine_schema_id: int

    @classmethod
    def of(cls, dataset: Dataset, *, schema_id: int, quarantine_schema_id: int, topic: str | None = None,
           quarantine_topic: str | None = None, source_system: str | None = None) -> Target:
        """A declared dataset's target: its source system and contract, its raw and quarantine topics unless renamed.

        ``source_system`` overrides the declared one, for a dataset fed by several systems (one connector per
        carrier): event ids derive from it, so the same key in two systems gives two events."""
        return cls(dataset=dataset.name, source_system=source_system or dataset.source_system,
                   topic=topic or topics.raw(dataset.name),
                   schema_id=schema_id, schema=dataset.avro,
                   quarantine_topic=quarantine_topic or topics.quarantine(dataset.name),
                   quarantine_schema_id=quarantine_schema_id)


def _required_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for f in schema.get("fields", []):
        t = f["type"]
        if f["name"] == "header" or "default" in f or (isinstance(t, list) and "null" in t):
            continue  # a field with a default is filled by the codec when the source has no column for it
        path = prefix + f["name"]
        paths.append(path)
        if isinstance(t, dict) and t.get("type") == "record":
            paths.extend(_required_paths(t, path + "."))
    return paths


def _lookup(value: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)  # type: ignore[assignment]
    return value


class SourceRunner:
    def __init__(self, source: Source, target: Target, *, producer: KafkaProducer, codec: Codec,
                 offsets: OffsetStore, metrics: ConnectorMetrics, batch_size: int = 2000,
                 clock: Callable[[], float] = time.time, check_every_s: float = 3.0, backoff_cap_s: float = 30.0,
                 flush_timeout_s: float = 30.0, connector: str | None = None, task: int = 0) -> None:
        """``connector`` and ``task``: the metrics' labels (default: the source's name, task 0); a task of a
        connector with several partitions runs one runner per partition, each source named by its position key."""
        self._source = source
        self._label, self._task = connector or source.name, task
        self._target = target
        self._producer = producer
        self._codec = codec
        self._offsets = offsets
        self._metrics = metrics
        self._batch_size = batch_size
        self._clock = clock
        self._check_every_s = check_every_s
        self._flush_timeout_s = flush_timeout_s
        required = _required_paths(target.schema)
        self._required = required
        self._required_top = [path for path in required if "." not in path]  # checked with one dict.get each
        self._required_nested = [path for path in required if "." in path]
        self._position: dict[str, Any] | None = None  # the last position the broker acknowledged
        self._checked = time.monotonic()
        context = {"stage": "connector", "connector": source.name}
        self._source_backoff = Backoff(f"source of {source.name}", log, cap_s=backoff_cap_s, extra=context)
        self._broker_backoff = Backoff(f"broker for {source.name}", log, cap_s=backoff_cap_s, extra=context)
        self.published = 0
        self.quarantined = 0
        self.replays = 0
        self._acknowledged: dict[tuple[str, int], int] = {}  # (topic, partition) -> highest offset acknowledged
        metrics.declare(self._label, kind="source", task=task)

    def start(self) -> None:
        self._position = self._offsets.load(self._source.name)
        self._source.start(self._position)

    def run_once(self) -> int:
        """Publish one batch and store its position; the number of records handled.

        Raises :class:`SourceUnavailable` or :class:`DeliveryFailed` (or kafka-python's errors) on an outage."""
        records = self._poll()
        if records:
            self._publish(records)
        return len(records)

    def step(self) -> tuple[int, float]:
        """One batch, surviving outages: (records handled, seconds to wait before the next step)."""
        try:
            broker_answered = self._watch_broker()
            records = self._poll()
            self._source_backoff.succeeded()
            if records:
                self._publish(records)
                broker_answered = True
        except SourceUnavailable as exc:
            return 0, self._failed(self._source_backoff, exc)
        except (DeliveryFailed, KafkaError) as exc:
            self._source.start(self._position)  # what was not acknowledged is read again
            return 0, self._failed(self._broker_backoff, exc)
        except Exception as exc:  # unforeseen (a driver's own error): logged whole, waited out like an outage
            log.exception("connector step failed", extra={"stage": "connector", "connector": self._source.name})
            self._source.start(self._position)
            return 0, self._failed(self._source_backoff, exc)
        if broker_answered:
            self._broker_backoff.succeeded()
        self._metrics.running(self._label, healthy=self.healthy, task=self._task)
        return len(records), 0.0

    def run(self, stop: threading.Event, *, idle_s: float = 0.2) -> None:
        try:
            while not stop.is_set():
                handled, wait_s = self.step()
                if wait_s or not handled:
                    stop.wait(wait_s or idle_s)
        finally:
            self._metrics.stopped(self._label, task=self._task)

    @property
    def healthy(self) -> bool:
        return self._source_backoff.state.up and self._broker_backoff.state.up

    def health(self) -> dict[str, Any]:
        """For /health: whether the source and the broker answer, and what was moved."""
        return {"status": "ok" if self.healthy else "degraded", "connector": self._source.name,
                "source": self._source_backoff.state.as_dict(), "broker": self._broker_backoff.state.as_dict(),
                "published": self.published, "quarantined": self.quarantined, "replays": self.replays}

    def close(self) -> None:
        """Close the runner's own clients (the offset store's watcher); the producer and source are the caller's."""
        self._offsets.close()

    def _poll(self) -> list[SourceRecord]:
        records = self._source.poll(self._batch_size)
        self._metrics.polled.labels(self._label).inc(len(records))
        return records

    def _failed(self, backoff: Backoff, exc: BaseException) -> float:
        self._metrics.errors.labels(self._label).inc()
        self._metrics.up.labels(self._label).set(0)
        return backoff.failed(exc)

    def _watch_broker(self) -> bool:
        """Replay from the beginning if the broker lost the stored position; whether the broker was asked."""
        if self._broker_backoff.state.up and time.monotonic() - self._checked < self._check_every_s:
            return False
        self._checked = time.monotonic()
        if self._offsets.lost():
            self._offsets.forget()
            self._replay()
        return True

    def _log_went_back(self, acknowledged: list[Any]) -> bool:
        """True if the broker acknowledged a record of this batch at an offset at or below one it acknowledged
        before on the same partition of the dataset's topic: a log only grows, so that is a new, empty broker.
        The position check alone misses it when the position stored last was itself re-sent to the new broker
        by the producer's retries (it is then there, same offset and bytes, while the rows before it are not)."""
        went_back = False
        batch: dict[tuple[str, int], int] = {}
        for metadata in acknowledged:
            if metadata.topic == self._target.topic:
                tp = (metadata.topic, metadata.partition)
                went_back |= metadata.offset <= self._acknowledged.get(tp, -1)
                batch[tp] = max(batch.get(tp, -1), metadata.offset)
        self._acknowledged.update(batch)
        return went_back

    def _replay(self) -> None:
        """The broker lost what this connector published: everything again, from the source's first row (a
        position the new broker may already hold was stored after the loss, and would skip the rest)."""
        self._position = None
        self._acknowledged = {}
        log.warning("the broker lost this connector's stored position (restarted empty?); replaying the source",
                    extra={"stage": "connector", "connector": self._source.name})
        self._source.start(None)
        self.replays += 1

    def _publish(self, records: list[SourceRecord]) -> None:
        started = time.perf_counter()
        send = self._producer.send
        futures = []
        quarantined = 0
        for record in records:
            topic, value, ok = self._encode(record)
            futures.append(send(topic, key=record.key.encode(), value=value))
            quarantined += not ok
        published = len(records) - quarantined
        self._producer.flush(timeout=self._flush_timeout_s)
        failed = [f for f in futures if not f.succeeded()]
        if failed:
            raise DeliveryFailed(f"{len(failed)} of {len(futures)} records of {self._source.name} not acknowledged: "
                                 f"{failed[0].exception}")
        if self._log_went_back([f.value for f in futures]):
            self._offsets.forget()
            self._replay()  # as below: this batch is on the new broker and goes again with the rest
            return
        try:
            self._offsets.store(self._source.name, records[-1].position)
        except PositionLost:
            self._metrics.offset_commits.labels(self._label, "failure").inc()
            self._replay()  # this batch is on the new broker; it goes again with the rest (sinks upsert)
            return
        except BaseException:
            self._metrics.offset_commits.labels(self._label, "failure").inc()
            raise
        self._metrics.offset_commits.labels(self._label, "success").inc()
        self._position = records[-1].position
        self.published += published
        self.quarantined += quarantined
        self._metrics.records.labels(self._label, "published").inc(published)
        self._metrics.records.labels(self._label, "quarantined").inc(quarantined)
        self._metrics.batch_seconds.labels(self._label).observe(time.perf_counter() - started)

    def _encode(self, record: SourceRecord) -> tuple[str, bytes, bool]:
        header = envelope.header(self._target.source_system, record.key, record.version, int(self._clock() * 1000),
                                 deleted=record.deleted)
        value = record.value
        # Top-level fields in one C-level pass (``in`` tests identity first), the exact list only when one may be
        # NULL; nested paths after them, in the same order as ``_required`` when every top-level one is set.
        missing = ([path for path in self._required if _lookup(value, path) is None]
                   if None in map(value.get, self._required_top) else
                   [path for path in self._required_nested if _lookup(value, path) is None])
        field: str | None
        if record.problem is not None:
            rule, field, reason = record.problem.rule, None, record.problem.reason
        elif missing:
            rule, field, reason = "schema.required", missing[0], f"required column for {missing[0]} is NULL"
        else:
            try:
                return self._target.topic, self._codec.encode(self._target.schema_id, {**record.value, "header": header}), True
            except EncodeError as exc:
                rule, field, reason = "schema.invalid", None, str(exc)
        if record.origin and record.problem is None:
            reason = f"{record.origin}: {reason}"
        log.info("record quarantined", extra={"stage": "connector", "connector": self._source.name,
                                                 "event_id": header["event_id"], "rule": rule})
        # Not on any topic yet: the original is the row as mapped to the contract (or as read, when the source
        # could not map it), and there is no source position.
        issue = envelope.quarantine_issue(header=header, dataset=self._target.dataset, stage="connector", key=record.key,
                                          rule=rule, field=field, reason=reason,
                                          original=record.problem.original if record.problem is not None else
                                          json.dumps(record.value, default=str, ensure_ascii=False).encode())
        return self._target.quarantine_topic, self._codec.encode(self._target.quarantine_schema_id, issue), False
