"""The stewards' quarantine on the embedded broker, SQLite and PostgreSQL.

The session broker is shared: every record here has a source key and system of
its own, and assertions look only at this test's event ids.
"""

import contextlib
import functools
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from connectors.memory import ListSource
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target, event_id
from gsp.desks.quarantine import NotOpen, QuarantineDesk, QuarantineIndexer, quarantine_items
from gsp.desks.quarantine_values import apply_fixes, release_version
from gsp.errors import NotFound, UserError
from gsp.governance.identity import Grant, Role
from gsp.http.quarantine import quarantine_routes
from schemas.codec import contract
from streams import clean as cleaning
from streams.stages import CleanStage, Where
from tests import desks
from tests.credentials import PLATFORM, Cast
from tests.desks import call, msisdn, serving

SUBSCRIBERS, CITIZENS = "telecom.subscriber", "population.citizen"
GARBAGE = b"\x00\x00\x00\x00\x02\xff\xfe garbage"


@dataclass
class Plane(desks.Plane):
    desk: QuarantineDesk
    indexer: QuarantineIndexer
    group: str

    def quarantine_in_clean(self, dataset: str, key: str, value: bytes) -> str:
        """What the clean stage does with a raw event, published; the quarantined item's event id."""
        clean = cleaning.clean_subscriber if dataset == SUBSCRIBERS else cleaning.clean_citizen
        stage = CleanStage(dataset, self.codec, clean=clean, key_of=lambda r: str(r.get("id_number")),
                           clean_schema_id=self.schema_id(f"clean.{dataset}.v1-value"),
                           issue_schema_id=self.schema_id(f"quarantine.{dataset}.v1-value"))
        topic, out_key, issue = stage.process(key.encode(), value, Where(f"raw.{dataset}.v1", 0, random.randrange(1 << 40)))
        assert topic == f"quarantine.{dataset}.v1"
        self.send(topic, out_key, issue)
        return str(self.codec.decode(issue)[1]["header"]["event_id"])

    def quarantine_in_connector(self, key: str, row: dict[str, Any]) -> str:
        """What the source connector does with a row that does not fit the contract; the item's event id."""
        target = Target(dataset=SUBSCRIBERS, source_system=self.system, topic="raw.telecom.subscriber.v1",
                        schema_id=self.schema_id("raw.telecom.subscriber.v1-value"), schema=contract("vn.gsp.telecom.Subscriber"),
                        quarantine_topic="quarantine.telecom.subscriber.v1",
                        quarantine_schema_id=self.schema_id("quarantine.telecom.subscriber.v1-value"))
        runner = SourceRunner(ListSource(f"list-{uuid.uuid4().hex[:8]}", [(key, row)]), target, producer=self.producer,
                              codec=self.codec, offsets=OffsetStore(self.bootstrap, self.producer),
                              metrics=ConnectorMetrics.create(CollectorRegistry()))
        runner.start()
        try:
            assert runner.run_once() == 1 and runner.quarantined == 1
        finally:
            runner.close()
        return event_id(self.system, key, "0")

    def raw_subscriber(self, key: str, **changes: Any) -> bytes:
        header = {"event_id": event_id(self.system, key, "1:1"), "source_system": self.system, "source_key": key,
                  "source_version": "1:1", "ingested_at": 1}
        record = {"header": header, "msisdn": key, "carrier": "Viettel", "subscriber_name": "Lê Thị Thu",
                  "id_number": "001085012345", "birth_date": "02/03/1985", "address": None, "updated_at": 1, **changes}
        return self.codec.encode(self.schema_id("raw.telecom.subscriber.v1-value"), record)

    def index(self, *event_ids: str) -> None:
        """Run the indexer until every given item is in the database."""
        deadline = time.monotonic() + 60
        while not set(event_ids) <= {i["event_id"] for i in self.desk.list(status=None, limit=1000)}:
            assert time.monotonic() < deadline, "the indexer did not pick up the quarantine events"
            self.indexer.run_once(timeout_ms=200)


def running_plane(bootstrap: str, engine: sa.Engine) -> contextlib.AbstractContextManager[Plane]:
    return desks.running_plane(Plane, QuarantineDesk, QuarantineIndexer, bootstrap, engine)


@pytest.fixture(params=["sqlite", "postgresql"])
def plane(request: pytest.FixtureRequest, bootstrap: str) -> Iterator[Plane]:
    with running_plane(bootstrap, request.getfixturevalue(f"{request.param}_engine")) as p:
        yield p


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    ends = consumer.end_offsets(tps)
    consumer.close()
    return ends


def read_since(bootstrap: str, start: dict[TopicPartition, int]) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign(list(start))
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    end = consumer.end_offsets(list(start))
    messages: list[Any] = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < end[tp] for tp in start) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            messages.extend(batch)
    consumer.close()
    return messages


def test_a_replayed_quarantine_event_changes_nothing_and_never_reopens_a_resolved_item(plane: Plane) -> None:
    key = msisdn()
    issue_bytes = plane.codec.encode(plane.schema_id("quarantine.telecom.subscriber.v1-value"), {
        "header": {"event_id": event_id(plane.system, key, "1:1"), "source_system": plane.system, "source_key": key,
                   "source_version": "1:1", "ingested_at": 1},
        "dataset": SUBSCRIBERS, "stage": "clean", "key": key, "rule": "id.prefix", "field": "id_number",
        "reason": "first reason", "original": plane.raw_subscriber(key, id_number="003085012345"),
        "source_topic": "raw.telecom.subscriber.v1", "source_partition": 0, "source_offset": 7})
    item_id = event_id(plane.system, key, "1:1")
    plane.send("quarantine.telecom.subscriber.v1", key.encode(), issue_bytes)
    plane.index(item_id)
    plane.desk.discard(item_id, reason="known test record", by="lan")

    # At-least-once: the same event again, then a variant of it, then a marker in the same partition (same key).
    _, issue = plane.codec.decode(issue_bytes)
    variant = plane.codec.encode(plane.schema_id("quarantine.telecom.subscriber.v1-value"), {**issue, "reason": "changed"})
    plane.send("quarantine.telecom.subscriber.v1", key.encode(), issue_bytes)
    plane.send("quarantine.telecom.subscriber.v1", key.encode(), variant)
    partition, offset = plane.send("quarantine.telecom.subscriber.v1", key.encode(), b"not a quality issue")
    marker = plane.quarantine_in_clean(SUBSCRIBERS, key, GARBAGE)
    plane.index(marker)

    [item] = [i for i in plane.desk.list(status=None, limit=1000) if i["event_id"] == item_id]
    assert (item["status"], item["reason"], item["resolution"], item["resolved_by"]) == \
        ("discarded", "first reason", "known test record", "lan")
    [undecodable] = [i for i in plane.desk.list(rule="quarantine.undecodable", limit=1000)
                     if (i["source_partition"], i["source_offset"]) == (partition, offset)]
    assert undecodable["dataset"] == SUBSCRIBERS and undecodable["source_topic"] == "quarantine.telecom.subscriber.v1"
    assert plane.desk.show(undecodable["event_id"])["original"] == {"format": "text", "value": "not a quality issue"}


def test_offsets_are_committed_only_after_the_database_write(plane: Plane) -> None:
    key = msisdn()
    item_id = plane.quarantine_in_clean(SUBSCRIBERS, key, plane.raw_subscriber(key, id_number="003085012345"))
    quarantine_items.drop(plane.engine)  # the database goes away under the indexer
    deadline = time.monotonic() + 60
    with pytest.raises(sa.exc.SQLAlchemyError):
        while time.monotonic() < deadline:
            plane.indexer.run_once(timeout_ms=200)
    quarantine_items.create(plane.engine)
    plane.indexer.close()
    plane.indexer = QuarantineIndexer(plane.bootstrap, plane.engine, plane.codec, group=plane.group)
    plane.index(item_id)  # the restarted indexer starts from the last commit, before the failed batch


def test_list_filters_by_dataset_rule_and_status_and_counts_open_items(plane: Plane) -> None:
    key = msisdn()
    by_clean = plane.quarantine_in_clean(SUBSCRIBERS, key, plane.raw_subscriber(key, id_number="003085012345"))
    by_connector = plane.quarantine_in_connector(msisdn(), {"msisdn": "0912345679", "carrier": "Viettel",
                                                            "subscriber_name": None, "id_number": "001185000002",
                                                            "birth_date": "1985-01-02", "address": None, "updated_at": 1})
    citizen = plane.quarantine_in_clean(CITIZENS, "079185000001", GARBAGE)
    plane.index(by_clean, by_connector, citizen)

    def ids(**filters: Any) -> set[str]:
        return {i["event_id"] for i in plane.desk.list(limit=1000, **filters)} & {by_clean, by_connector, citizen}

    assert ids(dataset=SUBSCRIBERS) == {by_clean, by_connector}
    assert ids(dataset=SUBSCRIBERS, rule="id.prefix") == {by_clean}
    assert ids(rule="schema.required") == {by_connector}
    assert ids(dataset=CITIZENS, rule="avro.decode") == {citizen}
    assert all("original" not in i for i in plane.desk.list(limit=1000))
    [listed] = [i for i in plane.desk.list(rule="id.prefix", limit=1000) if i["event_id"] == by_clean]
    assert (listed["stage"], listed["field"], listed["key"], listed["status"]) == ("clean", "id_number", key, "open")

    before = plane.desk.counts()
    plane.desk.discard(by_clean, reason="test record", by="lan")
    after = plane.desk.counts()
    assert after[SUBSCRIBERS].get("id.prefix", 0) == before[SUBSCRIBERS]["id.prefix"] - 1
    assert after[SUBSCRIBERS]["schema.required"] == before[SUBSCRIBERS]["schema.required"] >= 1
    assert ids(status="discarded") == {by_clean} and by_clean not in ids(status="open")
    with pytest.raises(UserError, match="unknown status"):
        plane.desk.list(status="closed")


def test_show_decodes_avro_and_json_originals_and_never_fails_on_garbage(plane: Plane) -> None:
    key = msisdn()
    avro = plane.quarantine_in_clean(SUBSCRIBERS, key, plane.raw_subscriber(key, id_number="003085012345"))
    json_row = plane.quarantine_in_connector(msisdn(), {"msisdn": "0912345679", "carrier": 42, "subscriber_name": "An",
                                                        "id_number": "001185000002", "birth_date": "1985", "address": None,
                                                        "updated_at": 1})
    binary = plane.quarantine_in_clean(CITIZENS, "079185000002", GARBAGE)
    text = plane.quarantine_in_clean(CITIZENS, "079185000003", b"plain text, not avro")
    plane.index(avro, json_row, binary, text)

    shown = plane.desk.show(avro)["original"]
    assert shown["format"] == "avro" and shown["value"]["id_number"] == "003085012345"
    assert shown["value"]["header"]["source_key"] == key and shown["schema_id"] == plane.schema_id("raw.telecom.subscriber.v1-value")
    connector = plane.desk.show(json_row)
    assert connector["rule"] == "schema.invalid" and connector["original"]["format"] == "json"
    assert connector["original"]["value"]["carrier"] == 42 and "header" not in connector["original"]["value"]
    garbage = plane.desk.show(binary)["original"]
    assert garbage["format"] == "base64" and "avro_error" in garbage
    assert plane.desk.show(text)["original"] == {"format": "text", "value": "plain text, not avro"}
    with pytest.raises(NotFound):
        plane.desk.show("no-such-event")


def test_release_publishes_the_fixed_record_under_a_new_event_id_then_closes_the_item(plane: Plane) -> None:
    key = msisdn()
    item_id = plane.quarantine_in_clean(SUBSCRIBERS, key, plane.raw_subscriber(key, id_number="003085012345"))
    plane.index(item_id)
    raw_start, audit_start = end_offsets(plane.bootstrap, "raw.telecom.subscriber.v1"), end_offsets(plane.bootstrap, "gsp.audit")

    released = plane.desk.release(item_id, fixes={"id_number": "001085012345"}, by="lan")

    new_id = event_id(plane.system, key, "1:1+release1")
    assert (released["status"], released["released_event_id"], released["resolved_by"]) == ("released", new_id, "lan")
    [message] = [m for m in read_since(plane.bootstrap, raw_start) if m.key == key.encode()]
    record = plane.codec.decode(message.value)[1]
    assert record["header"]["event_id"] == new_id and record["header"]["source_version"] == "1:1+release1"
    assert record["header"]["ingested_at"] > 1 and (record["id_number"], record["subscriber_name"]) == ("001085012345", "Lê Thị Thu")
    # It re-enters the pipeline: the clean stage now passes it.
    stage = CleanStage(SUBSCRIBERS, plane.codec, clean=cleaning.clean_subscriber, key_of=lambda r: r["id_number"],
                       clean_schema_id=plane.schema_id("clean.telecom.subscriber.v1-value"),
                       issue_schema_id=plane.schema_id("quarantine.telecom.subscriber.v1-value"))
    assert stage.process(message.key, message.value, Where(message.topic, message.partition, message.offset))[0] == "clean.telecom.subscriber.v1"
    item = plane.desk.show(item_id)
    assert item["status"] == "released" and "id_number" in item["resolution"] and "001085012345" not in item["resolution"]
    [audit] = [plane.codec.decode(m.value)[1] for m in read_since(plane.bootstrap, audit_start)
               if m.key == f"quarantine/{item_id}".encode()]
    assert (audit["action"], audit["actor"]) == ("quarantine.release", "lan")
    assert audit["details"] == {"dataset": SUBSCRIBERS, "rule": "id.prefix", "fixed_fields": "id_number",
                                "released_event_id": new_id, "topic": "raw.telecom.subscriber.v1"}

    with pytest.raises(NotOpen, match="already released by lan"):
        plane.desk.release(item_id, fixes={}, by="lan")
    with pytest.raises(NotOpen):
        plane.desk.discard(item_id, reason="too late", by="lan")


def test_a_connector_row_is_released_with_its_fix_and_a_bad_fix_leaves_it_open(plane: Plane) -> None:
    key = msisdn()
    item_id = plane.quarantine_in_connector(key, {"msisdn": key, "carrier": "Viettel", "subscriber_name": None,
                                                  "id_number": "001185000002", "birth_date": "1985-01-02",
                                                  "address": None, "updated_at": 5})
    garbage = plane.quarantine_in_clean(CITIZENS, "079185000004", GARBAGE)
    plane.index(item_id, garbage)
    with pytest.raises(UserError, match="unknown field 'cccd'"):
        plane.desk.release(item_id, fixes={"cccd": "1"}, by="lan")
    with pytest.raises(UserError, match="required and cannot be null"):
        plane.desk.release(item_id, fixes={"carrier": None}, by="lan")
    with pytest.raises(UserError, match="updated_at needs a long value"):
        plane.desk.release(item_id, fixes={"subscriber_name": "An", "updated_at": "yesterday"}, by="lan")
    with pytest.raises(UserError, match="does not fit"):
        plane.desk.release(item_id, fixes={}, by="lan")  # subscriber_name is still NULL
    with pytest.raises(UserError, match="can only be discarded"):
        plane.desk.release(garbage, fixes={}, by="lan")
    assert plane.desk.show(item_id)["status"] == "open"

    start = end_offsets(plane.bootstrap, "raw.telecom.subscriber.v1")
    plane.desk.release(item_id, fixes={"subscriber_name": "Phạm Thu Hà"}, by="lan")
    [message] = [m for m in read_since(plane.bootstrap, start) if m.key == key.encode()]
    record = plane.codec.decode(message.value)[1]
    assert (record["subscriber_name"], record["updated_at"]) == ("Phạm Thu Hà", 5)
    assert record["header"]["event_id"] == event_id(plane.system, key, "0+release1")


def test_discard_requires_a_reason_and_is_audited(plane: Plane) -> None:
    item_id = plane.quarantine_in_clean(CITIZENS, "079185000005", GARBAGE)
    plane.index(item_id)
    with pytest.raises(UserError, match="reason is required"):
        plane.desk.discard(item_id, reason="  ", by="lan")
    with pytest.raises(UserError, match="who is acting"):
        plane.desk.discard(item_id, reason="broken export", by="")
    assert plane.desk.show(item_id)["status"] == "open"
    start = end_offsets(plane.bootstrap, "gsp.audit")
    discarded = plane.desk.discard(item_id, reason="broken export of 2025-06-01", by="minh")
    assert (discarded["status"], discarded["resolution"], discarded["resolved_by"]) == ("discarded", "broken export of 2025-06-01", "minh")
    [audit] = [plane.codec.decode(m.value)[1] for m in read_since(plane.bootstrap, start) if m.key == f"quarantine/{item_id}".encode()]
    assert (audit["action"], audit["actor"], audit["details"]["reason"]) == ("quarantine.discard", "minh", "broken export of 2025-06-01")
    with pytest.raises(NotOpen, match="already discarded"):
        plane.desk.discard(item_id, reason="again", by="minh")


def test_the_http_api_lists_shows_releases_and_discards_with_clear_errors(bootstrap: str, sqlite_engine: sa.Engine) -> None:
    with running_plane(bootstrap, sqlite_engine) as plane, serving(plane, quarantine_routes(plane.desk)) as url:
        key = msisdn()
        item_id = plane.quarantine_in_clean(SUBSCRIBERS, key, plane.raw_subscriber(key, id_number="003085012345"))
        other = plane.quarantine_in_clean(CITIZENS, "079185000006", GARBAGE)
        plane.index(item_id, other)
        cast = Cast.register(plane.control.identities)
        steward = functools.partial(call, headers=cast.headers(Role.STEWARD))  # a steward of every dataset
        who = f"{cast.issued[Role.STEWARD].agency}#{cast.issued[Role.STEWARD].key_id}"  # how the desk names the caller
        base = url + "/api/quarantine"
        status, listed = steward(f"{base}?dataset={SUBSCRIBERS}&rule=id.prefix")
        assert status == 200 and item_id in {i["event_id"] for i in listed} and other not in {i["event_id"] for i in listed}
        status, counts = steward(f"{base}/counts")
        assert status == 200 and counts[SUBSCRIBERS]["id.prefix"] >= 1
        status, shown = steward(f"{base}/{item_id}")
        assert status == 200 and shown["original"]["value"]["id_number"] == "003085012345"
        assert steward(f"{base}/nope")[0] == 404
        assert steward(f"{base}?status=closed")[0] == 422 and steward(f"{base}?limit=x")[0] == 400
        assert steward(f"{base}/{item_id}/release", "POST", b"not json")[0] == 400
        assert steward(f"{base}/{item_id}/release", "POST", b'{"fixes": {"id_number": 1}}')[0] == 400
        status, error = steward(f"{base}/{other}/discard", "POST", b"{}")
        assert status == 422 and error == {"error": "a reason is required to discard a quarantined record"}

        # A steward of population.citizen only: telecom.subscriber's items are not theirs to see or decide.
        citizens = store_headers(plane, Grant(Role.STEWARD, (CITIZENS,)))
        assert [call(f"{base}/{item_id}", headers=citizens)[0],
                call(f"{base}/{item_id}/discard", "POST", b'{"reason": "not mine"}', headers=citizens)[0]] == [403, 403]
        status, theirs = call(f"{base}?status=all&limit=1000", headers=citizens)
        assert status == 200 and other in {i["event_id"] for i in theirs} and item_id not in {i["event_id"] for i in theirs}

        fix = json.dumps({"fixes": {"id_number": "001085012345"}}).encode()
        status, released = steward(f"{base}/{item_id}/release", "POST", fix)
        assert status == 200 and (released["status"], released["resolved_by"]) == ("released", who)
        status, error = steward(f"{base}/{item_id}/release", "POST", fix)
        assert status == 409 and f"already released by {who}" in error["error"]
        status, discarded = steward(f"{base}/{other}/discard", "POST", b'{"reason": "unreadable bytes"}')
        assert status == 200 and (discarded["status"], discarded["resolved_by"]) == ("discarded", who)
        assert item_id in {i["event_id"] for i in steward(f"{base}?status=all&limit=1000")[1]}


def store_headers(plane: Plane, grant: Grant) -> dict[str, str]:
    """The Authorization header of a new credential of the platform agency holding ``grant`` (registered by a Cast)."""
    return {"Authorization": f"Bearer {plane.control.identities.issue(PLATFORM, grants=[grant], label='test').token}"}


def test_release_versions_count_up_and_fixes_follow_the_contracts_paths_and_types() -> None:
    assert release_version("1700000000000:7") == "1700000000000:7+release1"
    assert release_version(release_version("3:1")) == "3:1+release2"
    citizen: dict[str, Any] = {"residence": {"province_code": "01", "ward_code": "99999", "address_line": "1 Phố Huế"},
                               "phone": "0912345678", "updated_at": 1}
    apply_fixes(citizen, contract("vn.gsp.population.Citizen"),
                {"residence.ward_code": "00004", "phone": None, "updated_at": "1700000000000"})
    assert citizen["residence"]["ward_code"] == "00004" and citizen["phone"] is None and citizen["updated_at"] == 1_700_000_000_000
    with pytest.raises(UserError, match="is a record"):
        apply_fixes(citizen, contract("vn.gsp.population.Citizen"), {"residence": "Hà Nội"})
    with pytest.raises(UserError, match=r"unknown field 'header\.event_id'"):
        apply_fixes(citizen, contract("vn.gsp.population.Citizen"), {"header.event_id": "x"})
