"""The deliveries a worker made lately, so a replayed record is not shared twice.

Delivery is at-least-once: after a crash a worker re-reads its input from the last committed
offset, and a restarted connector re-publishes its last batch, so records reach the share agent
again. Their event ids are stable (`schemas.envelope.event_id`), and so is what an agency
receives for them (`streams.share.envelope`). The share agent therefore drops a record for a
subscription when this window already holds (subscription id, the agency's event id).

The window is bounded (``capacity`` deliveries, oldest forgotten first) and survives a restart
by being primed from the tail of ``gsp.ledger``: every fact there names the deliveries a worker
made once the broker had acknowledged them (`streams.ledger`). What it cannot catch, and the
agencies' contract says so (README): a record delivered whose fact was not yet sent when the worker
died, and a replay older than the window. Sinks upsert by the agency's event id either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import topics
from schemas.codec import Codec, CodecError

__all__ = ["RecentDeliveries", "Window"]

log = logging.getLogger("gsp.streams.dedupe")


class Window:
    """The last ``capacity`` keys added, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[Any] = deque()
        self._seen: set[Any] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    def add(self, key: Any) -> bool:
        """Remember ``key``; whether it was new."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        while len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True


class RecentDeliveries:
    def __init__(self, capacity: int) -> None:
        """``capacity``: deliveries remembered; 0 turns the window off (every replay is shared again)."""
        self.capacity = capacity
        self._seen = Window(capacity)
        self.primed = asyncio.Event()
        if capacity <= 0:
            self.primed.set()

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, subscription_id: str, agency_event_id: str) -> bool:
        """Whether this delivery is new (and from now on remembered)."""
        if self.capacity <= 0:
            return True
        return self._seen.add(f"{subscription_id}|{agency_event_id}")

    def observe_fact(self, fact: dict[str, Any]) -> None:
        """A LedgerFact read back from ``gsp.ledger``: its deliveries are remembered."""
        if fact.get("kind") != "delivery":
            return
        sid = str(fact.get("subscription_id"))
        for record in fact.get("records") or []:
            agency_event_id = record.get("agency_event_id")
            if agency_event_id:
                self._seen.add(f"{sid}|{agency_event_id}")

    async def prime(self, bootstrap: str, codec: Codec, *, timeout_s: float = 30.0) -> None:
        """Read the tail of ``gsp.ledger`` (about ``capacity`` deliveries' worth) into the window, then set ``primed``.

        Bounded by ``timeout_s``: a ledger that cannot be read leaves the window as it is (more duplicates,
        nothing lost), and says so.
        """
        if self.capacity <= 0:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="gsp-dedupe")
        deadline = time.monotonic() + timeout_s
        try:
            await consumer.start()
            partitions = consumer.partitions_for_topic(topics.LEDGER) or set()
            if not partitions:
                await consumer.topics()
                partitions = consumer.partitions_for_topic(topics.LEDGER) or set()
            tps = [TopicPartition(topics.LEDGER, p) for p in sorted(partitions)]
            if tps:
                await self._read_tail(consumer, tps, codec, deadline)
        except Exception as exc:  # any failure (broker, registry): more duplicates, never a stop
            log.warning("recent deliveries not read back; replays after this restart may be shared twice",
                        extra={"error": str(exc)[:200]})
        finally:
            await consumer.stop()
            self.primed.set()
        log.info("recent deliveries read back", extra={"deliveries": len(self)})

    async def _read_tail(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], codec: Codec,
                         deadline: float) -> None:
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        # A fact holds up to a micro-batch of deliveries; a few thousand facts per partition cover the window.
        back = max(100, self.capacity // (50 * len(tps)))
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - back))
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for messages in batches.values():
                for message in messages:
                    try:
                        _, fact = codec.decode(message.value)
                    except CodecError:
                        continue
                    self.observe_fact(fact)
            # Tansu's end offsets can stop short of the last record (streams.follow): read until a poll is empty too.
            if not batches and all([await consumer.position(tp) >= end[tp] for tp in tps]):
                return
