"""Connector metrics, one bundle built against an injected Prometheus registry.

Where Kafka Connect has a metric, ours follows it: source-record-poll-total (``polled``),
sink-record-read-total (``read``), sink-record-send-total and put (``records`` written),
offset-commit-success/failure-total (``offset_commits``), connector-status and task status
(``connector_status``, ``task_status``: one series per state, 1 for the current one, as
Prometheus exporters of Kafka Connect's string-valued status show it).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["STATES", "ConnectorMetrics"]

# Kafka Connect's connector and task states.
STATES = ("UNASSIGNED", "RUNNING", "PAUSED", "STOPPED", "FAILED", "RESTARTING")
_OUTCOMES = {"source": ("published", "quarantined"), "sink": ("written",)}


@dataclass(frozen=True)
class ConnectorMetrics:
    records: Counter
    errors: Counter
    batch_seconds: Histogram
    up: Gauge
    files: Counter
    polled: Counter
    read: Counter
    offset_commits: Counter
    connector_status: Gauge
    task_status: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConnectorMetrics:
        return cls(
            records=Counter("gsp_connector_records_total", "Records handled by a connector, by outcome (published, quarantined, written)",
                            ["connector", "outcome"], registry=registry),
            errors=Counter("gsp_connector_errors_total", "Connector failures that stopped a batch", ["connector"], registry=registry),
            batch_seconds=Histogram("gsp_connector_batch_seconds", "Time to publish or write one batch", ["connector"], registry=registry),
            up=Gauge("gsp_connector_up", "1 while the connector's loop is running and its source, sink and broker answer",
                     ["connector"], registry=registry),
            files=Counter("gsp_connector_files_total", "Files a file-drop connector finished (done) or refused (rejected)",
                          ["connector", "outcome"], registry=registry),
            polled=Counter("gsp_connector_source_records_polled_total", "Records a source task polled from its source "
                           "(Kafka Connect's source-record-poll-total)", ["connector"], registry=registry),
            read=Counter("gsp_connector_sink_records_read_total", "Records a sink task read from Kafka "
                         "(Kafka Connect's sink-record-read-total)", ["connector"], registry=registry),
            offset_commits=Counter("gsp_connector_offset_commits_total", "Positions stored (source) or offsets "
                                   "committed (sink), by outcome success or failure (Kafka Connect's "
                                   "offset-commit-success/failure-total)", ["connector", "outcome"], registry=registry),
            connector_status=Gauge("gsp_connector_status", "1 for the connector's current state (Kafka Connect's "
                                   "connector-status), 0 for the others", ["connector", "state"], registry=registry),
            task_status=Gauge("gsp_connector_task_status", "1 for a task's current state (Kafka Connect's task "
                              "status), 0 for the others", ["connector", "task", "state"], registry=registry),
        )

    def declare(self, connector: str, *, kind: str, task: int = 0) -> None:
        """Every series of one connector's task from now on: counters at zero, down and UNASSIGNED until it runs."""
        for outcome in _OUTCOMES[kind]:
            self.records.labels(connector, outcome)
        for outcome in ("success", "failure"):
            self.offset_commits.labels(connector, outcome)
        (self.polled if kind == "source" else self.read).labels(connector)
        self.errors.labels(connector)
        self.batch_seconds.labels(connector)
        self.up.labels(connector).set(0)
        self.set_connector_state(connector, "UNASSIGNED")
        self.set_task_state(connector, task, "UNASSIGNED")

    def set_connector_state(self, connector: str, state: str) -> None:
        for each in STATES:
            self.connector_status.labels(connector, each).set(int(each == state))

    def set_task_state(self, connector: str, task: int, state: str) -> None:
        for each in STATES:
            self.task_status.labels(connector, str(task), each).set(int(each == state))

    def running(self, connector: str, *, healthy: bool, task: int = 0) -> None:
        """A standalone runner's loop turns: RUNNING (an outage is waited out, as Kafka Connect's retries,
        while the task stays RUNNING), up while its source, sink and broker answer."""
        self.up.labels(connector).set(int(healthy))
        self.set_connector_state(connector, "RUNNING")
        self.set_task_state(connector, task, "RUNNING")

    def stopped(self, connector: str, *, task: int = 0) -> None:
        self.up.labels(connector).set(0)
        self.set_connector_state(connector, "STOPPED")
        self.set_task_state(connector, task, "UNASSIGNED")
