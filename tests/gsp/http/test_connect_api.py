"""Kafka Connect's REST API on a real control plane (its services on the session's broker and a SQLite database),
driven by the third-party client kafka-connect-py as an operator drives a Kafka Connect cluster, with HTTP Basic
of an ops credential's key id and secret; what it changes is read back from the cluster's topics
(`ClusterStore`), and the offsets from gsp.connect.offsets and the sink's consumer group. The `gsp connect`
commands over the same API are run as `python -m gsp` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from kafka_connect import KafkaConnect
from requests.exceptions import HTTPError

from connectors.plugins import PLUGINS, position_key, sink_group
from gsp.governance.identity import Role
from gsp.runtime.services import ControlServices
from schemas import topics
from tests.connectors.test_connect_worker import SourceDatabase
from tests.credentials import Cast
from tests.gsp.cli.test_cli import gsp

NOT_STOPPED = ("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for "
               "the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint")


@pytest.fixture
def cast(services: ControlServices) -> Cast:
    return Cast.register(services.control.identities)


def auth(cast: Cast, role: Role) -> str:
    """kafka-connect-py's auth: "user:password", here the credential's key id and secret."""
    _, key_id, secret = cast.token(role).split("_", 2)
    return f"{key_id}:{secret}"


@pytest.fixture
def client(services: ControlServices, cast: Cast) -> Iterator[KafkaConnect]:
    """An operator's client; the connectors a test made are deleted after it (the session's broker keeps them)."""
    before = set(services.connect.store.connectors())
    yield KafkaConnect(url=services.api.url, auth=auth(cast, Role.OPS))
    for name in set(services.connect.store.connectors()) - before:
        services.connect.store.delete(name)


def unique(prefix: str) -> str:
    """Connectors live on the session's broker: each test's are its own."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sql_source(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"connector.class": "vn.gsp.connect.SqlSourceConnector", "tasks.max": "2",
            "dataset": "telecom.subscriber", "database_url": f"sqlite:///{tmp_path / 'telecom.db'}",
            "tables": "subscriber,prepaid,postpaid", "key_column": "msisdn", **extra}


def refused(call: Any, *args: Any, **kwargs: Any) -> requests.Response:
    """The error answer kafka-connect-py raised for."""
    with pytest.raises(HTTPError) as raised:
        call(*args, **kwargs)
    response = raised.value.response
    assert response is not None, "the client raised without an answer"
    return response


def error_of(response: requests.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == response.status_code, response.text
    assert "\n" not in body["message"], body["message"]
    return response.status_code, body["message"]


def test_a_connector_is_created_listed_read_and_updated(client: KafkaConnect, services: ControlServices,
                                                        tmp_path: Path) -> None:
    name = unique("subscribers")
    config = sql_source(tmp_path)

    created = client.create_connector({"name": name, "config": config})

    assert created == {"name": name, "config": {**config, "name": name}, "type": "source",
                       "tasks": [{"connector": name, "task": 0}, {"connector": name, "task": 1}]}
    assert services.connect.store.config(name) == {**config, "name": name}
    assert error_of(refused(client.create_connector, {"name": name, "config": config})) == (
        409, f"Connector {name} already exists")

    assert name in client.list_connectors()
    assert client.list_connectors(expand="info")[name] == {"info": created}
    assert client.list_connectors(expand="status")[name] == {"status": {
        "name": name, "connector": {"state": "UNASSIGNED", "worker_id": ""}, "tasks": [], "type": "source"}}
    both = requests.get(f"{client.url}/connectors", params=[("expand", "status"), ("expand", "info")],
                        auth=client.auth, timeout=30).json()[name]
    assert set(both) == {"status", "info"}
    assert client.get_connector(name) == created
    assert client.get_connector_config(name) == {**config, "name": name}
    assert client.get_connector_status(name)["connector"]["state"] == "UNASSIGNED"
    tasks = client.list_connector_tasks(name)
    assert [t["id"] for t in tasks] == [{"connector": name, "task": 0}, {"connector": name, "task": 1}]
    assert [(t["config"]["tables"], t["config"]["task.id"]) for t in tasks] == [
        (["subscriber", "postpaid"], 0), (["prepaid"], 1)]

    updated = client.update_connector(name, {**config, "tables": "subscriber", "tasks.max": "1"})
    assert updated["tasks"] == [{"connector": name, "task": 0}]
    assert services.connect.store.config(name)["tables"] == "subscriber"
    # PUT creates a connector that is not there (201) and updates one that is (200), as Kafka Connect does.
    other = unique("prepaid")
    put = requests.put(f"{client.url}/connectors/{other}/config", json=config, auth=client.auth, timeout=30)
    assert put.status_code == 201 and put.json()["name"] == other, put.text
    again = requests.put(f"{client.url}/connectors/{other}/config", json=config, auth=client.auth, timeout=30)
    assert again.status_code == 200, again.text
    assert {name, other} <= set(client.list_connectors())
    wrong_name = refused(client.update_connector, other, {**config, "name": "someone-else"})
    assert error_of(wrong_name) == (400, f"Connector name configuration (someone-else) doesn't match connector name "
                                         f"in the URL ({other})")


def test_a_bad_config_is_refused_listing_every_mistake(client: KafkaConnect, services: ControlServices,
                                                       tmp_path: Path) -> None:
    config = {k: v for k, v in sql_source(tmp_path, **{"tasks.max": "many", "tabel": "x"}).items()
              if k != "key_column"}

    validated = client.validate_connector_config("SqlSourceConnector", config)

    assert validated["name"] == "vn.gsp.connect.SqlSourceConnector"
    assert validated["error_count"] == 3
    errors = {c["value"]["name"]: c["value"]["errors"] for c in validated["configs"] if c["value"]["errors"]}
    assert set(errors) == {"tasks.max", "tabel", "key_column"}, errors
    assert errors["key_column"] == ['Missing required configuration "key_column" which has no default value.']
    password = next(c["value"] for c in validated["configs"] if c["value"]["name"] == "database_url")
    assert password["value"] == "[hidden]"
    assert client.validate_connector_config("sql-source", sql_source(tmp_path))["error_count"] == 0

    name = unique("bad")
    status, message = error_of(refused(client.create_connector, {"name": name, "config": config}))
    assert status == 400 and message.startswith("Connector configuration is invalid and contains the following 3 "
                                                "error(s): "), message
    assert all(key in message for key in ("tasks.max", "tabel", "key_column")), message
    assert services.connect.store.config(name) is None
    assert error_of(refused(client.validate_connector_config, "NoSuchConnector", config)) == (
        404, "Unknown plugin NoSuchConnector.")
    mismatch = refused(client.validate_connector_config, "SqlSinkConnector", sql_source(tmp_path))
    assert error_of(mismatch) == (400, "Included connector type vn.gsp.connect.SqlSourceConnector does not match "
                                       "request type SqlSinkConnector")
    unknown_class = refused(client.create_connector, {"name": name, "config": {"connector.class": "Nope"}})
    assert unknown_class.status_code == 400 and "unknown connector.class 'Nope'" in error_of(unknown_class)[1]


def test_the_plugins_are_every_connector_type(client: KafkaConnect) -> None:
    listed = client.list_connector_plugins()

    assert listed == sorted(({"class": p.class_name, "type": p.kind, "version": p.version} for p in PLUGINS.values()),
                            key=lambda p: p["class"])
    assert {p["type"] for p in listed} == {"source", "sink"}
    settings = requests.get(f"{client.url}/connector-plugins/sql-source/config", auth=client.auth, timeout=30).json()
    assert {s["name"] for s in settings} == set(PLUGINS["sql-source"].config_def.keys)
    key_column = next(s for s in settings if s["name"] == "key_column")
    assert key_column["required"] is True and key_column["type"] == "STRING", key_column


def test_pause_resume_stop_and_restart_reach_the_cluster(client: KafkaConnect, services: ControlServices,
                                                          tmp_path: Path) -> None:
    store = services.connect.store
    name = unique("subscribers")
    client.create_connector({"name": name, "config": sql_source(tmp_path)})

    client.pause_connector(name)
    assert store.target_state(name) == "PAUSED"
    client.resume_connector(name)
    assert store.target_state(name) == "STARTED"
    client.stop_connector(name)
    assert store.target_state(name) == "STOPPED"
    # Stopped, it has no tasks (Kafka Connect drops their configs) and says so.
    assert client.get_connector(name)["tasks"] == [] and client.list_connector_tasks(name) == []
    assert client.get_connector_status(name)["connector"] == {"state": "STOPPED", "worker_id": ""}
    client.resume_connector(name)
    assert len(client.get_connector(name)["tasks"]) == 2

    # As a worker reports: the connector runs, its task 1 failed.
    store.put_status(name, None, "RUNNING", worker_id="w1:8083", tasks=2)
    store.put_status(name, 0, "RUNNING", worker_id="w1:8083")
    store.put_status(name, 1, "FAILED", worker_id="w2:8083", trace="RuntimeError: the table went away")
    assert client.get_connector_task_status(name, 1) == {"id": 1, "state": "FAILED", "worker_id": "w2:8083",
                                                         "trace": "RuntimeError: the table went away"}
    assert error_of(refused(client.get_connector_task_status, name, 7)) == (404, f"No status found for task {name}-7")

    assert client.restart_connector(name) is None  # 204: the connector alone
    accepted = client.restart_connector(name, include_tasks=True, only_failed=True)  # 202 with the status
    assert accepted["connector"] == {"state": "RUNNING", "worker_id": "w1:8083"}
    assert [(t["id"], t["state"]) for t in accepted["tasks"]] == [(0, "RUNNING"), (1, "RESTARTING")]
    client.restart_connector_task(name, 1)
    assert [{k: r[k] for k in ("include_tasks", "only_failed", "task")} for r in store.restarts(name)] == [
        {"include_tasks": False, "only_failed": False, "task": None},
        {"include_tasks": True, "only_failed": True, "task": None},
        {"include_tasks": False, "only_failed": False, "task": 1}]
    assert error_of(refused(client.restart_connector_task, name, 9)) == (404, f"Task {name}-9 not found")

    client.delete_connector(name)
    assert store.config(name) is None and name not in client.list_connectors()
    stopped = unique("stopped")  # KIP-980: created in a target state of its own
    made = requests.post(f"{client.url}/connectors", auth=client.auth, timeout=30, json={
        "name": stopped, "config": sql_source(tmp_path), "initial_state": "STOPPED"})
    assert made.status_code == 201 and made.json()["tasks"] == [], made.text
    assert store.target_state(stopped) == "STOPPED"
    for call in (client.get_connector, client.get_connector_status, client.pause_connector, client.delete_connector):
        assert error_of(refused(call, name)) == (404, f"Connector {name} not found")


def offsets_call(client: KafkaConnect, method: str, name: str, body: Any = None) -> requests.Response:
    """kafka-connect-py has no offsets calls (KIP-875 came later): the same requests, with its credential."""
    return requests.request(method, f"{client.url}/connectors/{name}/offsets", json=body, auth=client.auth, timeout=30)


def test_source_offsets_are_read_and_change_only_while_stopped(client: KafkaConnect, services: ControlServices,
                                                               bootstrap: str, tmp_path: Path) -> None:
    name = unique("subscribers")
    client.create_connector({"name": name, "config": sql_source(tmp_path)})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:  # positions as the tasks' runners store them
        for table, position in (("subscriber", {"ts": 1700, "id": 42}), ("prepaid", {"ts": 1800, "id": 7})):
            producer.send(topics.CONNECT_OFFSETS, key=position_key(name, {"table": table}).encode(),
                          value=json.dumps(position).encode()).get(timeout=30)
    finally:
        producer.close()

    assert offsets_call(client, "GET", name).json() == {"offsets": [
        {"partition": {"table": "prepaid"}, "offset": {"ts": 1800, "id": 7}},
        {"partition": {"table": "subscriber"}, "offset": {"ts": 1700, "id": 42}}]}
    patch = {"offsets": [{"partition": {"table": "subscriber"}, "offset": {"ts": 1, "id": 1}}]}
    for method, body in (("PATCH", patch), ("DELETE", None)):
        answer = offsets_call(client, method, name, body)
        assert error_of(answer) == (400, NOT_STOPPED.format(name=name)), method
    client.pause_connector(name)  # paused is not stopped
    assert offsets_call(client, "DELETE", name).status_code == 400

    client.stop_connector(name)
    altered = offsets_call(client, "PATCH", name, patch)
    assert altered.status_code == 200 and "altered successfully" in altered.json()["message"], altered.text
    assert {"partition": {"table": "subscriber"}, "offset": {"ts": 1, "id": 1}} in \
        offsets_call(client, "GET", name).json()["offsets"]
    reset = offsets_call(client, "DELETE", name)
    assert reset.status_code == 200 and "reset successfully" in reset.json()["message"], reset.text
    assert offsets_call(client, "GET", name).json() == {"offsets": []}
    assert error_of(offsets_call(client, "GET", "nobody")) == (404, "Connector nobody not found")


def test_sink_offsets_are_its_consumer_groups(client: KafkaConnect, bootstrap: str, tmp_path: Path) -> None:
    name, topic = unique("tax-sink"), f"share.{unique('tax')}.telecom.subscriber"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        try:
            for i in range(6):
                producer.send(topic, value=b"x", partition=i % 2).get(timeout=30)
        finally:
            producer.close()
        client.create_connector({"name": name, "config": {
            "connector.class": "SqlSinkConnector", "topic": topic, "tasks.max": "2",
            "database_url": f"sqlite:///{tmp_path / 'tax.db'}"}})
        assert client.get_connector(name)["type"] == "sink"
        # As the sink's tasks commit what they wrote.
        admin.alter_group_offsets(sink_group(name), {TopicPartition(topic, 0): OffsetAndMetadata(3, "", None),
                                                     TopicPartition(topic, 1): OffsetAndMetadata(2, "", None)})

        assert offsets_call(client, "GET", name).json() == {"offsets": [
            {"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 3}},
            {"partition": {"kafka_topic": topic, "kafka_partition": 1}, "offset": {"kafka_offset": 2}}]}
        patch = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 1}, "offset": {"kafka_offset": 0}}]}
        assert offsets_call(client, "PATCH", name, patch).status_code == 400
        client.stop_connector(name)
        altered = offsets_call(client, "PATCH", name, patch)
        assert altered.json() == {"message": "The offsets for this connector have been altered successfully"}
        assert offsets_call(client, "GET", name).json()["offsets"][1]["offset"] == {"kafka_offset": 0}
        bad = {"offsets": [{"partition": {"kafka_topic": topic}, "offset": {"kafka_offset": 0}}]}
        assert offsets_call(client, "PATCH", name, bad).status_code == 400
        assert error_of(offsets_call(client, "PATCH", name, {"offsets": []})) == (
            400, "Partitions / offsets need to be provided for an alter offsets request")
        reset = offsets_call(client, "DELETE", name)
        assert reset.json() == {"message": "The offsets for this connector have been reset successfully"}
        assert offsets_call(client, "GET", name).json() == {"offsets": []}
        assert admin.list_group_offsets(sink_group(name))[sink_group(name)] == {}
    finally:
        admin.close()


def test_an_anonymous_or_consumer_caller_is_refused(services: ControlServices, cast: Cast, tmp_path: Path) -> None:
    anonymous = KafkaConnect(url=services.api.url)
    assert refused(anonymous.list_connectors).status_code == 401
    name = unique("refused")
    for role in (Role.CONSUMER, Role.STEWARD, Role.OWNER, Role.PORTAL):
        caller = KafkaConnect(url=services.api.url, auth=auth(cast, role))
        status, message = error_of(refused(caller.create_connector, {"name": name, "config": sql_source(tmp_path)}))
        assert status == 403 and "needs the role admin, ops" in message, (role, message)
    assert services.connect.store.config(name) is None
    assert isinstance(KafkaConnect(url=services.api.url, auth=auth(cast, Role.ADMIN)).list_connectors(), list)
    health = requests.get(f"{services.api.url}/health", timeout=30).json()
    assert health["connect_cluster"]["up"] is True, health


# --- gsp connect ... over the API ------------------------------------------------------------------------------------


def test_the_cli_manages_connectors_over_the_api(services: ControlServices, cast: Cast, tmp_path: Path) -> None:
    env = {"GSP_API_URL": services.api.url, "GSP_HOME": str(tmp_path / "elsewhere"), "GSP_TOKEN": cast.token(Role.OPS)}

    def ok(*args: str) -> str:
        result = gsp("connect", *args, env=env)
        assert result.returncode == 0 and result.stderr == "", (args, result.stderr)
        return result.stdout

    name = unique("subscribers")
    config = sql_source(tmp_path)
    (tmp_path / "c.json").write_text(json.dumps({"name": name, "config": config}))
    assert ok("create", str(tmp_path / "c.json")) == f"connector {name} created: source, 2 task(s)\n"
    assert f"{name}\tsource\tUNASSIGNED\t0/0\t-" in ok("list").splitlines()
    assert json.loads(ok("config", name)) == {**config, "name": name}
    (tmp_path / "one.json").write_text(json.dumps({**config, "tables": "subscriber"}))
    assert ok("config", name, str(tmp_path / "one.json")) == f"connector {name} configured: source, 1 task(s)\n"

    services.connect.store.put_status(name, 0, "FAILED", worker_id="w1:8083", trace="RuntimeError: gone\n  at x")
    status = ok("status", name)
    assert status.splitlines()[:3] == ["what\tstate\tworker", "connector\tUNASSIGNED\t-", "task 0\tFAILED\tw1:8083"]
    assert "task 0 failed:\nRuntimeError: gone\n  at x" in status
    ok("restart", name, "--include-tasks", "--only-failed")
    assert services.connect.store.restarts(name)[-1]["only_failed"] is True
    for action, state in (("pause", "PAUSED"), ("resume", "STARTED"), ("stop", "STOPPED")):
        assert ok(action, name) == f"connector {name}: {action} requested\n"
        assert services.connect.store.target_state(name) == state

    (tmp_path / "o.json").write_text(json.dumps({"offsets": [{"partition": {"table": "subscriber"},
                                                              "offset": {"ts": 5, "id": 5}}]}))
    assert "altered successfully" in ok("offsets", name, "--set", str(tmp_path / "o.json"))
    assert json.loads(ok("offsets", name)) == {"offsets": [{"partition": {"table": "subscriber"},
                                                            "offset": {"ts": 5, "id": 5}}]}
    assert "reset successfully" in ok("offsets", name, "--reset")
    assert json.loads(ok("offsets", name)) == {"offsets": []}

    assert "vn.gsp.connect.SqlSourceConnector\tsource\t" in ok("plugins")
    (tmp_path / "bad.json").write_text(json.dumps({**config, "tasks.max": "many", "tabel": "x"}))
    invalid = gsp("connect", "validate", "SqlSourceConnector", str(tmp_path / "bad.json"), env=env)
    assert invalid.returncode == 1 and invalid.stdout.splitlines()[0] == "key\terror", invalid
    assert {line.split("\t")[0] for line in invalid.stdout.splitlines()[1:]} == {"tasks.max", "tabel"}
    assert ok("validate", "sql-source", str(tmp_path / "one.json")) == \
        "the config is valid for vn.gsp.connect.SqlSourceConnector\n"

    assert ok("delete", name) == f"connector {name} deleted\n"
    gone = gsp("connect", "status", name, env=env)
    assert gone.returncode == 2 and gone.stderr == f"gsp: error: Connector {name} not found\n", gone.stderr
    consumer = gsp("connect", "list", env={**env, "GSP_TOKEN": cast.token(Role.CONSUMER)})
    assert consumer.returncode == 2 and "needs the role admin, ops" in consumer.stderr, consumer.stderr
    missing = gsp("connect", "create", str(tmp_path / "nothing.json"), env=env)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1 and "cannot read" in missing.stderr


# --- a worker runs what the API created ------------------------------------------------------------------------------


def test_a_worker_runs_a_source_connector_created_through_the_api(client: KafkaConnect, services: ControlServices,
                                                                  cast: Cast, bootstrap: str, tmp_path: Path) -> None:
    db = SourceDatabase(tmp_path / "telecom.db")
    for table in ("sub_a", "sub_b"):
        db.create(table, 30)
    raw = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    topic = topics.raw("telecom.subscriber")
    tps = [TopicPartition(topic, p) for p in sorted(raw.partitions_for_topic(topic) or [])]
    raw.assign(tps)
    for tp, end in raw.end_offsets(tps).items():  # the session's raw topic: only what arrives from here on
        raw.seek(tp, end)
    home = tmp_path / "worker-home"
    home.mkdir()
    (home / "runtime.json").write_text(json.dumps({"api_url": services.api.url}))
    worker_id = unique("worker")
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "gsp", "connect", "worker", "--worker-id", worker_id],
                                  env={**os.environ, "GSP_HOME": str(home), "GSP_KAFKA_BOOTSTRAP": bootstrap,
                                       "GSP_TOKEN": cast.token(Role.OPS), "GSP_SESSION_TIMEOUT_S": "4"},
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        name = unique("subscribers")
        client.create_connector({"name": name, "config": {
            "connector.class": "SqlSourceConnector", "tasks.max": "2", "dataset": "telecom.subscriber",
            "database_url": db.url, "tables": "sub_a,sub_b", "key_column": "msisdn", "poll_interval_s": "0.2"}})

        arrived = 0
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while arrived < 60 or status.get("connector", {}).get("state") != "RUNNING" or \
                [(t["state"], t["worker_id"]) for t in status.get("tasks", [])] != [("RUNNING", worker_id)] * 2:
            assert worker.poll() is None, f"the worker exited with {worker.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{arrived} rows of 60, status {status}\n{log.read_text()[-3000:]}"
            arrived += sum(len(batch) for batch in raw.poll(timeout_ms=300).values())
            status = client.get_connector_status(name)

        assert status["connector"]["worker_id"] == worker_id and status["type"] == "source"
        assert arrived == 60
        stored = requests.get(f"{client.url}/connectors/{name}/offsets", auth=client.auth, timeout=30).json()
        assert sorted(o["partition"]["table"] for o in stored["offsets"]) == ["sub_a", "sub_b"], stored
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        raw.close()
