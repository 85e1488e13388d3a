"""Reading a topic back in tests, from the beginning, with a bounded loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

__all__ = ["read_topic"]


def read_topic(bootstrap: str, topic: str, *, until: Callable[[list[Any]], bool] | None = None,
               timeout_s: float = 30.0) -> list[Any]:
    """Every message of ``topic``: up to its end offsets at the time of the call, or, with ``until``,
    until ``until(messages)`` holds (for output a worker is still producing) or the time is up."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until(messages) if until else all(consumer.position(tp) >= end[tp] for tp in tps):
                break
            for batch in consumer.poll(timeout_ms=200).values():
                messages.extend(batch)
        return messages
    finally:
        consumer.close()
