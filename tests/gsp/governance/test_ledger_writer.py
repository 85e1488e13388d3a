"""The control plane's ledger writer on the real broker: the workers' facts chained into the ledger once each,
garbage counted and skipped, a failing database shown in its health."""

import json
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from gsp.governance.ledger import Entry, Ledger
from gsp.governance.ledger_writer import LedgerWriter, witnessed_heads
from gsp.governance.topology import ensure_topics
from schemas.codec import Codec, contract

FACT_ID = 990_001


def fact(n: int) -> dict[str, object]:
    return {"kind": "delivery", "at": 1_767_225_600_000 + n, "actor": "worker:test", "channel": "topic",
            "agency": "bo-cong-an-c06", "subscription_id": "bo-cong-an-c06:telecom.subscriber", "version": 1,
            "dataset": "telecom.subscriber", "fields": ["carrier"],
            "records": [{"event_id": f"e{n}", "agency_event_id": f"k1.{n}", "personal_id": f"00108501234{n}",
                         "source_system": "telecom.viettel", "source_version": "1",
                         "positions": {"share.bo-cong-an-c06.subscriber.v1": f"0:{n}"}, "verdict": None}]}


def test_facts_are_entered_once_and_garbage_is_skipped(bootstrap: str, tmp_path: Path) -> None:
    topic, group = f"test.ledger.{uuid.uuid4().hex[:8]}", f"test-ledger-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: (1, {})})
    codec = Codec()
    codec.add(FACT_ID, contract("vn.gsp.control.LedgerFact"))
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in (codec.encode(FACT_ID, fact(1)), b"garbage", None, codec.encode(FACT_ID, fact(2))):
        producer.send(topic, key=b"bo-cong-an-c06:telecom.subscriber", value=value)
    producer.flush()
    producer.close()
    ledger = Ledger(sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), b"k" * 32)
    terms = {"purpose": "Đối soát", "legal_basis": "Luật Căn cước 2023", "agency_id": "VN/GOV/bo-cong-an/c06"}
    writer = LedgerWriter(bootstrap, ledger, codec, lambda sid, version: terms, topic=topic, group=group)
    try:
        for _ in range(100):
            writer.run_once(timeout_ms=200)
            if ledger.tip("data-0")[2] == 3:
                break
        assert ledger.tip("data-0")[:1] == (2,) and ledger.tip("data-0")[2] == 3
        assert ledger.delivered("bo-cong-an-c06:telecom.subscriber") == 2
        [entry] = [e for e in ledger.entries(kind="delivery") if e["seq"] == 1]
        assert entry["body"]["purpose"] == "Đối soát" and entry["source"] == "0:0"
        assert "001085012341" not in str(entry) and entry["records"][0]["person_ref"] == ledger.person_ref(
            "001085012341")
        # Read again (a restart before the commit, a rebalance): nothing is entered twice.
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        messages = []
        for _ in range(20):
            messages += consumer.poll(timeout_ms=200).get(tp, [])
            if len(messages) >= 4:
                break
        consumer.close()
        writer._enter(tp, messages)
        assert ledger.tip("data-0")[0] == 2 and ledger.verify().ok
        assert writer.health()["up"] is None  # run() has not made a pass yet
    finally:
        writer.close()


def test_a_failing_database_shows_in_the_writers_health(bootstrap: str, tmp_path: Path) -> None:
    topic, group = f"test.ledger.{uuid.uuid4().hex[:8]}", f"test-ledger-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: (1, {})})
    codec = Codec()
    codec.add(FACT_ID, contract("vn.gsp.control.LedgerFact"))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger(engine, b"k" * 32)
    writer = LedgerWriter(bootstrap, ledger, codec, lambda sid, version: {}, topic=topic, group=group,
                          head_interval_s=0.0)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while writer.health()["up"] is not True and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.health()["up"] is True
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE ledger_heads")  # the next head cannot be stored
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topic, key=b"s", value=codec.encode(FACT_ID, fact(1))).get(timeout=30)
        producer.close()
        while writer.health()["up"] is not False and time.monotonic() < deadline:
            time.sleep(0.05)
        health = writer.health()
        assert health["up"] is False and health["failures"] >= 1 and "ledger_heads" in health["error"]
    finally:
        stop.set()
        thread.join(timeout=10)
        writer.close()


def test_heads_witnessed_outside_the_database_show_a_tail_cut_with_its_heads(bootstrap: str, tmp_path: Path) -> None:
    """Deleting the newest head needs no key, so a tail cut with it passes the database's own check; the copy of
    every head on the witness topic (as gsp serve publishes them on gsp.ledger.heads) does not let it pass."""
    topic = f"test.ledger.heads.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: (1, {})})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    ledger = Ledger(sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), b"k" * 32)
    ledger.on_heads = lambda heads: [producer.send(topic, value=json.dumps(h).encode()).get(timeout=30) for h in heads]
    ledger.append("control", [Entry(kind="credential.issue", actor="admin", body={"n": n}) for n in range(5)])
    ledger.checkpoint()
    ledger.append("control", [Entry(kind="credential.revoke", actor="admin", body={"n": n}) for n in range(3)])
    ledger.checkpoint()
    assert ledger.verify(witnessed=witnessed_heads(bootstrap, topic=topic)).ok

    with ledger.engine.begin() as conn:  # the last three entries cut, with their head, and the tip set back
        conn.exec_driver_sql("DELETE FROM ledger_entries WHERE seq > 5")
        conn.exec_driver_sql("DELETE FROM ledger_heads WHERE seq > 5")
        conn.exec_driver_sql("UPDATE ledger_chains SET seq = 5, hash = (SELECT hash FROM ledger_entries WHERE seq = 5)")
    assert ledger.verify().ok  # the database alone cannot tell
    report = ledger.verify(witnessed=witnessed_heads(bootstrap, topic=topic))
    assert [(f.chain, f.seq) for f in report.findings] == [("control", 8)] and report.witnessed == 2

    forged = {"chain": "control", "seq": 5, "hash": "0" * 64, "at": 1, "mac": "0" * 64}
    producer.send(topic, value=json.dumps(forged).encode()).get(timeout=30)
    producer.send(topic, value=b"not json").get(timeout=30)
    problems = {f.problem for f in ledger.verify(witnessed=witnessed_heads(bootstrap, topic=topic)).findings}
    assert "the witness holds a head not made with the ledger key" in problems
    assert any(p.startswith("an unreadable witnessed head") for p in problems)
    producer.close()
