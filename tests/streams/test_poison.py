"""Any bytes on any topic the platform reads are handled, never an exception.

Each shape (a tombstone, empty bytes, garbage, 2 MB, a valid record of another contract, a record of the
right contract with odd values) goes through every stage and follower, and the exact outcome is checked:
the output topic and the quarantine rule for the stages that quarantine, the follower's state otherwise.
After each, a good record is still processed.
"""

from __future__ import annotations

import json
import random
from typing import Any

import faust
import pytest

from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.envelope import Verdict
from streams.app import _changelog_decoder
from streams.book import SubscriptionBook
from streams.clean import name_key
from streams.consent import ConsentBook
from streams.linkage import Model
from streams.matching import DEFAULT_MODEL, Linker
from streams.replica import Replica
from streams.share import Subscription, projected_schema
from streams.stages import CleanStage, MatchStage, RegistryStage, ShareStage, Where

CITIZEN_ID, SUBSCRIBER_ID, ISSUE_ID, RESULT_ID, SHARE_ID, SUBSCRIPTION_ID, CONSENT_ID, DECISION_ID = range(1, 9)
HEADER = {"event_id": "e-1", "source_system": "telecom.registry", "source_key": "0912345678",
          "source_version": "1:1", "ingested_at": 0}
SUBSCRIBER = {"header": HEADER, "msisdn": "0912345678", "carrier": "Viettel", "subscriber_name": "Nguyễn Văn Hòa",
              "id_number": "001085012345", "birth_date": "1985-03-02", "address": None, "updated_at": 1}
CITIZEN = {"header": {**HEADER, "source_system": "population.csdlqg", "source_key": "001085012345"},
           "personal_id": "001085012345", "full_name": "Nguyễn Văn Hòa", "birth_date": "1985-03-02", "sex": "MALE",
           "birth_registration_province": "001",
           "residence": {"province_code": "01", "ward_code": "00004", "address_line": "12 Phố Huế"},
           "phone": None, "status": "ALIVE", "updated_at": 1, "findings": []}
# The right contract, values no source should send: a control character, an id of letters, a date that is none.
ODD_SUBSCRIBER = {**SUBSCRIBER, "msisdn": "\x00" * 3, "subscriber_name": "\u202e" + "ệ" * 5000, "id_number": "ABCDEFGHIJKL",
                  "birth_date": "31/02/0000", "carrier": ""}
WHERE = Where("raw.telecom.subscriber.v1", 3, 77)
SUBSCRIBERS, CITIZENS = dataset("telecom.subscriber"), dataset("population.citizen")


def codec() -> Codec:
    c = Codec()
    for schema_id, name in [(CITIZEN_ID, "vn.gsp.population.Citizen"), (SUBSCRIBER_ID, "vn.gsp.telecom.Subscriber"),
                            (ISSUE_ID, "vn.gsp.quality.QualityIssue"), (RESULT_ID, "vn.gsp.match.MatchResult"),
                            (SUBSCRIPTION_ID, "vn.gsp.control.Subscription"), (CONSENT_ID, "vn.gsp.control.Consent"),
                            (DECISION_ID, "vn.gsp.match.ReviewDecision")]:
        c.add(schema_id, contract(name))
    c.add(SHARE_ID, projected_schema("telecom.subscriber", "a", ["msisdn"], contract("vn.gsp.common.EventHeader")))
    return c


C = codec()
HUGE = b"\x00" + SUBSCRIBER_ID.to_bytes(4, "big") + random.Random(11).randbytes(2 * 1024 * 1024)
# (name, value, quarantine rule at the clean and match stages); the odd record of its own contract is its own test.
POISON: list[tuple[str, bytes | None, str]] = [
    ("tombstone", None, "tombstone"),
    ("empty", b"", "avro.decode"),
    ("garbage", b"\x13\x37 not an event \xff\xfe", "avro.decode"),
    ("unknown schema id", b"\x00\x00\x00\x03\xe7" + b"\x02" * 20, "avro.decode"),
    ("huge", HUGE, "avro.decode"),
    ("another contract", C.encode(CITIZEN_ID, CITIZEN), "schema.mismatch"),
]
NAMES = [name for name, _, _ in POISON]


def clean_stage() -> CleanStage:
    return CleanStage.for_dataset(SUBSCRIBERS, C, clean_schema_id=SUBSCRIBER_ID, issue_schema_id=ISSUE_ID)


def match_stage() -> MatchStage:
    entry = {"name_key": name_key("Nguyễn Văn Hòa"), "birth_date": "1985-03-02", "status": "ALIVE", "province_code": "01"}
    return MatchStage(C, SUBSCRIBERS, result_schema_id=RESULT_ID, lookup={"001085012345": entry}.get,
                      issue_schema_id=ISSUE_ID)


def issue_of(out: tuple[str, bytes, bytes]) -> dict[str, Any]:
    topic, _, value = out
    assert topic == "quarantine.telecom.subscriber.v1"
    return C.decode(value)[1]


@pytest.mark.parametrize(("name", "value", "rule"), POISON, ids=NAMES)
def test_the_clean_stage_quarantines_poison_and_cleans_the_next_record(name: str, value: bytes | None,
                                                                        rule: str) -> None:
    stage = clean_stage()
    issue = issue_of(stage.process(b"0912345678", value, WHERE))
    assert (issue["rule"], issue["stage"], issue["original"], issue["key"]) == (rule, "clean", value or b"", "0912345678")
    assert (issue["source_topic"], issue["source_partition"], issue["source_offset"]) == (WHERE.topic, 3, 77)
    if rule == "tombstone":
        assert "deletes are not part of the telecom.subscriber contract yet" in issue["reason"]
    assert stage.process(b"k", C.encode(SUBSCRIBER_ID, SUBSCRIBER), WHERE)[0] == "clean.telecom.subscriber.v1"


def test_the_clean_stage_rejects_odd_values_of_its_own_contract() -> None:
    issue = issue_of(clean_stage().process(b"k", C.encode(SUBSCRIBER_ID, ODD_SUBSCRIBER), WHERE))
    assert (issue["rule"], issue["field"], issue["header"]["event_id"]) == ("id.shape", "id_number", "e-1")


@pytest.mark.parametrize(("name", "value", "rule"), POISON, ids=NAMES)
def test_the_match_stage_quarantines_poison_in_the_middle_of_a_batch(name: str, value: bytes | None, rule: str) -> None:
    good = C.encode(SUBSCRIBER_ID, SUBSCRIBER)
    wheres = [Where("clean.telecom.subscriber.v1", 0, offset) for offset in (5, 6, 7)]
    (first, v1), (held, v2), (last, v3) = match_stage().process_batch([good, value, good], wheres)
    assert (v1, v2, v3) == (Verdict.MATCHED, None, Verdict.MATCHED)
    assert [t for t, _, _ in first] == [t for t, _, _ in last] == ["match.telecom.subscriber.v1"]
    [out] = held
    issue = issue_of(out)
    assert (issue["rule"], issue["stage"], issue["original"], issue["source_offset"]) == (rule, "match", value or b"", 6)


def test_the_match_stage_matches_odd_values_of_its_own_contract_as_not_found() -> None:
    [(topic, _, value)], verdict = match_stage().process(C.encode(SUBSCRIBER_ID, ODD_SUBSCRIBER))
    assert (topic, verdict, C.decode(value)[1]["verdict"]) == ("match.telecom.subscriber.v1", Verdict.NOT_FOUND,
                                                                "NOT_FOUND")


@pytest.mark.parametrize(("name", "value", "rule"),
                         [*POISON[:-1], ("another contract", C.encode(SUBSCRIBER_ID, SUBSCRIBER), "schema.mismatch")],
                         ids=NAMES)
def test_the_registry_stage_indexes_nothing_from_poison(name: str, value: bytes | None, rule: str) -> None:
    stage = RegistryStage(C, CITIZENS, [SUBSCRIBERS])
    assert stage.process(value) is None
    odd = {**CITIZEN, "full_name": "\x00", "birth_date": "not a date",
           "residence": {"province_code": "", "ward_code": "\ufffd", "address_line": ""}}
    personal_id, entry = stage.process(C.encode(CITIZEN_ID, odd)) or ("", {})
    assert (personal_id, entry["birth_date"], entry["status"]) == ("001085012345", "not a date", "ALIVE")


SUBSCRIPTION = Subscription(subscription_id="a:telecom.subscriber", agency="a", dataset="telecom.subscriber",
                            fields=("msisdn",), topic="share.a.subscriber.v1", schema_id=SHARE_ID,
                            verdicts=(Verdict.MATCHED, Verdict.NOT_FOUND), pseudonym_key=b"k" * 32, key_version=1)


def match_result(record: bytes | None) -> bytes:
    [(_, _, value)], _ = match_stage().process(C.encode(SUBSCRIBER_ID, SUBSCRIBER))
    return C.encode(RESULT_ID, {**C.decode(value)[1], "record": record})


@pytest.mark.parametrize(("name", "value", "rule"), POISON, ids=NAMES)
def test_the_share_stage_shares_nothing_from_poison(name: str, value: bytes | None, rule: str) -> None:
    share = ShareStage(C, lambda _: [SUBSCRIPTION])
    assert share.process(value) == []
    assert share.process(match_result(value or b"")) == []  # a match result around poison
    assert share.process_clean("telecom.subscriber", value) == []
    assert share.process_clean("no.such.dataset", C.encode(SUBSCRIBER_ID, SUBSCRIBER)) == []
    assert len(share.process(match_result(C.encode(SUBSCRIBER_ID, SUBSCRIBER)))) == 1


def subscription_event(subscription_id: str) -> bytes:
    return C.encode(SUBSCRIPTION_ID, {
        "subscription_id": subscription_id, "agency": "a", "dataset": "telecom.subscriber", "fields": ["msisdn"],
        "row_filter": {}, "verdicts": ["MATCHED"], "topic": "share.a.subscriber.v1", "schema_id": SHARE_ID,
        "schema": "{}", "version": 1, "created_at": 0, "agency_id": None, "valid_from": None, "valid_until": None,
        "backfill": False, "pseudonym_key": "6b" * 32, "consent": False, "key_version": 1, "mode": "stream"})


@pytest.mark.parametrize(("name", "value", "rule"), POISON, ids=NAMES)
def test_the_subscription_book_drops_the_subscription_poison_names_and_keeps_the_others(
        name: str, value: bytes | None, rule: str) -> None:
    book = SubscriptionBook(C)
    for sid in ("s-1", "s-2"):
        book.apply(sid.encode(), subscription_event(sid))
    book.apply(b"s-1", value)  # a tombstone deletes; anything unreadable fails closed
    book.apply(None, value)
    book.apply(b"\xff\xfe", value)
    assert [s.subscription_id for s in book.for_dataset("telecom.subscriber")] == ["s-2"]
    book.apply(b"s-1", subscription_event("s-1"))
    assert len(book) == 2


@pytest.mark.parametrize(("name", "value", "rule"), POISON, ids=NAMES)
def test_the_consent_book_withdraws_the_consent_poison_names(name: str, value: bytes | None, rule: str) -> None:
    book = ConsentBook(C)

    def consent(personal_id: str) -> bytes:
        return C.encode(CONSENT_ID, {"personal_id": personal_id, "subscription_id": "s-1", "given": True, "at": 1,
                                     "recorded_by": "portal", "reference": None})

    for person in ("p-1", "p-2"):
        book.apply(f"s-1|{person}".encode(), consent(person))
    book.apply(b"s-1|p-1", value)
    book.apply(None, value)
    book.apply(b"\xff|\xfe", value)
    assert (book.allows("s-1", "p-1"), book.allows("s-1", "p-2")) == (False, True)


def replica() -> tuple[Replica, list[int]]:
    app = faust.App("poison-test", broker="kafka://127.0.0.1:1")
    table = app.Table("registry", key_type=str, value_type=None, partitions=1)
    errors: list[int] = []
    linker = Linker(Model.load(DEFAULT_MODEL))
    return Replica(linker, C, decode_change=_changelog_decoder(app, table), on_error=lambda: errors.append(1)), errors


ENTRY = json.dumps({"name_key": name_key("Nguyễn Văn Hòa"), "birth_date": "1985-03-02", "status": "ALIVE",
                    "province_code": "01"}).encode()


@pytest.mark.parametrize("value", [b"", b"\x13\x37\xff", HUGE, b"[1, 2]", b'{"zzz": 1}', b"1e999",
                                   C.encode(CITIZEN_ID, CITIZEN)],
                         ids=["empty", "garbage", "huge", "a list", "another shape", "infinity", "avro"])
def test_the_registry_replica_counts_and_skips_unreadable_changes(value: bytes) -> None:
    follower, errors = replica()
    follower.apply_registry_change(b'"001085012345"', ENTRY)
    follower.apply_registry_change(b'"079190000001"', value)
    follower.apply_registry_change(b"\xff", ENTRY)
    follower.apply_registry_change(None, ENTRY)
    assert (follower.linker.entries, len(errors)) == (1, 3)
    follower.apply_registry_change(b'"079190000001"', ENTRY)
    follower.apply_registry_change(b'"001085012345"', None)  # a tombstone deletes
    assert follower.linker.entry("079190000001") is not None and follower.linker.entry("001085012345") is None


def decision(verdict: str) -> bytes:
    return C.encode(DECISION_ID, {"header": HEADER, "dataset": "telecom.subscriber", "source_key": "0912345678",
                                  "personal_id": "001085012345", "decision": verdict, "reason": "r",
                                  "decided_by": "steward", "decided_at": 1, "probability": None, "levels": {}})


@pytest.mark.parametrize(("name", "value", "rule"), POISON, ids=NAMES)
def test_the_replica_withdraws_the_decision_poison_names(name: str, value: bytes | None, rule: str) -> None:
    follower, _ = replica()
    follower.apply_decision(b"d-1", decision("ACCEPTED"))
    follower.apply_decision(b"d-2", decision("REJECTED"))
    follower.apply_decision(b"d-1", value)
    follower.apply_decision(None, value)
    follower.apply_decision(b"\xff", value)
    assert follower.linker.decisions == 1
