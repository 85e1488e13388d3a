"""The sink runner: consume a topic, decode, write, flush, then commit offsets.

Offsets are committed only after the sink's flush returned, so a crash replays
events, and the sink's upsert by event id absorbs the replay.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer

from connectors.base import Sink
from connectors.metrics import ConnectorMetrics
from schemas.codec import Codec, CodecError

__all__ = ["SinkRunner"]

log = logging.getLogger("gsp.sink")


class SinkRunner:
    def __init__(self, sink: Sink, *, topic: str, consumer_config: dict[str, Any], codec: Codec,
                 metrics: ConnectorMetrics, group: str | None = None) -> None:
        self._sink = sink
        self._codec = codec
        self._metrics = metrics
        self._consumer = KafkaConsumer(topic, group_id=group or f"gsp-sink-{sink.name}", enable_auto_commit=False,
                                       auto_offset_reset="earliest", **consumer_config)
        self.written = 0
        self.undecodable = 0

    def run_once(self, *, timeout_ms: int = 200) -> int:
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=2000)
        if not polled:
            return 0
        started = time.perf_counter()
        events = []
        for batch in polled.values():
            for message in batch:
                try:
                    events.append(self._codec.decode(message.value)[1])
                except CodecError as exc:
                    # Shared topics are written by our own share stage; an undecodable event is a bug to see, not data to lose silently.
                    self.undecodable += 1
                    self._metrics.errors.labels(self._sink.name).inc()
                    log.error("undecodable event skipped by sink", extra={"stage": "sink", "topic": message.topic,
                              "partition": message.partition, "offset": message.offset, "error": str(exc)})
        self._sink.write_batch(events)
        self._sink.flush()
        self._consumer.commit()
        self.written += len(events)
        self._metrics.records.labels(self._sink.name, "written").inc(len(events))
        self._metrics.batch_seconds.labels(self._sink.name).observe(time.perf_counter() - started)
        return len(events)

    def run(self, stop: threading.Event) -> None:
        self._metrics.up.labels(self._sink.name).set(1)
        try:
            while not stop.is_set():
                self.run_once()
        finally:
            self._metrics.up.labels(self._sink.name).set(0)

    def close(self) -> None:
        self._consumer.close()
        self._sink.close()
