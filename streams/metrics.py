"""Stream-stage metrics, one bundle built against an injected Prometheus registry.

Labels are stage and dataset names, never a person's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["StageMetrics"]


@dataclass(frozen=True)
class StageMetrics:
    records: Counter
    errors: Counter
    verdicts: Counter
    delivered: Counter
    lag: Gauge
    registry_size: Gauge
    subscriptions: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> StageMetrics:
        return cls(
            records=Counter("gsp_stage_records_total", "Records through a stream stage, by direction (in, out, quarantined)",
                            ["stage", "dataset", "direction"], registry=registry),
            errors=Counter("gsp_stage_errors_total", "Failures inside a stream stage (delivery errors, bugs)",
                           ["stage", "dataset"], registry=registry),
            verdicts=Counter("gsp_match_verdicts_total", "Match verdicts", ["dataset", "verdict"], registry=registry),
            delivered=Counter("gsp_share_delivered_total", "Records delivered to a subscription's topic",
                              ["agency", "dataset"], registry=registry),
            lag=Gauge("gsp_consumer_lag_records", "Records not yet committed by this worker, per input topic",
                      ["topic"], registry=registry),
            registry_size=Gauge("gsp_registry_records", "Population registry entries held by this worker", registry=registry),
            subscriptions=Gauge("gsp_subscriptions", "Subscriptions known to this worker", registry=registry),
        )
