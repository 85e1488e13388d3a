"""The subscriptions known to a worker, read from the compacted ``gsp.subscriptions`` topic.

Every worker reads every partition from the beginning (no consumer group):
each one must know every subscription to share the partitions it owns.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import topics
from schemas.codec import Codec, CodecError
from streams.share import Subscription

__all__ = ["SubscriptionBook"]

log = logging.getLogger("gsp.streams.subscriptions")


class SubscriptionBook:
    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._by_id: dict[str, Subscription] = {}

    def for_dataset(self, dataset: str) -> list[Subscription]:
        return [s for s in self._by_id.values() if s.dataset == dataset]

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One event of the topic: an upsert, or a deletion when the value is null."""
        if key is None:
            return
        subscription_id = key.decode()
        if value is None:
            self._by_id.pop(subscription_id, None)
            return
        try:
            _, event = self._codec.decode(value)
            self._codec.add(event["schema_id"], event["schema"])
        except CodecError as exc:
            log.error("unreadable subscription event ignored", extra={"subscription": subscription_id, "error": str(exc)})
            return
        self._by_id[subscription_id] = Subscription.from_event(event)

    async def follow(self, bootstrap: str, stopped: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="gsp-subscriptions")
        await consumer.start()
        try:
            await consumer.topics()  # fetches cluster metadata, so the partitions are known
            partitions = consumer.partitions_for_topic(topics.SUBSCRIPTIONS) or set()
            tps = [TopicPartition(topics.SUBSCRIPTIONS, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not stopped.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        self.apply(message.key, message.value)
        finally:
            await consumer.stop()
