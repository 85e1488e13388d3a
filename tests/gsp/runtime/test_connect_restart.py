"""Connectors outlive the embedded broker: a real control plane on a broker of the test's own, a connector made
and paused through Kafka Connect's REST API, the broker replaced by a new, empty one on the same port (as
`gsp serve` does when its broker dies) and the control plane's state rebuilt; the config and the PAUSED target
state are on gsp.connect.configs again, a deleted connector is not, and a `gsp connect worker` started on the
new broker runs the connector, publishing its rows again from the first (positions died with the broker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from kafka import KafkaAdminClient
from prometheus_client import CollectorRegistry

from connectors.cluster import ClusterStore
from gsp.governance.connectors import ConnectorRecords
from gsp.governance.identity import Role
from gsp.runtime.embedded import Broker
from gsp.runtime.services import ControlServices
from schemas import topics
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config
from tests.connectors.test_connect_worker import SUBSCRIBER, RawTopic, SourceDatabase
from tests.credentials import Cast

ROWS = 40


@dataclass
class Platform:
    """A control plane on its own embedded broker, an ops credential, a source database and the worker processes."""

    home: Path
    broker: Broker
    services: ControlServices
    headers: dict[str, str]
    db: SourceDatabase
    workers: list[subprocess.Popen[bytes]]

    def api(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.services.api.url + path, json=body, headers=self.headers, timeout=30)

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        """`gsp connect worker`, finding the platform as workers of `gsp serve` do (GSP_HOME/runtime.json)."""
        (self.home / "runtime.json").write_text(json.dumps({"api_url": self.services.api.url,
                                                            "bootstrap": self.broker.bootstrap}))
        env = {**os.environ, "GSP_HOME": str(self.home), "GSP_SESSION_TIMEOUT_S": "4"}
        with open(self.home / f"{name}.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "gsp", "connect", "worker", "--worker-id", name],
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}" for p in self.home.glob("w*.log"))

    def wait(self, what: str, check: Callable[[], bool], *, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            for process in self.workers:
                assert process.poll() is None, f"a worker exited with {process.returncode}:\n{self.logs()}"
            assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}\n{self.logs()}"
            time.sleep(0.2)

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.workers.clear()


def start_services(home: Path, broker: Broker, engine: sa.Engine) -> ControlServices:
    services = ControlServices(Settings(home=home), bootstrap=broker.bootstrap, engine=engine,
                               metrics=CollectorRegistry())
    services.start()
    return services


@pytest.fixture
def platform(tmp_path: Path, sqlite_engine: sa.Engine) -> Iterator[Platform]:
    broker = Broker(log_path=tmp_path / "broker.log")
    broker.start()
    try:
        services = start_services(tmp_path / "home", broker, sqlite_engine)
        try:
            ops = Cast.register(services.control.identities).headers(Role.OPS)
            running = Platform(tmp_path / "home", broker, services, ops, SourceDatabase(tmp_path / "source.db"), [])
            try:
                yield running
            finally:
                running.stop_workers()
        finally:
            services.stop()
    finally:
        broker.stop()


def replace_broker(broker: Broker, services: ControlServices) -> None:
    """What `gsp serve` does when its embedded broker dies: a new one on the same port, holding nothing."""
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGKILL)
    services.broker_lost("the embedded broker process exited")
    time.sleep(0.5)  # a reader that did not stop would fetch from the new broker, making the topics its own way
    broker.restart()
    services.rebuild()
    services.broker_back(restarted=True)


def partitions(bootstrap: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return len(admin.describe_topics([topic])[0]["partitions"])
    finally:
        admin.close()


def fresh_view(bootstrap: str) -> ClusterStore:
    """What a worker started now reads of the cluster's topics."""
    settings = Settings()
    store = ClusterStore(bootstrap, producer_config=kafka_producer_config(settings, bootstrap),
                         consumer_config=kafka_consumer_config(settings, bootstrap))
    store.start()
    return store


def sql_source(db: SourceDatabase, table: str) -> dict[str, Any]:
    return {"connector.class": "vn.gsp.connect.SqlSourceConnector", "dataset": SUBSCRIBER,
            "database_url": db.url, "tables": table, "key_column": "msisdn", "batch_size": "10",
            "poll_interval_s": "0.2"}


def test_a_paused_connector_survives_a_new_empty_broker_and_a_new_worker_runs_it_from_the_first_row(
        platform: Platform) -> None:
    platform.db.create("sub_a", ROWS)
    config = {**sql_source(platform.db, "sub_a"), "name": "subscribers"}
    created = platform.api("POST", "/connectors", {"name": "subscribers", "config": config})
    assert created.status_code == 201, created.text
    gone = platform.api("POST", "/connectors", {"name": "old", "config": sql_source(platform.db, "sub_a"),
                                                "initial_state": "PAUSED"})
    assert gone.status_code == 201, gone.text
    assert platform.api("DELETE", "/connectors/old").status_code == 204

    raw = RawTopic(platform.broker.bootstrap, platform.services.codec)
    try:
        platform.worker("w1")
        platform.wait("every row published once", lambda: raw.read() == ROWS)
    finally:
        raw.close()
    assert platform.api("PUT", "/connectors/subscribers/pause").status_code == 202
    platform.wait("the connector paused", lambda: platform.api("GET", "/connectors/subscribers/status")
                  .json()["connector"]["state"] == "PAUSED")
    platform.stop_workers()

    replace_broker(platform.broker, platform.services)
    assert partitions(platform.broker.bootstrap, topics.CONNECT_CONFIGS) == 1  # not made by a reader meanwhile

    assert platform.api("GET", "/connectors").json() == ["subscribers"]
    assert platform.api("GET", "/connectors/subscribers/config").json() == config
    status = platform.api("GET", "/connectors/subscribers/status").json()
    assert status["connector"] == {"state": "UNASSIGNED", "worker_id": ""}, status  # the old broker's forgotten
    view = fresh_view(platform.broker.bootstrap)
    try:
        assert view.connectors() == ["subscribers"]
        assert view.config("subscribers") == config and view.target_state("subscribers") == "PAUSED"
    finally:
        view.close()

    raw = RawTopic(platform.broker.bootstrap, platform.services.codec)
    try:
        platform.worker("w2")
        platform.wait("the connector paused on the new worker", lambda: platform.api(
            "GET", "/connectors/subscribers/status").json()["connector"] == {"state": "PAUSED", "worker_id": "w2"})
        time.sleep(1.0)  # five poll intervals
        assert raw.read() == 0

        assert platform.api("PUT", "/connectors/subscribers/resume").status_code == 202
        platform.wait("every row published again", lambda: raw.read() == ROWS)
        tasks = platform.api("GET", "/connectors/subscribers/status").json()["tasks"]
        assert [(t["state"], t["worker_id"]) for t in tasks] == [("RUNNING", "w2")]
    finally:
        raw.close()


def test_a_control_plane_started_on_an_empty_broker_publishes_the_connectors_its_database_holds(
        tmp_path: Path, sqlite_engine: sa.Engine) -> None:
    db = SourceDatabase(tmp_path / "source.db")
    broker = Broker(log_path=tmp_path / "broker.log")
    broker.start()
    try:
        services = start_services(tmp_path / "home", broker, sqlite_engine)
        try:
            ops = Cast.register(services.control.identities).headers(Role.OPS)
            answer = requests.post(services.api.url + "/connectors", headers=ops, timeout=30, json={
                "name": "stopped", "config": sql_source(db, "sub_a"), "initial_state": "STOPPED"})
            assert answer.status_code == 201, answer.text
        finally:
            services.stop()
        broker.restart()  # `gsp serve` itself died: its next start has a new embedded broker

        services = start_services(tmp_path / "home", broker, sqlite_engine)
        try:
            view = fresh_view(broker.bootstrap)
            try:
                assert view.config("stopped") == {**sql_source(db, "sub_a"), "name": "stopped"}
                assert view.target_state("stopped") == "STOPPED"
            finally:
                view.close()
        finally:
            services.stop()
    finally:
        broker.stop()


@pytest.fixture
def topics_of_this_test(bootstrap: str) -> Iterator[ClusterStore]:
    """A cluster store on the session's broker, on topics of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    store = ClusterStore(bootstrap, producer_config={"enable_idempotence": False}, consumer_config={},
                         configs_topic=f"test.restart.configs.{suffix}", status_topic=f"test.restart.status.{suffix}")
    store.start()
    yield store
    store.close()


def test_a_start_publishes_what_the_topic_lacks_finishes_a_deletion_and_takes_in_what_only_the_topic_knows(
        topics_of_this_test: ClusterStore, registry_engine: sa.Engine) -> None:
    store, records = topics_of_this_test, ConnectorRecords(registry_engine)
    records.save("acked", {"connector.class": "sql-source", "tables": "a", "password": "mật khẩu"},
                 target_state="PAUSED")                     # acknowledged, then the broker failed
    records.save("renamed", {"connector.class": "sql-source", "tables": "new"})
    store.put_config("renamed", {"connector.class": "sql-source", "tables": "old"})
    store.put_config("deleted", {"connector.class": "sql-source"})
    records.save("deleted", {"connector.class": "sql-source"})
    records.delete("deleted")                               # its tombstones never reached the topic
    store.put_config("older", {"connector.class": "file-source"})  # made before the table existed
    store.set_target_state("older", "STOPPED")

    assert records.reconcile(store) == {"published": 2, "deleted": 1, "adopted": 1}

    assert store.connectors() == ["acked", "older", "renamed"]
    assert store.config("acked") == {"connector.class": "sql-source", "tables": "a", "password": "mật khẩu"}
    assert store.target_state("acked") == "PAUSED"
    assert store.config("renamed") == {"connector.class": "sql-source", "tables": "new"}
    assert [(c.name, c.target_state) for c in records.stored()] == [
        ("acked", "PAUSED"), ("older", "STOPPED"), ("renamed", "STARTED")]
    assert records.deleted() == {"deleted"}
    assert records.reconcile(store) == {"published": 0, "deleted": 0, "adopted": 0}

    records.save("deleted", {"connector.class": "sql-source", "tables": "b"})  # made again: started, not deleted
    records.set_target_state("renamed", "STOPPED")
    records.save("renamed", {"connector.class": "sql-source", "tables": "newer"})  # a config keeps the state
    assert [(c.name, c.target_state) for c in records.stored()] == [
        ("acked", "PAUSED"), ("deleted", "STARTED"), ("older", "STOPPED"), ("renamed", "STOPPED")]


def test_a_worker_that_outlives_its_broker_exits_to_be_restarted_and_its_restart_runs_the_connector(
        platform: Platform) -> None:
    platform.db.create("sub_b", ROWS)
    config = {**sql_source(platform.db, "sub_b"), "name": "carriers"}
    assert platform.api("POST", "/connectors", {"name": "carriers", "config": config}).status_code == 201
    raw = RawTopic(platform.broker.bootstrap, platform.services.codec)
    try:
        w1 = platform.worker("w1")
        platform.wait("every row published once", lambda: raw.read() == ROWS)
    finally:
        raw.close()

    # The worker stays up while the broker is replaced: it must not keep running tasks from a state the new
    # broker does not hold; it says why and exits with EX_TEMPFAIL, for its supervisor to start it again.
    replace_broker(platform.broker, platform.services)
    assert w1.wait(timeout=60) == 75
    platform.workers.remove(w1)  # exited as it should: its supervisor (here the test) starts it again
    assert "the broker lost the connector cluster's topics" in (platform.home / "w1.log").read_text(errors="replace")
    assert partitions(platform.broker.bootstrap, topics.CONNECT_CONFIGS) == 1
    assert partitions(platform.broker.bootstrap, topics.CONNECT_SLOTS) == topics.CONNECT_SLOT_COUNT

    raw = RawTopic(platform.broker.bootstrap, platform.services.codec)
    try:
        platform.worker("w1-again")
        platform.wait("every row published again on the new broker", lambda: raw.read() == ROWS)
    finally:
        raw.close()
