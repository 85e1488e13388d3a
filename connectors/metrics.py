"""Connector metrics, one bundle built against an injected Prometheus registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ConnectorMetrics"]


@dataclass(frozen=True)
class ConnectorMetrics:
    records: Counter
    errors: Counter
    batch_seconds: Histogram
    up: Gauge
    files: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConnectorMetrics:
        return cls(
            records=Counter("gsp_connector_records_total", "Records handled by a connector, by outcome (published, quarantined, written)",
                            ["connector", "outcome"], registry=registry),
            errors=Counter("gsp_connector_errors_total", "Connector failures that stopped a batch", ["connector"], registry=registry),
            batch_seconds=Histogram("gsp_connector_batch_seconds", "Time to publish or write one batch", ["connector"], registry=registry),
            up=Gauge("gsp_connector_up", "1 while the connector's loop is running", ["connector"], registry=registry),
            files=Counter("gsp_connector_files_total", "Files a file-drop connector finished (done) or refused (rejected)",
                          ["connector", "outcome"], registry=registry),
        )
