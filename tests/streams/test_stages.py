from typing import Any

from schemas.codec import Codec, contract
from streams import clean as cleaning
from streams.share import Subscription
from streams.stages import CleanStage, MatchStage, ShareStage, Where

CITIZEN_ID, SUBSCRIBER_ID, ISSUE_ID, RESULT_ID, SHARE_ID = 1, 2, 3, 4, 5
HEADER = {"event_id": "e-1", "source_system": "telecom.registry", "source_key": "0912345678",
          "source_version": "1:1", "ingested_at": 0}
SUBSCRIBER = {"header": HEADER, "msisdn": "+84 912 345 678", "carrier": "Viettel", "subscriber_name": "NGUYỄN  VĂN HÒA",
              "id_number": "001085012345", "birth_date": "02/03/1985", "address": None, "updated_at": 1}
WHERE = Where("raw.telecom.subscriber.v1", 2, 41)


def codec() -> Codec:
    c = Codec()
    c.add(CITIZEN_ID, contract("vn.gsp.population.Citizen"))
    c.add(SUBSCRIBER_ID, contract("vn.gsp.telecom.Subscriber"))
    c.add(ISSUE_ID, contract("vn.gsp.quality.QualityIssue"))
    c.add(RESULT_ID, contract("vn.gsp.match.MatchResult"))
    return c


def stage(c: Codec) -> CleanStage:
    return CleanStage("telecom.subscriber", c, clean=cleaning.clean_subscriber, key_of=lambda r: r["id_number"],
                      clean_schema_id=SUBSCRIBER_ID, issue_schema_id=ISSUE_ID)


def test_clean_stage_fixes_and_keys_by_id_number() -> None:
    c = codec()
    topic, key, value = stage(c).process(b"k", c.encode(SUBSCRIBER_ID, SUBSCRIBER), WHERE)
    assert topic == "clean.telecom.subscriber.v1" and key == b"001085012345"
    record = c.decode(value)[1]
    assert (record["msisdn"], record["subscriber_name"], record["birth_date"]) == ("0912345678", "Nguyễn Văn Hòa", "1985-03-02")


def test_malformed_avro_is_quarantined_with_original_bytes_and_location() -> None:
    c = codec()
    garbage = b"\x00\x00\x00\x00\x02\xff\xfe garbage"
    topic, _, value = stage(c).process(b"k", garbage, WHERE)
    assert topic == "quarantine.telecom.subscriber.v1"
    issue = c.decode(value)[1]
    assert issue["rule"] == "avro.decode" and issue["original"] == garbage
    assert (issue["source_topic"], issue["source_partition"], issue["source_offset"]) == (WHERE.topic, 2, 41)


def test_not_confluent_framed_bytes_are_quarantined() -> None:
    c = codec()
    topic, _, value = stage(c).process(None, b'{"json": "not avro"}', WHERE)
    assert topic == "quarantine.telecom.subscriber.v1"
    assert "wire format" in c.decode(value)[1]["reason"]


def test_rejected_record_carries_rule_field_and_header() -> None:
    c = codec()
    bad = {**SUBSCRIBER, "id_number": "003085012345"}
    topic, _, value = stage(c).process(b"k", c.encode(SUBSCRIBER_ID, bad), WHERE)
    issue = c.decode(value)[1]
    assert topic.startswith("quarantine.") and issue["rule"] == "id.prefix" and issue["field"] == "id_number"
    assert issue["header"]["event_id"] == "e-1"


def subscriber_event(c: Codec, **changes: Any) -> tuple[dict[str, Any], bytes]:
    record = {**SUBSCRIBER, "msisdn": "0912345678", "subscriber_name": "Nguyễn Văn Hòa", "birth_date": "1985-03-02", **changes}
    return record, c.encode(SUBSCRIBER_ID, record)


ENTRY = {"name_key": cleaning.name_key("Nguyễn Văn Hòa"), "birth_date": "1985-03-02", "status": "ALIVE", "province_code": "01"}


def test_match_stage_verdicts() -> None:
    c = codec()
    m = MatchStage(c, result_schema_id=RESULT_ID)
    for changes, entry, verdict, disagreeing in [
        ({}, ENTRY, "MATCHED", []),
        ({"subscriber_name": "Nguyen Van Hoa"}, ENTRY, "MISMATCH", ["full_name"]),
        ({"birth_date": "1986-03-02"}, ENTRY, "MISMATCH", ["birth_date"]),
        ({}, None, "NOT_FOUND", []),
    ]:
        record, value = subscriber_event(c, **changes)
        _, key, out, got = m.process(record, value, entry)
        assert got == verdict
        result = c.decode(out)[1]
        assert (result["verdict"], result["disagreeing_fields"]) == (verdict, disagreeing)
        assert key == b"0912345678"


def test_share_stage_projects_approved_fields_of_covered_rows_only() -> None:
    c = codec()
    schema = {"type": "record", "name": "S", "fields": [{"name": "header", "type": contract("vn.gsp.common.EventHeader")},
                                                       {"name": "msisdn", "type": "string"}]}
    c.add(SHARE_ID, schema)
    sub = Subscription(subscription_id="a:telecom.subscriber", agency="a", dataset="telecom.subscriber",
                       fields=("msisdn",), topic="share.a.subscriber.v1", schema_id=SHARE_ID,
                       row_filter={"carrier": ("Viettel",)})
    share = ShareStage(c, lambda dataset: [sub])
    m = MatchStage(c, result_schema_id=RESULT_ID)
    record, value = subscriber_event(c)
    matched = m.process(record, value, ENTRY)[2]
    [((topic, _, shared), _)] = share.process(matched)
    assert topic == "share.a.subscriber.v1"
    assert c.decode(shared)[1] == {"header": HEADER, "msisdn": "0912345678"}
    record, value = subscriber_event(c, carrier="MobiFone")
    assert share.process(m.process(record, value, ENTRY)[2]) == []
    record, value = subscriber_event(c, subscriber_name="Nguyen Van Hoa")
    assert share.process(m.process(record, value, ENTRY)[2]) == []


def test_cleaned_records_carry_their_findings_with_the_original_values() -> None:
    c = codec()
    _, _, value = stage(c).process(b"k", c.encode(SUBSCRIBER_ID, SUBSCRIBER), WHERE)
    findings = {f["rule"]: f for f in c.decode(value)[1]["findings"]}
    assert findings["phone.normalize"]["severity"] == "fix" and findings["phone.normalize"]["original"] == "+84 912 345 678"
    assert findings["name.normalize"]["original"] == "NGUYỄN  VĂN HÒA"
    assert all(f["severity"] != "reject" for f in findings.values())
