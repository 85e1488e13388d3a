"""Connector tasks: what a worker runs, built by a plugin (connectors.plugins) from the existing runners.

A source task steps one :class:`~connectors.runner.SourceRunner` per partition of its work (a table, a
directory); a runner backing off is skipped until it is due. A sink task steps one
:class:`~connectors.sink_runner.SinkRunner`, a member of its connector's consumer group. Where a task resumes
does not depend on where it runs: a partition's position is stored under :func:`position_key`, a sink's offsets
under :func:`sink_group`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaProducer

from connectors.base import Sink, Source
from connectors.metrics import ConnectorMetrics
from connectors.runner import SourceRunner
from connectors.sink_runner import SinkRunner
from connectors.webhook_sink import WebhookMetrics, WebhookSink
from schemas.codec import Codec
from schemas.registry import RegistryClient
from schemas.settings import Settings

__all__ = ["SinkTask", "SourceTask", "Task", "TaskContext", "file_counter", "position_key", "sink_group"]


def position_key(connector: str, partition: Mapping[str, Any]) -> str:
    """Where a source partition's position is stored in gsp.connect.offsets (and its source's name)."""
    return f"{connector}|{json.dumps(partition, sort_keys=True)}"


def sink_group(connector: str) -> str:
    """The consumer group of every task of a sink connector."""
    return f"gsp-connect-{connector}"


@dataclass
class TaskContext:
    """What a worker gives every task it starts; the clients are the worker's and outlive the task."""
    settings: Settings
    bootstrap: str
    registry: RegistryClient
    codec: Codec
    producer: KafkaProducer
    metrics: ConnectorMetrics
    webhook_metrics: WebhookMetrics | None = None  # gsp_webhook_* series of webhook sinks, when the worker has them


class Task(Protocol):
    def step(self) -> tuple[int, float]:
        """One round of work: (records handled, seconds to wait before the next step)."""

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class SourceTask:
    """The runners of one source task, one per partition, stepped in turn; a runner backing off is skipped until due."""

    def __init__(self, connector: str, task_id: int, runners: list[SourceRunner], sources: list[Source], *,
                 metrics: ConnectorMetrics, poll_interval_s: float) -> None:
        self.connector, self.task_id = connector, task_id
        self.runners, self.sources = runners, sources
        self._metrics = metrics
        self._poll_interval_s = poll_interval_s
        self._due = [0.0] * len(runners)        # monotonic time before which a runner is not stepped
        self._idle = [False] * len(runners)     # its last step found nothing new and no outage

    def start(self) -> None:
        """Each runner resumes after its partition's stored position."""
        for runner in self.runners:
            runner.start()

    def step(self) -> tuple[int, float]:
        handled, now = 0, time.monotonic()
        for i, runner in enumerate(self.runners):
            if self._due[i] > now:
                continue
            count, wait_s = runner.step()
            handled += count
            self._idle[i] = count == 0 and wait_s == 0
            self._due[i] = now + (wait_s or (0.0 if count else self._poll_interval_s))
        if handled:
            return handled, 0.0
        return 0, max(0.0, min(self._due, default=now) - time.monotonic())

    @property
    def drained(self) -> bool:
        """Every partition's last step found nothing new (and none is backing off)."""
        return all(self._idle)

    @property
    def published(self) -> int:
        return sum(r.published for r in self.runners)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.runners)

    def health(self) -> dict[str, Any]:
        partitions = [r.health() for r in self.runners]
        return {"status": "ok" if all(r.healthy for r in self.runners) else "degraded", "connector": self.connector,
                "task": self.task_id, "published": self.published, "quarantined": self.quarantined,
                "partitions": partitions}

    def close(self) -> None:
        for runner, source in zip(self.runners, self.sources, strict=True):
            runner.close()
            source.close()
        self._metrics.stopped(self.connector, task=self.task_id)


class SinkTask:
    """One consumer of a sink connector's group and the sink it writes to."""

    def __init__(self, connector: str, task_id: int, runner: SinkRunner, sink: Sink, *,
                 metrics: ConnectorMetrics) -> None:
        self.connector, self.task_id = connector, task_id
        self.runner, self.sink = runner, sink
        self._metrics = metrics

    def step(self) -> tuple[int, float]:
        return self.runner.step(timeout_ms=500)

    def health(self) -> dict[str, Any]:
        report = {**self.runner.health(), "connector": self.connector, "task": self.task_id}
        if isinstance(self.sink, WebhookSink):
            report["webhook"] = self.sink.health()
            if report["webhook"]["state"] == "failing":
                report["status"] = "degraded"
        return report

    def close(self) -> None:
        self.runner.close()
        self._metrics.stopped(self.connector, task=self.task_id)


def file_counter(metrics: ConnectorMetrics, name: str) -> Callable[[str], None]:
    """Counts the files a file source finished (done) or refused (rejected) under its connector."""
    return lambda outcome: metrics.files.labels(name, outcome).inc()
