"""The control plane's work queues as gauges, read from its database at scrape time.

    registry.register(OpenItems(quarantine=desk.counts, review=review.counts))
    registry.register(SubscriptionRequests(control.subscriptions))

Like :class:`~gsp.governance.subscriptions.OverdueRequests`, nothing is kept in memory: a scrape
asks the database, so every replica of the control plane reports the same numbers (alert on
``max``, not ``sum``). Every declared dataset has its series, at zero while nothing waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.datasets import declared

if TYPE_CHECKING:
    from gsp.governance.subscriptions import Subscriptions

__all__ = ["OpenItems", "SubscriptionRequests"]


class OpenItems(Collector):
    """gsp_quarantine_open_items{dataset} and gsp_review_open_items{dataset}: what waits for a steward.

    ``quarantine``: dataset -> rule -> open items (QuarantineDesk.counts); ``review``: dataset -> open
    items (ReviewDesk.counts)."""

    def __init__(self, *, quarantine: Callable[[], Mapping[str, Mapping[str, int]]],
                 review: Callable[[], Mapping[str, int]]) -> None:
        self._quarantine = quarantine
        self._review = review

    def collect(self) -> Iterator[Metric]:
        datasets = sorted(declared())
        held = GaugeMetricFamily("gsp_quarantine_open_items", "Quarantined records waiting for a steward "
                                 "(release or discard), by dataset", labels=["dataset"])
        quarantined = {dataset: sum(rules.values()) for dataset, rules in self._quarantine().items()}
        for dataset in sorted({*datasets, *quarantined}):
            held.add_metric([dataset], quarantined.get(dataset, 0))
        yield held
        review = GaugeMetricFamily("gsp_review_open_items", "Possible matches waiting for a steward's decision, "
                                   "by dataset", labels=["dataset"])
        waiting = dict(self._review())
        for dataset in sorted({*datasets, *waiting}):
            review.add_metric([dataset], waiting.get(dataset, 0))
        yield review


class SubscriptionRequests(Collector):
    """gsp_subscription_requests{dataset,state}: subscription versions by state (requested, active, ...)."""

    def __init__(self, subscriptions: Subscriptions) -> None:
        self._subscriptions = subscriptions

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("gsp_subscription_requests", "Subscription versions by dataset and state "
                                   "(requested: waiting for the owner; see gsp_subscription_requests_overdue)",
                                   labels=["dataset", "state"])
        for (dataset, state), n in sorted(self._subscriptions.state_counts().items()):
            family.add_metric([dataset, state], n)
        yield family
