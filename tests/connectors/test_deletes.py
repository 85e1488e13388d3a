import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from connectors.outbox_source import OutboxSource, OutboxSourceConfig
from connectors.runner import SourceRunner
from connectors.sql_sink import SqlSink
from connectors.sql_source import SqlSource, SqlSourceConfig
from schemas import envelope
from schemas.codec import contract
from schemas.datasets import dataset
from streams.share import Subscription, project
from streams.share import envelope as agency_envelope
from streams.stages import CleanStage, Where
from tests.connectors.subscriber_runner import ISSUE_ID, SUBSCRIBER_ID, codec, subscriber_runner
from tests.topics import read_topic


def subscriber(n: int, **changes: Any) -> dict[str, Any]:
    return {"msisdn": f"09{n:08d}", "carrier": "Viettel", "subscriber_name": "Lê Thị Thu",
            "id_number": f"0011850{n:05d}", "birth_date": "1985-01-02", "address": None, "updated_at": 100 + n,
            **changes}


def runner(bootstrap: str, source: Any, suffix: str) -> tuple[SourceRunner, KafkaProducer]:
    return subscriber_runner(bootstrap, source, f"d{suffix}", source_system="telecom.test")


def decoded(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [codec().decode(m.value)[1] for m in read_topic(bootstrap, topic)]


def test_soft_deleted_rows_arrive_with_header_deleted_and_their_last_fields(bootstrap: str, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    metadata = sa.MetaData()
    table = sa.Table("subscriber", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     *[sa.Column(c, sa.BigInteger if c == "updated_at" else sa.Text) for c in subscriber(0)],
                     sa.Column("deleted_at", sa.BigInteger), sa.Column("is_deleted", sa.Boolean))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [subscriber(1, deleted_at=None), subscriber(2, deleted_at=150)])
    suffix = uuid.uuid4().hex[:8]
    run, producer = runner(bootstrap, SqlSource(engine, SqlSourceConfig(
        name=f"soft-{suffix}", table="subscriber", key_column="msisdn", soft_delete_column="deleted_at")), suffix)
    try:
        assert run.run_once() == 2
        with engine.begin() as conn:  # the first one is deleted later: a new version of it
            conn.execute(sa.update(table).where(table.c.msisdn == "0900000001").values(deleted_at=300, updated_at=300))
        assert run.run_once() == 1 and run.run_once() == 0
    finally:
        producer.close()
        run.close()
        engine.dispose()
    events = [(e["msisdn"], e["header"]["deleted"], e["updated_at"]) for e in decoded(bootstrap, f"raw.d{suffix}")]
    assert events == [("0900000001", False, 101), ("0900000002", True, 102), ("0900000001", True, 300)]
    assert len({e["header"]["event_id"] for e in decoded(bootstrap, f"raw.d{suffix}")}) == 3


def outbox_db(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata = sa.MetaData()
    table = sa.Table("outbox", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("aggregatetype", sa.Text), sa.Column("aggregateid", sa.Text),
                     sa.Column("type", sa.Text), sa.Column("payload", sa.Text))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [{"aggregatetype": a, "aggregateid": k, "type": t, "payload": p}
                                        for a, k, t, p in rows])
    return engine


def test_an_outbox_publishes_its_aggregates_changes_in_order_with_deletes_marked(bootstrap: str, tmp_path: Path) -> None:
    one, two = subscriber(1), subscriber(2)
    engine = outbox_db(tmp_path, [
        ("telecom.subscriber", one["msisdn"], "created", json.dumps(one)),
        ("population.citizen", "001085000001", "created", json.dumps({"personal_id": "001085000001"})),
        ("telecom.subscriber", one["msisdn"], "updated", json.dumps({**one, "carrier": "VinaPhone"})),
        ("telecom.subscriber", two["msisdn"], "created", "{not json"),
        ("telecom.subscriber", one["msisdn"], "DELETED", json.dumps({**one, "carrier": "VinaPhone"})),
    ])
    suffix = uuid.uuid4().hex[:8]
    source = OutboxSource(engine, OutboxSourceConfig(name=f"outbox-{suffix}", aggregate_type="telecom.subscriber"))
    run, producer = runner(bootstrap, source, suffix)
    try:
        assert run.run_once() == 4 and run.run_once() == 0
    finally:
        producer.close()
        run.close()
        source.close()
    events = decoded(bootstrap, f"raw.d{suffix}")
    assert [(e["msisdn"], e["carrier"], e["header"]["deleted"]) for e in events] == [
        ("0900000001", "Viettel", False), ("0900000001", "VinaPhone", False), ("0900000001", "VinaPhone", True)]
    assert [e["header"]["source_version"] for e in events] == ["1", "3", "5"]
    [issue] = decoded(bootstrap, f"quarantine.d{suffix}")
    assert (issue["rule"], issue["key"], issue["original"]) == ("outbox.payload", "0900000002", b"{not json")
    assert issue["reason"].startswith("outbox row 4: payload is not usable")


def test_an_outbox_without_its_columns_is_a_clear_error(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE outbox (id INTEGER PRIMARY KEY, aggregateid TEXT, payload TEXT)"))
    with pytest.raises(ValueError, match="column 'aggregatetype' not found in outbox table 'outbox'"):
        OutboxSource(engine, OutboxSourceConfig(name="o", aggregate_type="telecom.subscriber"))
    with pytest.raises(ValueError, match="outbox table 'events' does not exist"):
        OutboxSource(engine, OutboxSourceConfig(name="o", aggregate_type="telecom.subscriber", table="events"))
    engine.dispose()


def test_a_delete_keeps_its_header_flag_through_the_clean_stage() -> None:
    c = codec()
    header = envelope.header("telecom.test", "0912345678", "7", 0, deleted=True)
    raw = c.encode(SUBSCRIBER_ID, {**subscriber(1, msisdn="0912345678", id_number="001085012345"), "header": header})
    stage = CleanStage.for_dataset(dataset("telecom.subscriber"), c, clean_schema_id=SUBSCRIBER_ID,
                                   issue_schema_id=ISSUE_ID)
    topic, _, value = stage.process(b"0912345678", raw, Where("raw.telecom.subscriber.v1", 0, 1))
    assert topic == "clean.telecom.subscriber.v1" and c.decode(value)[1]["header"]["deleted"] is True


SHARED = {"type": "record", "name": "S", "fields": [{"name": "header", "type": contract("vn.gsp.common.EventHeader")},
                                                   {"name": "msisdn", "type": "string"}]}


@pytest.mark.parametrize("engine_fixture", ["sqlite_engine", "postgresql_engine"])
def test_the_sql_sink_stores_deleted(engine_fixture: str, request: pytest.FixtureRequest) -> None:
    engine = request.getfixturevalue(engine_fixture)
    with engine.begin() as conn:  # a table made before sinks stored deletes
        conn.execute(sa.text("CREATE TABLE agency_rows (event_id VARCHAR(64) PRIMARY KEY, source_key TEXT NOT NULL, "
                             "source_version TEXT NOT NULL, msisdn TEXT)"))
        conn.execute(sa.text("INSERT INTO agency_rows VALUES ('old', 'k0', '0', '0900000000')"))
    sink = SqlSink(engine, name="s", table="agency_rows", schema=SHARED)
    sink.write_batch([{"header": envelope.header("t", "k1", "1", 0), "msisdn": "0900000001"},
                      {"header": envelope.header("t", "k1", "2", 0, deleted=True), "msisdn": "0900000001"},
                      {"header": {"event_id": "e3", "source_key": "k3", "source_version": "1"}, "msisdn": "0900000003"}])
    sink.flush()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source_key, source_version, deleted FROM agency_rows "
                                    "ORDER BY source_key, source_version")).all()
    assert [(k, v, bool(d)) for k, v, d in rows] == [("k0", "0", False), ("k1", "1", False), ("k1", "2", True),
                                                     ("k3", "1", False)]


def test_an_agency_receives_the_delete_flag_in_its_own_header() -> None:
    sub = Subscription(subscription_id="a:telecom.subscriber", agency="a", dataset="telecom.subscriber",
                       fields=("msisdn",), topic="share.a.subscriber.v1", schema_id=1, pseudonym_key=b"k" * 32,
                       key_version=1)
    view = {"header": envelope.header("telecom.test", "0912345678", "7", 0, deleted=True), "msisdn": "0912345678"}
    shared = project(sub, view, agency_envelope(sub, view["header"], key_field="msisdn", personal_id=None))
    assert shared["header"]["deleted"] is True and shared["header"]["event_id"] != view["header"]["event_id"]
