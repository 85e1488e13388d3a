"""Connector plugins: declared settings (every bad field at once, Kafka Connect's validate answer), how the work
splits into tasks, and tasks started from a plugin that resume wherever they run."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from connectors.config_def import ConfigInvalid
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.plugins import PLUGINS, CannotStart, SinkTask, SourceTask, TaskContext, plugin_for, position_key, sink_group
from gsp.errors import UserError
from gsp.governance.topology import ensure_topics
from schemas import topics
from schemas.codec import Codec, contract
from schemas.registry import RegistryClient
from schemas.settings import Settings
from tests.connectors.sharing import SHARE_SCHEMA, publish
from tests.gsp.cli.test_cli import gsp
from tests.gsp.cli.test_errors import one_line_error
from tests.topics import read_topic

SUBSCRIBER = "telecom.subscriber"


@pytest.mark.parametrize("plugin, config, says, fields", [
    ("sql-source", {"dataset": SUBSCRIBER, "tables": "a,b", "batch_size": 0, "poll_interval_s": "soon", "tabel": "x"},
     ["unknown keys tabel; missing keys database_url, key_column; ", "batch_size must be a positive number",
      "poll_interval_s must be a number, not 'soon'"],
     {"tabel", "database_url", "key_column", "batch_size", "poll_interval_s"}),
    ("outbox-source", {"database_url": "sqlite://", "delete_types": 5, "tasks.max": 0, "aggregate": "x"},
     ["unknown keys aggregate; missing keys dataset; ", "delete_types must be a list of strings, not 5",
      "tasks.max must be a positive number"],
     {"aggregate", "dataset", "delete_types", "tasks.max"}),
    ("file-source", {"dataset": "telecom.subscribers", "format": "xml", "columns": ["msisdn"], "table": "t"},
     ["unknown keys table; missing keys directory; ", "unknown dataset 'telecom.subscribers'",
      "unknown file format 'xml'; known: csv, jsonl", "columns must be a JSON object of strings, not ['msisdn']"],
     {"table", "directory", "dataset", "format", "columns"}),
    ("sql-sink", {"topic": "raw.telecom.subscriber.v1", "max_records": "many", "tabel": "x"},
     ["unknown keys tabel; missing keys database_url; ", "max_records must be a whole number, not 'many'",
      "topic 'raw.telecom.subscriber.v1' is not a subscription's share.<agency>.<dataset> topic"],
     {"tabel", "database_url", "max_records", "topic"}),
    ("webhook-sink", {"topic": "share.a.b.v1", "allow_http": "yes", "rate_per_s": -1, "table": "x",
                      "connector.class": "sql-sink"},
     ["unknown keys table; missing keys secret_file, url; ", "allow_http must be true or false, not 'yes'",
      "rate_per_s must be a positive number", "connector.class 'sql-sink' is not webhook-sink"],
     {"table", "secret_file", "url", "allow_http", "rate_per_s", "connector.class"}),
])
def test_a_config_with_several_mistakes_names_every_bad_field_in_one_line(
        plugin: str, config: dict[str, Any], says: list[str], fields: set[str]) -> None:
    with pytest.raises(ConfigInvalid) as raised:
        PLUGINS[plugin].parse({"connector.class": plugin, **config})
    line = str(raised.value)
    assert "\n" not in line and all(part in line for part in says), line
    assert set(raised.value.errors) == fields
    assert isinstance(raised.value, UserError)  # shown as one line, no traceback


def test_values_sent_as_text_are_parsed_as_kafka_connect_parses_them() -> None:
    parsed = PLUGINS["sql-source"].parse({
        "connector.class": "SqlSourceConnector", "tasks.max": "3", "dataset": SUBSCRIBER, "database_url": "sqlite://",
        "tables": "a, b", "key_column": "msisdn", "columns": '{"msisdn": "so_thue_bao"}', "poll_interval_s": "0.5"})
    assert (parsed["tasks.max"], parsed["tables"], parsed["columns"]) == (3, ["a", "b"], {"msisdn": "so_thue_bao"})
    assert (parsed["poll_interval_s"], parsed["batch_size"], parsed["timestamp_column"], parsed["table"]) == \
        (0.5, 2000, "updated_at", None)
    webhook = PLUGINS["webhook-sink"].parse({"connector.class": "webhook-sink", "topic": "share.a.b.v1",
                                            "url": "https://x.example/hook", "secret_file": "s", "allow_http": "TRUE"})
    assert webhook["allow_http"] is True and webhook["max_attempts"] == 8


def test_validation_body_has_the_shape_kafka_connect_clients_read() -> None:
    plugin = PLUGINS["sql-source"]
    body = plugin.validation_body({"connector.class": plugin.class_name, "name": "subs", "dataset": SUBSCRIBER,
                                   "database_url": "postgresql://gsp:s3cret@db/telecom", "table": "subscriber",
                                   "batch_size": -1, "tabel": "x"})
    assert set(body) == {"name", "error_count", "groups", "configs"}
    assert body["name"] == "vn.gsp.connect.SqlSourceConnector" and body["groups"][0] == "Common"
    assert body["error_count"] == 3  # key_column missing, batch_size refused, tabel unknown
    by_name = {c["value"]["name"]: c for c in body["configs"]}
    for config in body["configs"]:
        assert set(config["definition"]) == {"name", "type", "required", "default_value", "importance",
                                             "documentation", "group", "order", "width", "display_name", "dependents"}
        assert set(config["value"]) == {"name", "value", "recommended_values", "errors", "visible"}
        assert config["definition"]["group"] in body["groups"]
    assert sum(len(c["value"]["errors"]) for c in body["configs"]) == body["error_count"]
    assert by_name["database_url"]["value"]["value"] == "[hidden]" and by_name["database_url"]["definition"] == {
        **by_name["database_url"]["definition"], "type": "PASSWORD", "required": True, "default_value": None}
    assert by_name["key_column"]["value"]["errors"] == [
        'Missing required configuration "key_column" which has no default value.']
    assert by_name["batch_size"]["value"] == {"name": "batch_size", "value": "-1", "recommended_values": [],
                                             "errors": ["batch_size must be a positive number"], "visible": True}
    assert by_name["tabel"]["value"]["errors"] == ["tabel is not a setting of sql-source"]
    assert by_name["timestamp_column"]["definition"]["default_value"] == "updated_at"
    assert by_name["timestamp_column"]["value"]["value"] == "updated_at"  # not set: its default
    assert by_name["tasks.max"]["definition"]["type"] == "INT" and by_name["tasks.max"]["value"]["value"] == "1"
    fixed = plugin.validation_body({"connector.class": "sql-source", "dataset": SUBSCRIBER, "database_url": "sqlite://",
                                    "table": "subscriber", "key_column": "msisdn"})
    assert fixed["error_count"] == 0


def test_a_sql_source_groups_its_tables_round_robin_into_at_most_tasks_max_tasks() -> None:
    plugin = PLUGINS["sql-source"]
    config = {"connector.class": "sql-source", "dataset": SUBSCRIBER, "database_url": "sqlite://",
              "tables": ["viettel", "mobifone", "vinaphone"], "key_column": "msisdn", "tasks.max": 3}
    three = plugin.task_configs(config, 3)
    assert [(t["tables"], t["task.id"]) for t in three] == [(["viettel"], 0), (["mobifone"], 1), (["vinaphone"], 2)]
    assert [plugin.source_partition(t) for t in three] == [{"table": "viettel"}, {"table": "mobifone"},
                                                          {"table": "vinaphone"}]
    two = plugin.task_configs(config, 2)
    assert [t["tables"] for t in two] == [["viettel", "vinaphone"], ["mobifone"]]
    assert plugin.source_partitions(two[0]) == [{"table": "viettel"}, {"table": "vinaphone"}]
    assert [t["tables"] for t in plugin.task_configs(config, 10)] == [["viettel"], ["mobifone"], ["vinaphone"]]
    assert plugin.partitions(config) == [{"table": "viettel"}, {"table": "mobifone"}, {"table": "vinaphone"}]
    single = plugin.task_configs({**config, "tables": None, "table": "subscriber"}, 4)
    assert [plugin.source_partition(t) for t in single] == [{"table": "subscriber"}]
    assert position_key("subs", {"table": "viettel"}) == 'subs|{"table": "viettel"}'


def test_other_plugins_split_their_work_as_declared() -> None:
    files = PLUGINS["file-source"].task_configs({"connector.class": "file-source", "dataset": SUBSCRIBER,
                                                 "directories": ["/srv/a", "/srv/b"]}, 4)
    assert [PLUGINS["file-source"].source_partition(t) for t in files] == [{"directory": "/srv/a"},
                                                                          {"directory": "/srv/b"}]
    outbox = PLUGINS["outbox-source"].task_configs({"connector.class": "outbox-source", "dataset": SUBSCRIBER,
                                                    "database_url": "sqlite://"}, 4)
    assert len(outbox) == 1 and PLUGINS["outbox-source"].source_partition(outbox[0]) == {"table": "outbox"}
    sink = {"connector.class": "sql-sink", "topic": "share.a.b.v1", "database_url": "sqlite://", "tasks.max": 3}
    assert [t["task.id"] for t in PLUGINS["sql-sink"].task_configs(sink, 3)] == [0, 1, 2]
    assert len(PLUGINS["sql-sink"].task_configs(sink, 3, topic_partitions=2)) == 2
    assert PLUGINS["sql-sink"].partitions(sink) == []
    with pytest.raises(ConfigInvalid, match="missing keys database_url"):
        PLUGINS["sql-sink"].task_configs({"connector.class": "sql-sink", "topic": "share.a.b.v1"}, 1)


def test_plugin_for_takes_the_class_its_simple_name_or_alias() -> None:
    for named in ("vn.gsp.connect.WebhookSinkConnector", "WebhookSinkConnector", "WebhookSink", "webhook-sink"):
        assert plugin_for({"connector.class": named}) is PLUGINS["webhook-sink"]
    with pytest.raises(UserError, match=r"^unknown connector.class 'JdbcSourceConnector'; known: vn\.gsp\.connect\."):
        plugin_for({"connector.class": "JdbcSourceConnector"})
    with pytest.raises(UserError, match=r"^connector\.class is not set"):
        plugin_for({"name": "x"})
    assert [p.info()["type"] for p in PLUGINS.values()] == ["source", "source", "source", "sink", "sink"]


def carrier_tables(path: Path, rows: dict[str, list[str]]) -> sa.Engine:
    """One subscriber table per carrier, each with the given msisdns (updated_at 100, 101, ...)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata = sa.MetaData()
    tables = {name: sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True),
                             sa.Column("updated_at", sa.BigInteger),
                             *[sa.Column(c, sa.Text) for c in ("msisdn", "carrier", "subscriber_name", "id_number",
                                                                "birth_date", "address")])
              for name in rows}
    metadata.create_all(engine)
    with engine.begin() as conn:
        for name, msisdns in rows.items():
            add_rows(conn, tables[name], msisdns)
    return engine


def add_rows(conn: sa.Connection, table: sa.Table, msisdns: list[str]) -> None:
    if not msisdns:
        return
    start = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    conn.execute(sa.insert(table), [{"updated_at": 100 + start + i, "msisdn": m, "carrier": table.name,
                                     "subscriber_name": "Lê Thị Thu", "id_number": "001185000001",
                                     "birth_date": "1985-01-02", "address": None} for i, m in enumerate(msisdns)])


def run_until_drained(task: SourceTask) -> None:
    deadline = time.monotonic() + 60
    while not task.drained:
        assert time.monotonic() < deadline, task.health()
        handled, wait_s = task.step()
        if not handled:
            time.sleep(min(wait_s, 0.1))


def test_a_source_task_resumes_from_its_partitions_stored_positions_wherever_it_starts(
        bootstrap: str, tmp_path: Path, sqlite_engine: sa.Engine,
        serve_registry: Callable[[sa.Engine], AbstractContextManager[str]]) -> None:
    suffix = uuid.uuid4().hex[:8]
    connector, system = f"carriers-{suffix}", f"telecom.plugins-{suffix}"
    source_db = carrier_tables(tmp_path / "carriers.db", {"viettel": ["0900000001", "0900000002"],
                                                          "mobifone": ["0900000003"]})
    raw = topics.raw(SUBSCRIBER)
    ensure_topics(bootstrap, {raw: (1, {}), topics.quarantine(SUBSCRIBER): (1, {}),
                              topics.CONNECT_OFFSETS: (1, {"cleanup.policy": "compact"})})
    plugin = PLUGINS["sql-source"]
    config = {"connector.class": "sql-source", "name": connector, "dataset": SUBSCRIBER, "tables": "viettel,mobifone",
              "database_url": f"sqlite:///{tmp_path / 'carriers.db'}", "key_column": "msisdn",
              "source_system": system, "poll_interval_s": 0.05, "tasks.max": 2}
    viettel, mobifone = plugin.task_configs(config, 2)
    metrics_registry = CollectorRegistry()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    try:
        with serve_registry(sqlite_engine) as url:
            registry = RegistryClient(url)
            registry.register(topics.subject(raw), contract("vn.gsp.telecom.Subscriber"))
            registry.register(topics.subject(topics.quarantine(SUBSCRIBER)), contract("vn.gsp.quality.QualityIssue"))
            ctx = TaskContext(settings=Settings(home=tmp_path), bootstrap=bootstrap, registry=registry,
                              codec=Codec(resolve=registry.schema_by_id), producer=producer,
                              metrics=ConnectorMetrics.create(metrics_registry))

            def run(task_config: dict[str, Any]) -> int:
                task = plugin.start_task(connector, task_config["task.id"], task_config, ctx)
                try:
                    run_until_drained(task)
                    assert task.health()["status"] == "ok"
                    return task.published
                finally:
                    task.close()

            assert (run(viettel), run(mobifone)) == (2, 1)
            key = position_key(connector, {"table": "viettel"})
            store = OffsetStore(bootstrap, producer)
            assert store.load(key) == {"ts": 101, "inc": 2}
            assert store.load(connector) is None  # nothing under the bare connector name
            assert metrics_registry.get_sample_value(  # both tables' runners count under the connector
                "gsp_connector_records_total", {"connector": connector, "outcome": "published"}) == 3.0

            with source_db.begin() as conn:
                add_rows(conn, sa.Table("viettel", sa.MetaData(), autoload_with=conn), ["0900000004"])
            # Another "worker" starts the same task configs: only the new row is published.
            assert (run(viettel), run(mobifone)) == (1, 0)
            codec = Codec(resolve=registry.schema_by_id)
            mine = [codec.decode(m.value)[1] for m in read_topic(bootstrap, raw)]
            msisdns = sorted(e["msisdn"] for e in mine if e["header"]["source_system"] == system)
    finally:
        producer.close()
        source_db.dispose()
    assert msisdns == ["0900000001", "0900000002", "0900000003", "0900000004"]  # each once


def test_a_task_whose_table_does_not_exist_cannot_start_in_one_line(tmp_path: Path) -> None:
    carrier_tables(tmp_path / "carriers.db", {"viettel": []}).dispose()
    plugin = PLUGINS["sql-source"]
    config = {"connector.class": "sql-source", "dataset": SUBSCRIBER, "tables": ["viettel", "mobifon"],
              "database_url": f"sqlite:///{tmp_path / 'carriers.db'}", "key_column": "msisdn"}
    with pytest.raises(CannotStart, match=r"^source table 'mobifon' does not exist in the source database$"):
        plugin.open_sources("c", plugin.parse(config), metrics=ConnectorMetrics.create(CollectorRegistry()))


def test_sink_tasks_of_a_connector_share_its_consumer_group(
        bootstrap: str, tmp_path: Path, sqlite_engine: sa.Engine,
        serve_registry: Callable[[sa.Engine], AbstractContextManager[str]]) -> None:
    suffix = uuid.uuid4().hex[:8]
    topic, connector = f"share.t{suffix}.subscriber.v1", f"agency-{suffix}"
    ensure_topics(bootstrap, {topic: (2, {})})
    plugin = PLUGINS["sql-sink"]
    config = {"connector.class": "sql-sink", "name": connector, "topic": topic, "tasks.max": 2,
              "database_url": f"sqlite:///{tmp_path / 'agency.db'}", "table": "subscriber", "max_records": 20}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    group = KafkaConsumer(bootstrap_servers=bootstrap, group_id=sink_group(connector), enable_auto_commit=False)
    tasks: list[SinkTask] = []
    try:
        with serve_registry(sqlite_engine) as url:
            registry = RegistryClient(url)
            schema_id = registry.register(topics.subject(topic), SHARE_SCHEMA)
            publish(bootstrap, topic, range(60), schema_id=schema_id)
            ctx = TaskContext(settings=Settings(home=tmp_path), bootstrap=bootstrap, registry=registry,
                              codec=Codec(resolve=registry.schema_by_id), producer=producer,
                              metrics=ConnectorMetrics.create(CollectorRegistry()))
            tasks = [plugin.start_task(connector, c["task.id"], c, ctx) for c in plugin.task_configs(config, 2)]
            deadline = time.monotonic() + 60
            while sum(t.runner.written for t in tasks) < 60:
                assert time.monotonic() < deadline, [t.health() for t in tasks]
                for task in tasks:
                    task.step()
            committed = [group.committed(TopicPartition(topic, p)) for p in (0, 1)]
    finally:
        for task in tasks:
            task.close()
        group.close()
        producer.close()
    assert sink_group(connector) == f"gsp-connect-{connector}"
    assert sum(offset or 0 for offset in committed) == 60  # committed under the connector's group
    assert [t.sink.name for t in tasks] == [connector, connector]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'agency.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM subscriber")).scalar_one() == 60
    engine.dispose()


def test_connect_run_takes_a_plugin_config_and_stores_each_tables_position_under_its_key(
        bootstrap: str, tmp_path: Path, sqlite_engine: sa.Engine,
        serve_registry: Callable[[sa.Engine], AbstractContextManager[str]]) -> None:
    suffix = uuid.uuid4().hex[:8]
    connector, system = f"standalone-{suffix}", f"telecom.standalone-{suffix}"
    carrier_tables(tmp_path / "carriers.db", {"viettel": ["0910000001"], "mobifone": ["0910000002"]}).dispose()
    raw = topics.raw(SUBSCRIBER)
    ensure_topics(bootstrap, {raw: (1, {}), topics.quarantine(SUBSCRIBER): (1, {}),
                              topics.CONNECT_OFFSETS: (1, {"cleanup.policy": "compact"})})
    config = tmp_path / "carriers.json"
    config.write_text(json.dumps({"connector.class": "vn.gsp.connect.SqlSourceConnector", "name": connector,
                                  "dataset": SUBSCRIBER, "tables": ["viettel", "mobifone"], "key_column": "msisdn",
                                  "database_url": f"sqlite:///{tmp_path / 'carriers.db'}", "source_system": system}))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    try:
        with serve_registry(sqlite_engine) as url:
            registry = RegistryClient(url)
            registry.register(topics.subject(raw), contract("vn.gsp.telecom.Subscriber"))
            registry.register(topics.subject(topics.quarantine(SUBSCRIBER)), contract("vn.gsp.quality.QualityIssue"))
            env = {"GSP_HOME": str(tmp_path), "GSP_KAFKA_BOOTSTRAP": bootstrap, "GSP_SCHEMA_REGISTRY_URL": url}
            done = gsp("connect", "run", str(config), "--once", env=env)
            assert done.returncode == 0, done.stderr
            assert f"{connector}: published 2, quarantined 0; the table is drained" in done.stderr
            again = gsp("connect", "run", str(config), "--once", env=env)
            assert f"{connector}: published 0, quarantined 0" in again.stderr
        store = OffsetStore(bootstrap, producer)
        positions = [store.load(position_key(connector, {"table": t})) for t in ("viettel", "mobifone")]
    finally:
        producer.close()
    assert positions == [{"ts": 100, "inc": 1}, {"ts": 100, "inc": 1}]


def test_a_run_command_refuses_a_connector_of_the_other_kind_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "sink.json"
    config.write_text(json.dumps({"connector.class": "sql-source", "topic": "share.a.b.v1"}))
    line = one_line_error(gsp("sink", "run", str(config), env={"GSP_HOME": str(tmp_path)}))
    assert line == f"gsp: error: {config}: vn.gsp.connect.SqlSourceConnector is a source connector, not a sink"
    config.write_text(json.dumps({"type": "sql", "name": "c", "dataset": SUBSCRIBER, "tables": 3, "tabel": "x"}))
    line = one_line_error(gsp("connect", "run", str(config), "--once", env={"GSP_HOME": str(tmp_path)}))
    assert line.startswith(f"gsp: error: {config}: unknown keys tabel; missing keys database_url, key_column; ")
    assert "tables must be a list of strings, not 3" in line
