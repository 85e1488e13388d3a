"""KIP-875 offsets of the connector cluster's connectors, as the REST API (gsp.http.connect) reads and changes them.

A source task's positions are on ``gsp.connect.offsets`` under ``position_key(connector, partition)`` (JSON,
latest per key; a tombstone forgets one); a sink's are the committed offsets of its consumer group
``sink_group(connector)``. Each call opens short-lived clients of its own: offsets are an operator's occasional
request, and nothing stays connected in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from connectors.plugins import position_key, sink_group
from gsp.http.errors import BadRequest
from schemas import topics

__all__ = ["ConnectOffsets", "OffsetsRefused"]


class OffsetsRefused(Exception):
    """The broker did not take an offsets change (the group still has members, say)."""

    http_status = 409


class ConnectOffsets:
    """Reads and writes connectors' KIP-875 offsets on the broker, each call with short-lived clients of its own
    (offsets are an operator's occasional request; nothing stays connected in between)."""

    def __init__(self, bootstrap: str, *, producer_config: Mapping[str, Any], topic: str = topics.CONNECT_OFFSETS,
                 timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._producer_config = {**producer_config, "bootstrap_servers": bootstrap}
        self._topic = topic
        self._timeout_s = timeout_s

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    def source(self, name: str) -> list[dict[str, Any]]:
        """Every stored position of the connector's tasks, by source partition."""
        prefix = f"{name}|"
        found = []
        for key, value in sorted(self._positions().items()):
            if not key.startswith(prefix) or value is None:
                continue
            try:
                partition = json.loads(key[len(prefix):])
            except ValueError:  # "a|b|{...}" is connector "a|b"'s, not "a"'s
                continue
            if isinstance(partition, dict) and position_key(name, partition) == key:
                found.append({"partition": partition, "offset": value})
        return found

    def alter_source(self, name: str, offsets: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        """Store each given position (a null offset: forget that partition's)."""
        self._send({position_key(name, partition): offset for partition, offset in offsets})

    def reset_source(self, name: str) -> int:
        """Tombstone every stored position of the connector; how many there were."""
        stored = [item["partition"] for item in self.source(name)]
        self._send({position_key(name, partition): None for partition in stored})
        return len(stored)

    def sink(self, name: str) -> list[dict[str, Any]]:
        """The committed offsets of the sink's consumer group."""
        with self._admin() as admin:
            found = admin.list_group_offsets(sink_group(name)).get(sink_group(name), {})
        return [{"partition": {"kafka_topic": tp.topic, "kafka_partition": tp.partition},
                 "offset": {"kafka_offset": committed.offset}}
                for tp, committed in sorted(found.items()) if committed.offset >= 0]

    def alter_sink(self, name: str, offsets: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        """Commit each given offset for the sink's group; a null one is not supported by the broker one by one."""
        wanted: dict[TopicPartition, OffsetAndMetadata] = {}
        for given, position in offsets:
            topic, partition = given.get("kafka_topic"), given.get("kafka_partition")
            if not isinstance(topic, str) or not isinstance(partition, int) or isinstance(partition, bool):
                raise BadRequest(f"a sink partition is {{\"kafka_topic\": <string>, \"kafka_partition\": <integer>}}, "
                                 f"not {json.dumps(given)}")
            offset = None if position is None else position.get("kafka_offset")
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise BadRequest(f"the offset of {topic}/{partition} must be {{\"kafka_offset\": <integer >= 0>}}; "
                                 "reset all of a sink's offsets with DELETE")
            wanted[TopicPartition(topic, partition)] = OffsetAndMetadata(offset, "", None)
        with self._admin() as admin:
            failed = {tp: error for tp, error in admin.alter_group_offsets(sink_group(name), wanted).items()
                      if error.__name__ != "NoError"}
        if failed:
            raise OffsetsRefused(f"the broker refused the offsets of {', '.join(f'{tp.topic}/{tp.partition}' for tp in failed)}: "
                           f"{', '.join(sorted({e.__name__ for e in failed.values()}))}")

    def reset_sink(self, name: str) -> None:
        """Delete the sink's consumer group: its tasks start again from the topic's beginning."""
        with self._admin() as admin:
            result = admin.delete_groups([sink_group(name)]).get(sink_group(name), "OK")
        if result not in ("OK", "GroupIdNotFoundError"):
            raise OffsetsRefused(f"the broker did not delete consumer group {sink_group(name)}: {result}")

    def _admin(self) -> _Closing:
        return _Closing(KafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="gsp-connect-offsets"))

    def _send(self, values: Mapping[str, dict[str, Any] | None]) -> None:
        producer = KafkaProducer(**self._producer_config)
        try:
            pending = [producer.send(self._topic, key=key.encode(),
                                     value=None if value is None else json.dumps(value).encode())
                       for key, value in values.items()]
            for sent in pending:
                sent.get(timeout=self._timeout_s)
        finally:
            producer.close()

    def _positions(self) -> dict[str, Any]:
        """The latest value of every key of the offsets topic (None: tombstoned), read to its end."""
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                 client_id="gsp-connect-offsets")
        try:
            tps = [TopicPartition(self._topic, p) for p in consumer.partitions_for_topic(self._topic) or ()]
            if not tps:
                return {}
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            found: dict[str, Any] = {}
            deadline = time.monotonic() + self._timeout_s
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self._topic} took longer than {self._timeout_s}s")
                for batch in consumer.poll(timeout_ms=200).values():
                    for message in batch:
                        if message.key is not None:
                            found[message.key.decode()] = None if message.value is None else json.loads(message.value)
            return found
        finally:
            consumer.close()


class _Closing:
    def __init__(self, admin: KafkaAdminClient) -> None:
        self._admin = admin

    def __enter__(self) -> KafkaAdminClient:
        return self._admin

    def __exit__(self, *exc: object) -> None:
        self._admin.close()
