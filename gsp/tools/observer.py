"""Counts what each stage has produced, by reading the output topics (distinct event ids).

Delivery is at-least-once, so a restarted worker may write an event twice:
counting distinct event ids gives the number of records, not of messages.
For each subscription it also counts the records its dataset's stage output admits (``covered``):
what a correct share stage delivers to it.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from gsp.governance.catalog import DATASETS
from schemas import topics
from schemas.codec import Codec, CodecError
from schemas.datasets import Role
from schemas.envelope import Verdict
from streams import share as sharing

__all__ = ["Observer"]


class Observer:
    def __init__(self, bootstrap: str, codec: Codec, *, subscriptions: list[sharing.Subscription]) -> None:
        self._codec = codec
        self._subscriptions = subscriptions
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = defaultdict(set)
        self.quarantined: dict[str, Counter[str]] = {d: Counter() for d in DATASETS}
        self.verdicts: dict[str, Counter[str]] = {d.name: Counter() for d in DATASETS.values() if d.linked}
        self.covered: Counter[str] = Counter()
        self.proposed: dict[str, dict[str, str]] = {d: {} for d in self.verdicts}  # source key -> personal id proposed
        self.undecodable = 0
        self._plain = {d.name for d in DATASETS.values() if d.role is Role.PLAIN and d.shareable}
        names = [t for d in DATASETS.values() for t in
                 (topics.clean(d.name), topics.quarantine(d.name),
                  *([topics.match(d.name), topics.review(d.name)] if d.linked else []))]
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="gsp-observer")
        tps = [TopicPartition(t, p) for t in names for p in sorted(self._consumer.partitions_for_topic(t) or [])]
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)

    def poll(self, timeout_ms: int = 200) -> int:
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=5000)
        n = 0
        with self._lock:
            for tp, messages in polled.items():
                for message in messages:
                    n += 1
                    try:
                        self._record(tp.topic, message.value)
                    except CodecError:
                        self.undecodable += 1
        return n

    def _record(self, topic: str, value: bytes) -> None:
        layer, rest = topic.split(".", 1)
        dataset = rest.rsplit(".", 1)[0]
        _, event = self._codec.decode(value)
        event_id = event["header"]["event_id"]
        seen = self._seen[topic]
        if event_id in seen:
            return
        seen.add(event_id)
        if layer == "quarantine":
            self.quarantined[dataset][event["rule"]] += 1
        elif layer == "match":
            self.verdicts[dataset][event["verdict"]] += 1
            if event["verdict"] == Verdict.POSSIBLE:
                self.proposed[dataset][event["source_key"]] = event["personal_id"]
            _, record = self._codec.decode(event["record"])
            self._cover(dataset, sharing.shared_view(record, personal_id=event["personal_id"], verdict=event["verdict"],
                                                     score=event["score"]), plain=False)
        elif layer == "clean" and dataset in self._plain:
            self._cover(dataset, sharing.plain_view(event), plain=True)

    def _cover(self, dataset: str, view: dict[str, Any], *, plain: bool) -> None:
        for s in self._subscriptions:
            if s.dataset == dataset and sharing.covers(s, view, plain=plain):
                self.covered[s.subscription_id] += 1

    def count(self, layer: str, dataset: str) -> int:
        with self._lock:
            return len(self._seen[getattr(topics, layer)(dataset)])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "cleaned": {d: len(self._seen[topics.clean(d)]) for d in DATASETS},
                "quarantined": {d: dict(sorted(c.items())) for d, c in self.quarantined.items()},
                "match": {d: dict(sorted(c.items())) for d, c in self.verdicts.items()},
                "covered": dict(self.covered),
                "review": {d.name: len(self._seen[topics.review(d.name)]) for d in DATASETS.values() if d.linked},
                "proposed": {d: dict(p) for d, p in self.proposed.items()},
            }

    def close(self) -> None:
        self._consumer.close()
