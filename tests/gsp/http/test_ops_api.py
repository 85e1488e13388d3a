"""The operations page's API on a real control plane on the session's broker: the stream workers' and connector
workers' groups as the broker describes them, with their lag, and connectors with their tasks' throughput (the
figures a worker writes in its status records) and a sink's lag counted by the broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from connectors.cluster import ClusterStore
from connectors.plugins import sink_group
from gsp.governance.identity import Role
from gsp.http.ops_api import SOURCE_LAG_UNKNOWN
from gsp.runtime.connect_worker import GROUP
from schemas import topics
from tests.credentials import Cast

APP_ID = f"ops-streams-{uuid.uuid4().hex[:6]}"


@pytest.fixture(autouse=True)
def stream_group(monkeypatch: pytest.MonkeyPatch) -> str:
    """The stream workers' group of this module's control plane (set before the app is built)."""
    monkeypatch.setenv("GSP_APP_ID", APP_ID)
    return APP_ID


def _topic(bootstrap: str, partitions: int, records: dict[int, int]) -> str:
    """A new topic with ``records[p]`` records in partition p."""
    name = f"ops-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for partition, count in records.items():
            for i in range(count):
                producer.send(name, f"r{i}".encode(), partition=partition)
                # One record a batch: the embedded broker's end offset is its last batch's base offset + 1.
                producer.flush(timeout=30)
    finally:
        producer.close()
    return name


class Members:
    """Consumers in a group, polling on their own threads until closed."""

    def __init__(self, bootstrap: str, group: str, topic: str, client_ids: list[str]) -> None:
        self.stop = threading.Event()
        self.consumers = [KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                                        enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=1000)
                          for client_id in client_ids]
        self.threads = [threading.Thread(target=self._poll, args=(c,), daemon=True) for c in self.consumers]
        for thread in self.threads:
            thread.start()

    def _poll(self, consumer: KafkaConsumer) -> None:
        while not self.stop.is_set():
            consumer.poll(timeout_ms=100, max_records=1)  # reads, never commits

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        for consumer in self.consumers:
            consumer.close()


def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_group_offsets(group, {tp: OffsetAndMetadata(o, "", None) for tp, o in offsets.items()})
    finally:
        admin.close()


def _get(url: str, path: str, token: str) -> requests.Response:
    return requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _until(what: str, check: Any, *, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        time.sleep(0.5)


@pytest.fixture
def store(bootstrap: str) -> Iterator[ClusterStore]:
    """A cluster store of the test's own on the session's broker: the control plane's reads what it writes. The
    connectors a test made are deleted after it (the broker is shared)."""
    cluster = ClusterStore(bootstrap, producer_config={}, consumer_config={})
    cluster.start()
    before = set(cluster.connectors())
    yield cluster
    for name in set(cluster.connectors()) - before:
        cluster.delete(name)
    cluster.close()


def test_ops_sees_the_stream_workers_members_and_their_lag_per_topic_and_partition(
        url: str, people: Cast, bootstrap: str) -> None:
    topic = _topic(bootstrap, 4, {0: 3, 1: 2, 2: 0, 3: 5})
    _commit(bootstrap, APP_ID, {TopicPartition(topic, 0): 1, TopicPartition(topic, 3): 5})
    members = Members(bootstrap, APP_ID, topic, ["stream-a", "stream-b"])
    try:
        body = _until("both members in the group", lambda: (
            (b := _get(url, "/api/ops/workers", people.token(Role.OPS)).json())
            and len(b["stream"]["members"]) == 2 and b))
    finally:
        members.close()
    stream = body["stream"]
    assert stream["group"] == APP_ID and stream["error"] is None, stream
    assert [m["client_id"] for m in stream["members"]] == ["stream-a", "stream-b"], stream["members"]
    if stream["assignments"] == "reported by the broker":  # a broker that reports assignments: all 4, once
        held = sorted(p for m in stream["members"] for p in m["partitions"][topic])
        assert held == [0, 1, 2, 3], stream["members"]
    else:
        assert stream["assignments"] == "not reported by the broker"
        assert all(m["partitions"] is None for m in stream["members"])
    # committed: partition 0 at 1 of 3, partition 3 at 5 of 5; the others never committed are not the group's yet
    assert stream["lag"][topic]["records"] == 2, stream["lag"]
    assert stream["lag"][topic]["partitions"]["0"] == {"committed": 1, "end": 3, "lag": 2}
    assert stream["lag"][topic]["partitions"]["3"]["lag"] == 0


def test_connect_workers_are_the_groups_members_and_the_workers_the_statuses_name(
        url: str, people: Cast, bootstrap: str, store: ClusterStore) -> None:
    name = f"ops-src-{uuid.uuid4().hex[:6]}"
    store.put_config(name, {"connector.class": "sql-source", "name": name, "dataset": "telecom.subscriber",
                            "database_url": "sqlite:///nowhere.db", "tables": "a,b", "key_column": "msisdn",
                            "tasks.max": 2})
    worker = f"ops-worker-{uuid.uuid4().hex[:6]}"
    store.put_status(name, 0, "RUNNING", worker_id=worker)
    store.put_status(name, 1, "FAILED", worker_id="gone-worker:1", trace="RuntimeError: boom")
    members = Members(bootstrap, GROUP, topics.CONNECT_SLOTS, [worker])
    try:
        body = _until("the worker in the group", lambda: (
            (b := _get(url, "/api/ops/workers", people.token(Role.ADMIN)).json())
            and any(w["worker_id"] == worker and w["in_group"] for w in b["connect"]["workers"]) and b))
    finally:
        members.close()
    connect = body["connect"]
    assert connect["group"] == GROUP and connect["slots"] == topics.CONNECT_SLOT_COUNT and "lag" not in connect
    workers = {w["worker_id"]: w for w in connect["workers"]}
    assert workers[worker]["tasks"] == [{"connector": name, "task": 0, "state": "RUNNING"}]
    assert workers["gone-worker:1"] == {"worker_id": "gone-worker:1", "in_group": False, "failed": 1,
                                        "tasks": [{"connector": name, "task": 1, "state": "FAILED"}]}


def test_connectors_carry_their_tasks_throughput_and_a_sinks_lag_and_kafka_connects_status_keeps_its_fields(
        url: str, people: Cast, bootstrap: str, store: ClusterStore) -> None:
    topic = _topic(bootstrap, 2, {0: 3, 1: 2})
    sink, source = f"ops-sink-{uuid.uuid4().hex[:6]}", f"ops-src-{uuid.uuid4().hex[:6]}"
    store.put_config(sink, {"connector.class": "sql-sink", "name": sink, "topic": topic,
                            "database_url": "sqlite:///nowhere.db"})
    store.put_config(source, {"connector.class": "sql-source", "name": source, "dataset": "telecom.subscriber",
                              "database_url": "sqlite:///nowhere.db", "tables": "a", "key_column": "msisdn"})
    store.set_target_state(source, "PAUSED")
    _commit(bootstrap, sink_group(sink), {TopicPartition(topic, 0): 2})
    store.put_status(sink, 0, "RUNNING", worker_id="w1:1", gsp={"records": 40, "counted": "written", "per_s": 2.5,
                                                                "interval_s": 5.0, "at_ms": 1000})
    store.put_status(sink, 1, "RUNNING", worker_id="w2:1", gsp={"records": 2, "counted": "written", "per_s": 0.5,
                                                                "interval_s": 5.0, "at_ms": 2000})
    store.put_status(source, 0, "PAUSED", worker_id="w1:1")

    def read() -> dict[str, Any] | None:
        answer = _get(url, "/api/ops/connectors", people.token(Role.OPS))
        assert answer.status_code == 200, answer.text
        assert answer.json()["error"] is None, answer.json()
        listed = {c["name"]: c for c in answer.json()["connectors"]}
        done = sink in listed and source in listed and listed[source]["tasks"] and listed[sink]["throughput"] \
            and listed[sink]["throughput"]["tasks_reporting"] == 2
        return listed if done else None

    found = _until("the control plane read the statuses", read)
    assert found[sink]["lag"] == {"records": 1 + 2, "topic": topic, "group": sink_group(sink)}  # 3-2 and 2 never read
    assert found[sink]["throughput"] == {"records": 42, "per_s": 3.0, "counted": "written", "tasks_reporting": 2,
                                         "at_ms": 2000}
    assert found[sink]["type"] == "sink" and found[sink]["target_state"] == "STARTED"
    assert found[source]["lag"] == {"records": None, "unknown": SOURCE_LAG_UNKNOWN}
    assert found[source]["throughput"] is None and found[source]["target_state"] == "PAUSED"
    # Kafka Connect's own status answer: its fields as before, the worker's figures beside them
    status = _get(url, f"/connectors/{sink}/status", people.token(Role.OPS)).json()
    assert status["tasks"][0] == {"id": 0, "state": "RUNNING", "worker_id": "w1:1",
                                  "gsp": {"records": 40, "counted": "written", "per_s": 2.5, "interval_s": 5.0,
                                          "at_ms": 1000}}


def test_only_operators_read_the_operations_api(url: str, people: Cast) -> None:
    for role in Role:
        for path in ("/api/ops/connectors", "/api/ops/workers"):
            answer = _get(url, path, people.token(role))
            if role in (Role.OPS, Role.ADMIN):
                assert answer.status_code == 200, (role, path, answer.text)
            else:
                assert answer.status_code == 403, (role, path, answer.text)
                assert "needs the role admin, ops" in answer.json()["error"]
    assert requests.get(f"{url}/api/ops/workers", timeout=10).status_code == 401
