import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.memory import ListSource
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sql_sink import SqlSink
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.governance.topology import ensure_topics
from schemas.codec import Codec, contract
from tests.topics import read_topic

SUBSCRIBER_ID, ISSUE_ID = 11, 12
ROWS = [
    {"msisdn": "0912345678", "carrier": "Viettel", "subscriber_name": "Lê Thị Thu", "id_number": "001185000001",
     "birth_date": "1985-01-02", "address": None, "updated_at": 100},
    {"msisdn": "0912345679", "carrier": "Viettel", "subscriber_name": None, "id_number": "001185000002",
     "birth_date": "1985-01-02", "address": None, "updated_at": 100},
    {"msisdn": "0912345680", "carrier": "VinaPhone", "subscriber_name": "Trần Văn An", "id_number": "001085000003",
     "birth_date": "1985-01-02", "address": "Hà Nội", "updated_at": 200},
]


def codec() -> Codec:
    c = Codec()
    c.add(SUBSCRIBER_ID, contract("vn.gsp.telecom.Subscriber"))
    c.add(ISSUE_ID, contract("vn.gsp.quality.QualityIssue"))
    return c


def source_db(tmp_path: Any, rows: list[dict[str, Any]]) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    metadata = sa.MetaData()
    table = sa.Table("subscriber", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("updated_at", sa.BigInteger), *[sa.Column(c, sa.Text) for c in rows[0] if c != "updated_at"])
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    return engine


def sql_source(engine: sa.Engine, suffix: str) -> SqlSource:
    return SqlSource(engine, SqlSourceConfig(name=f"sub-{suffix}", table="subscriber", key_column="msisdn"))


def runner(bootstrap: str, source: Any, suffix: str) -> tuple[SourceRunner, KafkaProducer]:
    raw, quarantine, offsets_topic = f"raw.t{suffix}", f"quarantine.t{suffix}", f"offsets.t{suffix}"
    ensure_topics(bootstrap, {raw: (2, {}), quarantine: (1, {}), offsets_topic: (1, {"cleanup.policy": "compact"})})
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    target = Target(dataset="telecom.subscriber", source_system="telecom.test", topic=raw, schema_id=SUBSCRIBER_ID,
                    schema=contract("vn.gsp.telecom.Subscriber"), quarantine_topic=quarantine, quarantine_schema_id=ISSUE_ID)
    return SourceRunner(source, target, producer=producer, codec=codec(),
                        offsets=OffsetStore(bootstrap, producer, topic=offsets_topic),
                        metrics=ConnectorMetrics.create(CollectorRegistry())), producer


def test_source_publishes_quarantines_nulls_and_resumes_after_its_stored_position(bootstrap: str, tmp_path: Any) -> None:
    engine = source_db(tmp_path, ROWS)
    suffix = uuid.uuid4().hex[:8]
    first, producer = runner(bootstrap, sql_source(engine, suffix), suffix)
    first.start()
    assert first.run_once() == 3 and first.run_once() == 0
    assert (first.published, first.quarantined) == (2, 1)
    raw = read_topic(bootstrap, f"raw.t{suffix}")
    assert sorted(m.key for m in raw) == [b"0912345678", b"0912345680"]
    [held] = read_topic(bootstrap, f"quarantine.t{suffix}")
    issue = codec().decode(held.value)[1]
    assert (issue["rule"], issue["field"], issue["stage"]) == ("schema.required", "subscriber_name", "connector")
    assert json.loads(issue["original"])["msisdn"] == "0912345679"

    # A new row arrives; a restarted connector publishes only that one.
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO subscriber (updated_at, msisdn, carrier, subscriber_name, id_number, birth_date)"
                             " VALUES (300, '0912345681', 'Viettel', 'Phạm Thu Hà', '001185000004', '1985')"))
    producer.close()
    second, producer = runner(bootstrap, sql_source(engine, suffix), suffix)
    second.start()
    assert second.run_once() == 1 and second.published == 1
    producer.close()


def test_a_value_of_the_wrong_type_is_quarantined_not_fatal(bootstrap: str, tmp_path: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    values = [(r["msisdn"], {**r, "updated_at": 1}) for r in (ROWS[0], ROWS[2])]
    values[0][1]["carrier"] = 42
    run, producer = runner(bootstrap, ListSource(f"list-{suffix}", values), suffix)
    run.start()
    run.run_once()
    assert (run.published, run.quarantined) == (1, 1)
    issue = codec().decode(read_topic(bootstrap, f"quarantine.t{suffix}")[0].value)[1]
    assert issue["rule"] == "schema.invalid" and "carrier" in issue["reason"]
    producer.close()


def test_missing_source_table_is_a_clear_error(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ValueError, match="source table 'subscriber' does not exist"):
        SqlSource(engine, SqlSourceConfig(name="x", table="subscriber", key_column="msisdn"))


SHARED = {"type": "record", "name": "S", "fields": [{"name": "header", "type": "string"},
                                                   {"name": "msisdn", "type": "string"},
                                                   {"name": "match_score", "type": "double"}]}


def events(version: str) -> list[dict[str, Any]]:
    return [{"header": {"event_id": f"e{i}", "source_key": f"k{i}", "source_version": version},
             "msisdn": f"09{i:08d}", "match_score": 1.0} for i in range(5)]


@pytest.mark.parametrize("engine_fixture", ["sqlite_engine", "postgresql_engine"])
def test_sink_upserts_by_event_id_so_a_replay_changes_nothing(engine_fixture: str, request: pytest.FixtureRequest) -> None:
    engine = request.getfixturevalue(engine_fixture)
    sink = SqlSink(engine, name="s", table="share_a_subscriber_v1", schema=SHARED)
    sink.write_batch(events("1"))
    sink.flush()
    sink.write_batch(events("1"))
    sink.write_batch(events("1")[:2])
    sink.flush()
    assert sink.count() == 5
    with engine.connect() as conn:
        columns = list(conn.execute(sa.text("SELECT * FROM share_a_subscriber_v1")).keys())
    assert columns == ["event_id", "source_key", "source_version", "deleted", "msisdn", "match_score"]
