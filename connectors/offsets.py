"""Source positions on the compacted ``gsp.connect.offsets`` topic (JSON, as Kafka Connect does).

Key: the connector name. Value: its position. The latest value per key wins.

The embedded broker keeps topics in memory only: when it is restarted every
stored position is gone, and so is everything the connector published. The
store remembers where its last position landed and what it was, so
:meth:`OffsetStore.lost` can tell that the broker lost it (the topic is gone, its
end fell back below that record, or another record sits at that offset) and the
runner replays from the beginning. :meth:`OffsetStore.store` checks the same
before it stores the next position: a producer that reconnects to a restarted
broker by itself would otherwise store a new position there and hide the loss.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError

from schemas import topics

__all__ = ["OffsetStore", "PositionLost"]

# Positions are stored one at a time, process-wide: tasks of a connect worker share one producer, and two
# positions sent at once would share a batch, whose second record lies past Tansu's end offset (the last
# batch's base + 1): `lost` would then take a position the broker holds for a lost one and replay a table.
_STORING = threading.Lock()


class PositionLost(Exception):
    """The broker no longer holds the position stored last: it lost what was published before it."""


class OffsetStore:
    def __init__(self, bootstrap: str, producer: KafkaProducer, *, topic: str = topics.CONNECT_OFFSETS) -> None:
        self._bootstrap = bootstrap
        self._producer = producer
        self._topic = topic
        self._last: TopicPartition | None = None  # where the last stored position landed …
        self._last_offset = -1                     # … and at which offset …
        self._last_value = b""                     # … and what it was
        self._watcher: KafkaConsumer | None = None

    def load(self, name: str, *, timeout_s: float = 30.0) -> dict[str, Any] | None:
        """The last stored position of a connector, reading the topic to its end."""
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                 client_id=f"gsp-offsets-{name}")
        try:
            partitions = consumer.partitions_for_topic(self._topic) or set()
            tps = [TopicPartition(self._topic, p) for p in partitions]
            if not tps:
                return None
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            found: dict[str, Any] | None = None
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self._topic} took longer than {timeout_s}s")
                for batch in consumer.poll(timeout_ms=200).values():
                    for message in batch:
                        if message.key == name.encode():
                            found = None if message.value is None else json.loads(message.value)
            return found
        finally:
            consumer.close()

    def store(self, name: str, position: dict[str, Any]) -> None:
        """Store and wait for the broker's acknowledgement. PositionLost, storing nothing, when the broker no
        longer holds the previous position (the caller replays from the beginning)."""
        if self.lost():
            self.forget()
            raise PositionLost(f"{self._topic} no longer holds {name}'s last position")
        value = json.dumps(position).encode()
        with _STORING:
            metadata = self._producer.send(self._topic, key=name.encode(), value=value).get(timeout=30)
        self._last, self._last_offset = TopicPartition(metadata.topic, metadata.partition), metadata.offset
        self._last_value = value

    def lost(self, *, timeout_s: float = 5.0) -> bool:
        """True if the broker no longer holds the last position stored here (it was restarted empty): the topic
        or partition is gone, its end is not past that record, or the record at that offset is not the one
        stored. Raises kafka-python's errors when the broker does not answer.

        Each position is its own one-record batch, so even Tansu's end offset (the last batch's base + 1)
        is past it while the broker keeps it.
        """
        if self._last is None:
            return False
        if self._watcher is None:
            self._watcher = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                          client_id="gsp-offsets-watch", fetch_max_wait_ms=50)
        partitions = self._watcher.partitions_for_topic(self._topic)
        if not partitions or self._last.partition not in partitions:
            return True
        end = self._watcher.end_offsets([self._last], timeout_ms=int(timeout_s * 1000))[self._last]
        if end <= self._last_offset:
            return True
        if self._watcher.assignment() != {self._last}:
            self._watcher.assign([self._last])
        self._watcher.seek(self._last, self._last_offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self._watcher.poll(timeout_ms=200, max_records=1).get(self._last, []):
                if message.offset >= self._last_offset:
                    return bool(message.offset != self._last_offset or message.value != self._last_value)
        # A KafkaError: the runner backs off and asks again, as for any broker that does not answer.
        raise KafkaTimeoutError(f"reading {self._topic} at offset {self._last_offset} took longer than {timeout_s}s")

    def forget(self) -> None:
        """Nothing is stored any more (the broker lost it): stop checking until the next store."""
        self._last, self._last_offset, self._last_value = None, -1, b""

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
