"""Stream-stage metrics, one bundle built against an injected Prometheus registry.

Labels are stage and dataset names, never a person's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["REWIND_REASONS", "QualityCollector", "StageMetrics"]

# Why streams.consumer seeks an input partition back (its on_rewind reasons).
REWIND_REASONS = ("stale-batch", "cleared", "hole", "stall")


@dataclass(frozen=True)
class StageMetrics:
    records: Counter
    errors: Counter
    verdicts: Counter
    delivered: Counter
    lag: Gauge
    registry_size: Gauge
    subscriptions: Gauge
    linkage_index: Gauge
    verifications: Counter
    background_up: Gauge
    background_restarts: Counter
    rewinds: Counter

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
            linkage_index=Gauge("gsp_linkage_index_records", "Registry entries in this worker's matcher index (the living)",
                                registry=registry),
            verifications=Counter("gsp_verifications_total", "Verification requests answered by this worker, by outcome "
                                  "(a verdict, error: an invalid request, refused: its batch was refused, unreadable: a "
                                  "message no reply could be sent for, undelivered: the broker refused its reply); "
                                  "channel kafka (an agency's topic) or http",
                                  ["agency", "channel", "outcome"], registry=registry),
            background_up=Gauge("gsp_background_up", "1 while a background loop runs, 0 while it waits to be restarted",
                                ["loop"], registry=registry),
            background_restarts=Counter("gsp_background_restarts_total", "Restarts of a background loop after it raised",
                                        ["loop"], registry=registry),
            rewinds=Counter("gsp_consumer_rewinds_total", "Input partitions sought back to their committed offsets so "
                            "that no record is skipped (stale-batch: a batch fetched before a seek; hole: records "
                            "never processed before acked ones)", ["reason"], registry=registry),
        )


class QualityCollector:
    """Exposes the quality tallies at scrape time (cumulative, so counters), plus the scores."""

    def __init__(self, tallies: dict[str, Any]) -> None:
        self._tallies = tallies

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from streams.quality import scores

        checks = CounterMetricFamily("gsp_quality_checks", "Quality checks per dataset, field and dimension",
                                     labels=["dataset", "field", "dimension"])
        failures = CounterMetricFamily("gsp_quality_failures", "Failed quality checks per dataset, field and dimension",
                                       labels=["dataset", "field", "dimension"])
        score = GaugeMetricFamily("gsp_quality_score", "Share of passed checks per dimension (correct, complete, clean, live)",
                                  labels=["dataset", "dimension"])
        for dataset, tally in self._tallies.items():
            cells = tally.snapshot_cells()
            for c in cells:
                checks.add_metric([dataset, c["field"], c["dimension"]], c["checks"])
                failures.add_metric([dataset, c["field"], c["dimension"]], c["failures"])
            for dimension, value in scores(cells).items():
                if value is not None:
                    score.add_metric([dataset, dimension], value)
        yield from (checks, failures, score)
