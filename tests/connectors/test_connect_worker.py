"""`gsp connect worker` processes on a broker of their own: they share a connector's tasks through Kafka's group
membership, take over the tasks of a worker killed with SIGKILL from their stored positions, pause, resume,
stop, and report a failed task with its trace until a restart brings it back."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from connectors.cluster import ClusterStore
from gsp.governance.topology import ensure_topics
from gsp.runtime.connect_worker import placements
from gsp.runtime.embedded import Broker, free_port
from schemas import topics
from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.registry import RegistryClient
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config

SUBSCRIBER = "telecom.subscriber"
TABLES = ["sub_a", "sub_b", "sub_c", "sub_d"]
BATCH = 20


class SourceDatabase:
    """A SQLite file with one table per name, written while workers read it (WAL: readers never wait)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._next = 0
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def create(self, table: str, rows: int) -> None:
        with contextlib.closing(self._connect()) as conn:
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, updated_at INTEGER, msisdn TEXT, carrier TEXT, "
                         "subscriber_name TEXT, id_number TEXT, birth_date TEXT, address TEXT)")
        self.insert([table], rows)

    def insert(self, tables: list[str], rows: int) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            for table in tables:
                for _ in range(rows):
                    self._next += 1
                    conn.execute(f"INSERT INTO {table} (updated_at, msisdn, carrier, subscriber_name, id_number, "
                                 "birth_date, address) VALUES (?, ?, 'Viettel', 'Lê Thị Thu', ?, '1985-01-02', NULL)",
                                 (self._next, f"09{self._next:08d}", f"{self._next:012d}"))
            conn.execute("COMMIT")
        finally:
            conn.close()

    def rows(self, table: str) -> int:
        with contextlib.closing(self._connect()) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def total(self) -> int:
        return self._next

    def keep_writing(self, tables: list[str], *, rows: int = 5, every_s: float = 0.1) -> None:
        def write() -> None:
            while not self._stop.wait(every_s):
                self.insert(tables, rows)
        self._writer = threading.Thread(target=write, name="source-writer", daemon=True)
        self._writer.start()

    def stop_writing(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=10)


class RawTopic:
    """Every event the raw topic received so far: total and distinct event ids."""

    def __init__(self, bootstrap: str, codec: Codec) -> None:
        self._codec = codec
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
        topic = topics.raw(SUBSCRIBER)
        tps = [TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic) or [])]
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)
        self.received = 0
        self.event_ids: set[str] = set()

    def read(self) -> int:
        """Read what is there; the number of distinct events."""
        for batch in self._consumer.poll(timeout_ms=200, max_records=5000).values():
            for message in batch:
                self.received += 1
                self.event_ids.add(self._codec.decode(message.value)[1]["header"]["event_id"])
        return len(self.event_ids)

    def close(self) -> None:
        self._consumer.close()


class Cluster:
    def __init__(self, tmp_path: Path, bootstrap: str, registry_url: str, store: ClusterStore, raw: RawTopic) -> None:
        self.tmp_path, self.bootstrap, self.store, self.raw = tmp_path, bootstrap, store, raw
        self.env = {**os.environ, "GSP_HOME": str(tmp_path / "home"), "GSP_KAFKA_BOOTSTRAP": bootstrap,
                    "GSP_SCHEMA_REGISTRY_URL": registry_url, "GSP_SESSION_TIMEOUT_S": "4"}
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.db = SourceDatabase(tmp_path / "source.db")

    def worker(self, worker_id: str, *options: str) -> subprocess.Popen[bytes]:
        with open(self.tmp_path / f"{worker_id}.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "gsp", "connect", "worker", "--worker-id", worker_id,
                                        *options], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.workers[worker_id] = process
        return process

    def full_logs(self) -> str:
        return "\n".join((self.tmp_path / f"{w}.log").read_text(errors="replace") for w in self.workers)

    def logs(self) -> str:
        return "\n".join(f"--- {w}:\n" + (self.tmp_path / f"{w}.log").read_text(errors="replace")[-3000:]
                         for w in self.workers)

    def connector(self, name: str, tables: list[str]) -> None:
        self.store.put_config(name, {"connector.class": "sql-source", "name": name, "dataset": SUBSCRIBER,
                                     "database_url": self.db.url, "tables": tables, "key_column": "msisdn",
                                     "tasks.max": len(tables), "batch_size": BATCH, "poll_interval_s": 0.2})

    def wait(self, what: str, check: Callable[[], bool], *, timeout_s: float = 45.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            for worker_id, process in self.workers.items():
                assert process.poll() is None or process.returncode == -signal.SIGKILL, \
                    f"worker {worker_id} exited with {process.returncode}:\n{self.logs()}"
            assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}\n{self.store.status('subs')}\n" \
                                                f"{self.raw.read()} events\n{self.logs()}"
            time.sleep(0.2)

    def tasks(self, name: str = "subs") -> list[dict[str, Any]]:
        return list(self.store.status(name)["tasks"])

    def all_published(self) -> bool:
        return self.raw.read() == self.db.total()

    def close(self) -> None:
        self.db.stop_writing()
        for process in self.workers.values():
            if process.poll() is None:
                process.terminate()
        for process in self.workers.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def running_on(tasks: list[dict[str, Any]], count: int) -> set[str] | None:
    """The workers running the tasks when all ``count`` run, else None."""
    if len(tasks) != count or any(t["state"] != "RUNNING" for t in tasks):
        return None
    return {t["worker_id"] for t in tasks}


@pytest.fixture
def cluster(tmp_path: Path, sqlite_engine: sa.Engine,
            serve_registry: Callable[[sa.Engine], AbstractContextManager[str]]) -> Iterator[Cluster]:
    """A broker of this test's own (the workers' group and topics are the platform's), a registry with the
    subscriber contracts, a cluster store and a reader of the raw topic."""
    broker = Broker(log_path=tmp_path / "broker.log")
    broker.start()
    try:
        subscriber = dataset(SUBSCRIBER)
        ensure_topics(broker.bootstrap, {topics.raw(SUBSCRIBER): (4, {}), topics.quarantine(SUBSCRIBER): (1, {})})
        with serve_registry(sqlite_engine) as url:
            registry = RegistryClient(url)
            registry.register(topics.subject(topics.raw(SUBSCRIBER)), subscriber.avro)
            registry.register(topics.subject(topics.quarantine(SUBSCRIBER)), contract("vn.gsp.quality.QualityIssue"))
            settings = Settings()
            store = ClusterStore(broker.bootstrap, producer_config=kafka_producer_config(settings, broker.bootstrap),
                                 consumer_config=kafka_consumer_config(settings, broker.bootstrap))
            store.start()
            raw = RawTopic(broker.bootstrap, Codec(resolve=registry.schema_by_id))
            running = Cluster(tmp_path, broker.bootstrap, url, store, raw)
            try:
                yield running
            finally:
                running.close()
                raw.close()
                store.close()
    finally:
        broker.stop()


def test_two_workers_share_a_connectors_tasks_and_a_third_worker_takes_some_of_them(cluster: Cluster) -> None:
    for table in TABLES:
        cluster.db.create(table, 200)
    cluster.connector("subs", TABLES)
    port = free_port()
    cluster.worker("w1", "--port", str(port))
    cluster.worker("w2")

    cluster.wait("4 tasks running on w1 and w2", lambda: running_on(cluster.tasks(), 4) == {"w1", "w2"})
    assert cluster.store.status("subs")["connector"]["state"] == "RUNNING"
    assert cluster.store.status("subs")["type"] == "source"
    cluster.wait("every row published", cluster.all_published)
    on_w1 = sum(t["worker_id"] == "w1" for t in cluster.tasks())
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read())
    assert health["status"] == "ok" and health["worker_id"] == "w1" and len(health["tasks"]) == on_w1
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert f'gsp_connect_worker_tasks{{state="RUNNING"}} {on_w1}.0' in metrics
    assert "gsp_connect_worker_slots 32.0" in metrics

    cluster.worker("w3")
    cluster.wait("tasks rebalanced over w1, w2 and w3",
                 lambda: running_on(cluster.tasks(), 4) == {"w1", "w2", "w3"})
    cluster.db.insert(TABLES, 50)
    cluster.wait("the rows added after the rebalance published", cluster.all_published)
    # Hand-overs resume from stored positions: no runner took a position the broker holds for a lost one (it
    # would replay its whole table), and copies are at most the batches in flight when a task moved.
    assert "replaying the source" not in cluster.full_logs()
    assert cluster.raw.received < 2 * cluster.db.total()


def test_the_tasks_of_a_killed_worker_move_and_continue_from_their_stored_positions(cluster: Cluster) -> None:
    for table in TABLES:
        cluster.db.create(table, 300)
    cluster.connector("subs", TABLES)
    for worker_id in ("w1", "w2", "w3"):
        cluster.worker(worker_id)
    cluster.wait("4 tasks running on 3 workers", lambda: running_on(cluster.tasks(), 4) == {"w1", "w2", "w3"})
    cluster.db.keep_writing(TABLES)
    cluster.wait("tasks publishing", lambda: cluster.raw.read() > 1500)

    held = {t["id"] for t in cluster.tasks() if t["worker_id"] == "w1"}
    assert held
    cluster.workers["w1"].send_signal(signal.SIGKILL)  # mid-run: rows keep arriving, batches are in flight
    cluster.workers["w1"].wait(timeout=10)
    cluster.wait("w1's tasks running on w2 and w3",
                 lambda: running_on(cluster.tasks(), 4) == {"w2", "w3"}, timeout_s=40)
    time.sleep(1.0)
    cluster.db.stop_writing()

    cluster.wait("every row of every table on the raw topic", cluster.all_published)
    assert len(cluster.raw.event_ids) == cluster.db.total()
    # Resumed from stored positions, never replayed from the start: copies are only what was in flight.
    assert "replaying the source" not in cluster.full_logs()
    moved = sum(cluster.db.rows(TABLES[task]) for task in held)
    assert cluster.raw.received - cluster.db.total() <= moved


def test_pause_stops_publishing_resume_continues_and_stop_reports_stopped(cluster: Cluster) -> None:
    for table in TABLES:
        cluster.db.create(table, 50)
    cluster.connector("subs", TABLES)
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.wait("every row published", lambda: running_on(cluster.tasks(), 4) is not None and cluster.all_published())

    cluster.store.set_target_state("subs", "PAUSED")
    cluster.wait("every task paused", lambda: all(t["state"] == "PAUSED" for t in cluster.tasks()))
    cluster.wait("the connector paused", lambda: cluster.store.status("subs")["connector"]["state"] == "PAUSED")
    published = cluster.raw.read()
    cluster.db.insert(TABLES, 25)
    time.sleep(2.5)  # ten poll intervals
    assert cluster.raw.read() == published

    cluster.store.set_target_state("subs", "STARTED")
    cluster.wait("the rows added while paused published", cluster.all_published)
    cluster.wait("every task running again", lambda: running_on(cluster.tasks(), 4) is not None)

    cluster.store.set_target_state("subs", "STOPPED")
    cluster.wait("the connector stopped", lambda: cluster.store.status("subs")["connector"]["state"] == "STOPPED")
    assert cluster.store.status("subs")["tasks"] == []  # Kafka Connect: a stopped connector has no tasks
    cluster.db.insert(TABLES, 10)
    time.sleep(1.5)
    assert cluster.raw.read() == published + 4 * 25
    cluster.store.set_target_state("subs", "STARTED")
    cluster.wait("the rows added while stopped published", cluster.all_published)


def test_a_task_that_cannot_start_is_failed_with_its_trace_until_a_restart_brings_it_back(cluster: Cluster) -> None:
    for table in TABLES[:3]:
        cluster.db.create(table, 40)
    cluster.connector("subs", [*TABLES[:3], "sub_late"])
    cluster.worker("w1")

    cluster.wait("task 3 failed, the others running",
                 lambda: [t["state"] for t in cluster.tasks()] == ["RUNNING", "RUNNING", "RUNNING", "FAILED"])
    failed = cluster.tasks()[3]
    assert failed["worker_id"] == "w1"
    assert "Traceback" in failed["trace"] and "'sub_late' does not exist" in failed["trace"]
    cluster.wait("the other tables published", cluster.all_published)

    cluster.db.create("sub_late", 40)
    time.sleep(1.0)
    assert cluster.tasks()[3]["state"] == "FAILED"  # a failed task stays failed until it is restarted
    cluster.store.request_restart("subs", include_tasks=True, only_failed=True)
    cluster.wait("task 3 running again", lambda: running_on(cluster.tasks(), 4) == {"w1"})
    assert "trace" not in cluster.tasks()[3]
    cluster.wait("the late table published", cluster.all_published)


def test_the_global_task_list_is_connectors_by_name_then_tasks_and_a_stopped_connector_takes_one_place(
        bootstrap: str, tmp_path: Path) -> None:
    settings, suffix = Settings(), tmp_path.name[-8:].replace("-", "")
    store = ClusterStore(bootstrap, producer_config=kafka_producer_config(settings, bootstrap),
                         consumer_config=kafka_consumer_config(settings, bootstrap),
                         configs_topic=f"test.placements.configs.{suffix}", status_topic=f"test.placements.status.{suffix}")
    store.start()
    try:
        source = {"connector.class": "sql-source", "dataset": SUBSCRIBER, "database_url": "sqlite://",
                  "key_column": "msisdn"}
        store.put_config("zeta", {**source, "tables": ["a", "b", "c"], "tasks.max": 2})
        store.put_config("alpha", {**source, "tables": ["x", "y"], "tasks.max": 5})
        store.put_config("middle", {**source, "table": "m"})
        store.put_config("broken", {"connector.class": "ftp-source"})
        store.set_target_state("middle", "STOPPED")

        placed = placements(store)
    finally:
        store.close()
    assert [(p.connector, p.task) for p in placed] == [
        ("alpha", 0), ("alpha", 1), ("broken", None), ("middle", None), ("zeta", 0), ("zeta", 1)]
    assert [p.config["tables"] for p in placed if p.config] == [["x"], ["y"], ["a", "c"], ["b"]]
    assert placed[2].error is not None and "unknown connector.class 'ftp-source'" in placed[2].error
    assert (placed[0].tasks, placed[3].tasks) == (2, 0)


def test_the_connect_bench_reports_one_and_two_workers_and_the_runner_against_the_raw_producer(tmp_path: Path) -> None:
    from gsp.tools.bench.connect import run_connect_bench

    out, err = io.StringIO(), io.StringIO()
    assert run_connect_bench(Settings(home=tmp_path), rows=200, as_json=True, out=out, err=err) == 0
    figures = json.loads(out.getvalue())["figures"]
    assert set(figures) == {"connect_one_worker", "connect_two_workers", "connector_publish"}
    assert all(f["records"] == 800 and f["records_per_s"] > 0 and f["ratio"] > 0 for f in figures.values())
    assert figures["connector_publish"]["baseline"] == "kafka-python producer, same records + flush"
    assert figures["connect_two_workers"]["baseline_records_per_s"] == figures["connect_one_worker"]["records_per_s"]
