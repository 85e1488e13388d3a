"""Sending a micro-batch of stage outputs with aiokafka's batch API.

One ``await producer.send()`` per event costs about 150-300 µs in aiokafka;
building one batch per partition costs a few µs per event. Events are keyed
the way Kafka's default partitioner does it (murmur2 of the key), so the
output stays co-partitioned with topics written by kafka-python or Faust.
Delivery stays at-least-once: Faust acks a ``take_events`` batch only after
the agent's loop body returned, and flushes the producer (these batches
included) before it commits offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka.partitioner import murmur2
from prometheus_client import Counter

__all__ = ["BatchSender", "Outbox", "Sent"]

log = logging.getLogger("gsp.streams")
Out = tuple[str, bytes, bytes]
Headers = Sequence[tuple[str, bytes]]


class Sent:
    """The broker's acknowledgements of one `BatchSender.send`: ``positions()`` says where each event went."""

    def __init__(self, futures: list[asyncio.Future[Any]], placed: list[tuple[int, int]]) -> None:
        self.futures = futures
        self._placed = placed  # per event: (index of its batch's future, its index in that batch)

    async def positions(self) -> list[tuple[int, int]]:
        """(partition, offset) of every event, in the order sent, once the broker acknowledged all of them."""
        metadata = await asyncio.gather(*self.futures)
        return [(metadata[b].partition, metadata[b].offset + i) for b, i in self._placed]


class BatchSender:
    def __init__(self, producer: Callable[[], Any]) -> None:
        self._producer = producer            # returns the started AIOKafkaProducer
        self._partitions: dict[str, list[int]] = {}

    async def _partitions_of(self, topic: str) -> list[int]:
        parts = self._partitions.get(topic)
        if parts is None:
            parts = self._partitions[topic] = sorted(await self._producer().partitions_for(topic))
        return parts

    async def send(self, outs: Iterable[Out], headers: Sequence[Headers] | None = None,
                   partitions: Sequence[int] | None = None) -> Sent:
        """Queue every (topic, key, value), with ``headers[i]`` on the i-th when given, to ``partitions[i]`` when
        given (else by its key); the futures resolve when the broker acknowledged each batch."""
        groups: dict[tuple[str, int], list[int]] = defaultdict(list)
        events = list(outs)
        for n, (topic, key, _) in enumerate(events):
            if partitions is not None:
                groups[(topic, partitions[n])].append(n)
                continue
            parts = await self._partitions_of(topic)
            groups[(topic, parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)])].append(n)
        producer = self._producer()
        futures: list[asyncio.Future[Any]] = []
        placed = [(0, 0)] * len(events)
        for (topic, partition), members in groups.items():
            batch, in_batch = producer.create_batch(), 0
            for n in members:
                _, key, value = events[n]
                extra = headers[n] if headers is not None else []
                if batch.append(key=key, value=value, timestamp=None, headers=extra) is None:  # full: ship it
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch, in_batch = producer.create_batch(), 0
                    batch.append(key=key, value=value, timestamp=None, headers=extra)
                placed[n] = (len(futures), in_batch)
                in_batch += 1
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return Sent(futures, placed)


class Outbox:
    """A stage's events to the broker; a delivery the broker refused is counted and logged, per stage and dataset.

    ``on_failure`` is then called (a worker ends itself: `streams.agents.exit_now`). A stage does not wait
    for its sends to be acknowledged, and Faust commits its input after flushing the producer whether the
    deliveries succeeded or not; the callback runs before the flush returns, so a refused delivery
    never has its input committed: the restarted worker processes it again.
    """

    def __init__(self, sender: BatchSender, errors: Counter, *, on_failure: Callable[[], None] | None = None) -> None:
        self._sender = sender
        self._errors = errors  # gsp_stage_errors_total: labels stage, dataset
        self._on_failure = on_failure

    async def send(self, stage: str, dataset: str, outs: Iterable[Out], headers: Sequence[Headers] | None = None,
                   partitions: Sequence[int] | None = None) -> Sent:
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self._errors.labels(stage, dataset).inc()
                log.critical("delivery failed; its input will be processed again",
                             extra={"stage": stage, "dataset": dataset,
                                    "error": "cancelled" if fut.cancelled() else str(fut.exception())[:200]})
                if self._on_failure is not None:
                    self._on_failure()

        sent = await self._sender.send(outs, headers, partitions)
        for fut in sent.futures:
            fut.add_done_callback(done)
        return sent
