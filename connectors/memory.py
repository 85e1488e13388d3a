"""In-memory source and sink: real implementations of the interfaces, for tests and experiments; and fault doubles."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from connectors.base import SourceRecord

__all__ = ["ListSink", "ListSource", "NackingProducer"]


class ListSource:
    """Publishes a fixed list of values; the position is the index of the next one."""

    def __init__(self, name: str, values: list[tuple[str, dict[str, Any]]]) -> None:
        self.name = name
        self._values = values
        self._next = 0

    def start(self, position: dict[str, Any] | None) -> None:
        self._next = int(position["next"]) if position else 0

    def poll(self, max_records: int) -> list[SourceRecord]:
        chunk = self._values[self._next:self._next + max_records]
        records = [SourceRecord(key=key, version=str(self._next + i), value=value,
                                position={"next": self._next + i + 1}, raw=value)
                   for i, (key, value) in enumerate(chunk)]
        self._next += len(chunk)
        return records

    def close(self) -> None:
        pass


class ListSink:
    """Keeps what it was given; ``flushed`` holds what a flush made durable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pending: list[dict[str, Any]] = []
        self.flushed: list[dict[str, Any]] = []

    def write_batch(self, events: list[dict[str, Any]]) -> None:
        self._pending.extend(events)

    def flush(self) -> None:
        self.flushed.extend(self._pending)
        self._pending.clear()

    def close(self) -> None:
        pass


class NackingProducer:
    """A producer whose first ``nacks`` sends the broker does not acknowledge; later sends go to the real producer."""

    def __init__(self, producer: KafkaProducer, *, nacks: int) -> None:
        self._producer = producer
        self._nacks = nacks

    def send(self, topic: str, **kwargs: Any) -> Future:
        if self._nacks <= 0:
            return self._producer.send(topic, **kwargs)
        self._nacks -= 1
        return Future().failure(KafkaTimeoutError("not acknowledged (fault double)"))

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)
