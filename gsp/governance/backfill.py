"""Back-fill: the records a new subscription's approval reaches back to, shared once when it becomes active.

Live sharing (the workers' share stage) admits records ingested from the approval's valid-from
on. When the owner approved back-fill, the control plane also reads the dataset's shareable
topic (``match.<linked>`` or ``clean.<plain>``) from its beginning up to where it ended at
activation, and shares through the same `ShareStage` the records ingested *before* valid-from,
on the subscription's own topic only. Live and back-filled records carry their platform event
ids, so a record in flight at activation that both paths share is one upsert for a sink. What
back-fill reaches is what the topic still holds: all of it on the embedded broker, the
retention period on a production cluster.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from gsp.governance.ledger import Ledger
from gsp.governance.ledger_writer import fact_entry
from schemas import topics
from schemas.codec import Codec, CodecError
from schemas.datasets import Dataset
from streams import ledger
from streams.share import Subscription
from streams.stages.share import Shared, ShareStage

__all__ = ["Backfill"]

log = logging.getLogger("gsp.backfill")


class Backfill:
    """Runs the back-fills handed to it (`submit`) one at a time on its thread (`run`)."""

    def __init__(self, bootstrap: str, codec: Codec, producer: KafkaProducer, datasets: Mapping[str, Dataset], *,
                 timeout_s: float = 600.0, ledger: Ledger | None = None,
                 terms: Callable[[str, int], dict[str, Any]] = lambda sid, version: {},
                 consents: Callable[[str], set[str]] = lambda sid: set()) -> None:
        """``ledger``: where back-filled deliveries are recorded (chain ``backfill``), with ``terms`` of each version."""
        self._ledger, self._terms, self._consents = ledger, terms, consents
        self._bootstrap = bootstrap
        self._codec = codec
        self._producer = producer
        self._datasets = datasets
        self._timeout_s = timeout_s
        self._pending: queue.Queue[dict[str, Any]] = queue.Queue()
        self.done: dict[str, int] = {}   # subscription id -> records back-filled by its latest run

    def submit(self, event: Mapping[str, Any]) -> None:
        """Back-fill this Subscription event's version, if its approval says so."""
        if event.get("backfill") and event.get("valid_from") is not None:
            self._pending.put(dict(event))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                event = self._pending.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.done[event["subscription_id"]] = self.share_history(event, stop)
            except Exception:  # one subscription's failure is logged; the next back-fill still runs
                log.exception("back-fill failed", extra={"subscription": event["subscription_id"]})

    def share_history(self, event: Mapping[str, Any], stop: threading.Event | None = None) -> int:
        """Share what ``event``'s subscription may see of the records ingested before its valid-from; how many."""
        subscription = Subscription.from_event(dict(event))
        self._codec.add(event["schema_id"], event["schema"])
        dataset = self._datasets[subscription.dataset]
        source = topics.match(dataset.name) if dataset.linked else topics.clean(dataset.name)
        given = self._consents(subscription.subscription_id) if subscription.consent else set()
        stage = ShareStage(self._codec, lambda _: [subscription], consented=lambda sid, pid: pid in given)
        valid_from = int(event["valid_from"])
        sent: list[tuple[Shared, Any, dict[str, str]]] = []
        for message in self._history(source, stop):
            value = message.value
            try:
                if self._codec.decode(value)[1]["header"]["ingested_at"] >= valid_from:
                    continue  # live sharing has it
                outs = stage.process(value) if dataset.linked else stage.process_clean(dataset.name, value)
            except (CodecError, KeyError, TypeError, ValueError):
                continue  # unreadable bytes, or another contract's record: never shared live either
            way = ledger.way(source, message.headers, message.partition, message.offset)
            for item in outs:
                topic, key, shared_value = item.out
                sent.append((item, self._producer.send(topic, key=key, value=shared_value), way))
        # Its own sends only: a flush would also wait for whatever else the shared producer holds.
        at = [future.get(timeout=120) for _, future, _ in sent]
        self._record(subscription, sent, at)
        log.info("back-fill done", extra={"subscription": subscription.subscription_id, "records": len(sent)})
        return len(sent)

    def _record(self, subscription: Subscription, sent: list[tuple[Shared, Any, dict[str, str]]],
                at: list[Any]) -> None:
        """Every back-filled record into the audit ledger, where the broker put it (``at``: the sends' metadata)."""
        if self._ledger is None or not sent:
            return
        terms = self._terms(subscription.subscription_id, subscription.version)
        for start in range(0, len(sent), 1000):
            part = slice(start, start + 1000)
            facts = ledger.facts([item for item, _, _ in sent[part]], [(m.partition, m.offset) for m in at[part]],
                                 [way for _, _, way in sent[part]], at_ms=int(time.time() * 1000),
                                 actor="control-plane:backfill", channel="backfill")
            self._ledger.append("backfill", [fact_entry(self._ledger, fact, terms, source=None) for _, fact in facts])

    def _history(self, topic: str, stop: threading.Event | None) -> Iterator[Any]:
        """Every value of ``topic`` up to where it ends now. Caught up only once the position passes the end
        offsets and a poll returns nothing: the embedded broker's end offsets can fall short."""
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            if not tps:
                return
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            deadline = time.monotonic() + self._timeout_s
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                batches = consumer.poll(timeout_ms=500)
                for batch in batches.values():
                    for message in batch:
                        if message.value is not None:
                            yield message
                if not batches and all(consumer.position(tp) >= end[tp] for tp in tps):
                    return
        finally:
            consumer.close()
