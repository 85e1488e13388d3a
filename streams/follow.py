"""Reading a compacted topic whole, in every worker: subscriptions, stewards' decisions, the registry.

No consumer group: each worker reads every partition from the beginning, because each one
needs all of it (every subscription, every decision, every registry entry for searching).
``caught_up`` is set once the reader has passed the end offsets the topic had when it
started and a poll found nothing more, so a stage can wait for the state a restart must
rebuild before it decides anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["follow_topic"]

log = logging.getLogger("gsp.streams.follow")


async def follow_topic(bootstrap: str, topic: str, apply: Callable[[bytes | None, bytes | None], None],
                       stopped: asyncio.Event, *, caught_up: asyncio.Event | None = None,
                       client_id: str = "gsp-follow", applied: Callable[[int, int], None] | None = None) -> None:
    """Apply every (key, value) of ``topic`` in order, from the beginning, until ``stopped``.

    A topic that does not exist yet (a table's changelog before its first write) is waited for.
    ``applied(partition, next offset)`` is told after each message is applied (a barrier can wait on it).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id=client_id)
    await consumer.start()
    try:
        partitions: set[int] = set()
        while not stopped.is_set():
            await consumer.topics()  # refreshes cluster metadata, so the partitions are known
            partitions = consumer.partitions_for_topic(topic) or set()
            if partitions:
                break
            if caught_up is not None:
                caught_up.set()  # nothing written yet: nothing to catch up on
            await asyncio.sleep(0.5)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while not stopped.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    apply(message.key, message.value)
                    if applied is not None:
                        applied(message.partition, message.offset + 1)
            # Caught up: past the end offsets *and* a poll came back empty. The embedded broker (Tansu
            # 0.6) answers ListOffsets with the last record batch's base offset + 1, not the last
            # offset + 1, so its end offsets alone would declare a half-read topic read.
            if caught_up is not None and not caught_up.is_set() and not batches:
                positions = [await consumer.position(tp) for tp in tps]
                if all(at >= end[tp] for at, tp in zip(positions, tps, strict=True)):
                    caught_up.set()
                    log.info("caught up", extra={"topic": topic})
    finally:
        await consumer.stop()
