"""The sink runner: consume a topic, decode, write, flush, then commit offsets.

Offsets are committed only after the sink's flush returned, so a crash replays
events, and the sink's upsert by event id absorbs the replay.

Outages are waited out, never skipped over: when the sink cannot write
(:class:`SinkFailed`) or the registry cannot describe an event
(``SchemaUnavailable``), nothing is committed, every partition of the batch is
sought back to the batch's first offset, and the same events are polled and
written again after a bounded exponential back-off. A commit the broker
refused leaves the table ahead of the committed offsets, never behind.

Back-pressure: one batch is at most ``max_records`` events, and the next poll
waits until that batch is flushed and committed, so a slow sink slows the
consumer instead of growing memory. Beyond the batch only kafka-python's own
fetch buffer holds records (bounded by ``fetch_max_bytes``, 50 MB by default,
and ``max_partition_fetch_bytes`` per partition).

An idle sink asks the broker for its partitions' end offsets every ``PROBE_EVERY_S``: a poll
returns nothing both when nothing is new and when the broker is gone (kafka-python reconnects
quietly), so without the probe /health would say ok through a broker outage.

After an embedded broker was restarted empty, the group's offsets are gone
and the topic starts again at 0: the consumer rejoins, finds no committed
offset and reads the new topic from its beginning (``auto_offset_reset``
earliest, also when its old position is past the new end).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.backoff import Backoff
from connectors.base import Sink, SinkFailed
from connectors.metrics import ConnectorMetrics
from schemas.codec import Codec, CodecError, SchemaUnavailable

__all__ = ["PROBE_EVERY_S", "SinkRunner"]

log = logging.getLogger("gsp.sink")

PROBE_EVERY_S = 5.0  # how often an idle sink checks that the broker answers
PROBE_TIMEOUT_MS = 2000


class SinkRunner:
    def __init__(self, sink: Sink, *, topic: str, consumer_config: dict[str, Any], codec: Codec,
                 metrics: ConnectorMetrics, group: str | None = None, max_records: int = 500,
                 backoff_cap_s: float = 30.0, connector: str | None = None, task: int = 0) -> None:
        """``connector`` and ``task``: the metrics' labels (default: the sink's name, task 0)."""
        self._sink = sink
        self._label, self._task = connector or sink.name, task
        self._codec = codec
        self._metrics = metrics
        self._max_records = max_records
        self._topic = topic
        self._probed_at = time.monotonic()
        self._consumer = KafkaConsumer(topic, group_id=group or f"gsp-sink-{sink.name}", enable_auto_commit=False,
                                       auto_offset_reset="earliest", **consumer_config)
        context = {"stage": "sink", "sink": sink.name}
        self._sink_backoff = Backoff(f"sink {sink.name}", log, cap_s=backoff_cap_s, extra=context)
        self._registry_backoff = Backoff(f"schema registry for sink {sink.name}", log, cap_s=backoff_cap_s,
                                         extra=context)
        self._broker_backoff = Backoff(f"broker for sink {sink.name}", log, cap_s=backoff_cap_s, extra=context)
        self.written = 0
        self.undecodable = 0
        metrics.declare(self._label, kind="sink", task=task)

    def run_once(self, *, timeout_ms: int = 200) -> int:
        """Write and commit one batch; the number of events written. Raises on an outage, committing nothing."""
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=self._max_records)
        if not polled:
            return 0
        self._metrics.read.labels(self._label).inc(sum(len(batch) for batch in polled.values()))
        started = time.perf_counter()
        try:
            events = self._decode(polled)
            self._sink.write_batch(events)
            self._sink.flush()
        except BaseException:
            for tp, batch in polled.items():
                self._consumer.seek(tp, batch[0].offset)  # the same events, again, on the next poll
            raise
        try:
            self._consumer.commit()
        except BaseException:
            self._metrics.offset_commits.labels(self._label, "failure").inc()
            raise
        self._metrics.offset_commits.labels(self._label, "success").inc()
        self.written += len(events)
        self._metrics.records.labels(self._label, "written").inc(len(events))
        self._metrics.batch_seconds.labels(self._label).observe(time.perf_counter() - started)
        return len(events)

    def step(self, *, timeout_ms: int = 200) -> tuple[int, float]:
        """One batch, surviving outages: (events written, seconds to wait before the next step)."""
        try:
            written = self.run_once(timeout_ms=timeout_ms)
        except SinkFailed as exc:
            return 0, self._failed(self._sink_backoff, exc)
        except SchemaUnavailable as exc:
            return 0, self._failed(self._registry_backoff, exc)
        except KafkaError as exc:  # the commit: the rows are in the table, the offsets follow on a later batch
            return 0, self._failed(self._broker_backoff, exc)
        if written:
            for each in (self._sink_backoff, self._registry_backoff, self._broker_backoff):
                each.succeeded()
        elif time.monotonic() - self._probed_at >= PROBE_EVERY_S:
            self._probed_at = time.monotonic()
            try:
                self._probe()
            except KafkaError as exc:
                return 0, self._failed(self._broker_backoff, exc)
            self._broker_backoff.succeeded()
        self._metrics.running(self._label, healthy=self.healthy, task=self._task)
        return written, 0.0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                _, wait_s = self.step()
                if wait_s:
                    stop.wait(wait_s)
        finally:
            self._metrics.stopped(self._label, task=self._task)

    def _probe(self) -> None:
        """A request the broker must answer (not one kafka-python answers from its cache)."""
        partitions = self._consumer.assignment() or {TopicPartition(self._topic, 0)}
        self._consumer.end_offsets(list(partitions), timeout_ms=PROBE_TIMEOUT_MS)

    @property
    def healthy(self) -> bool:
        return all(b.state.up for b in (self._sink_backoff, self._registry_backoff, self._broker_backoff))

    def health(self) -> dict[str, Any]:
        """For /health: whether the sink, the registry and the broker answer, and what was written."""
        return {"status": "ok" if self.healthy else "degraded", "sink": self._sink_backoff.state.as_dict(),
                "registry": self._registry_backoff.state.as_dict(), "broker": self._broker_backoff.state.as_dict(),
                "written": self.written, "undecodable": self.undecodable}

    def committed(self) -> dict[TopicPartition, int]:
        """The group's committed offsets of the partitions assigned now (for tests and checks)."""
        return {tp: self._consumer.committed(tp) or 0 for tp in self._consumer.assignment()}

    def close(self) -> None:
        self._consumer.close()
        self._sink.close()

    def _decode(self, polled: dict[TopicPartition, list[Any]]) -> list[dict[str, Any]]:
        events = []
        for batch in polled.values():
            for message in batch:
                try:
                    events.append(self._codec.decode(message.value)[1])
                except CodecError as exc:
                    # Shared topics are written by our own share stage; an undecodable event is a bug to see, not data to lose silently.
                    self.undecodable += 1
                    self._metrics.errors.labels(self._label).inc()
                    log.error("undecodable event skipped by sink", extra={"stage": "sink", "topic": message.topic,
                              "partition": message.partition, "offset": message.offset, "error": str(exc)})
        return events

    def _failed(self, backoff: Backoff, exc: BaseException) -> float:
        self._metrics.errors.labels(self._label).inc()
        self._metrics.up.labels(self._label).set(0)
        return backoff.failed(exc)
