from connectors.runner import event_id as connector_event_id
from schemas.codec import Codec, contract
from schemas.envelope import event_id, header, quarantine_issue, unknown_header

ISSUE_ID = 1


def test_event_ids_never_change_for_the_same_source_record_version() -> None:
    # Literal ids: a changed namespace would make every sink store each record a second time.
    assert event_id("telecom.registry", "0912345678", "1700000000000:7") == "50eaa4d5-2374-5bfc-9cbc-9a47b13908a6"
    assert connector_event_id is event_id
    assert event_id("telecom.registry", "0912345678", "1700000000000:8") != event_id(
        "telecom.registry", "0912345678", "1700000000000:7")


def test_a_header_names_the_source_record_and_when_it_was_read() -> None:
    assert header("telecom.registry", "0912345678", "1700000000000:7", 1_700_000_000_123) == {
        "event_id": "50eaa4d5-2374-5bfc-9cbc-9a47b13908a6", "source_system": "telecom.registry",
        "source_key": "0912345678", "source_version": "1700000000000:7", "ingested_at": 1_700_000_000_123,
        "deleted": False}


def test_undecodable_bytes_are_named_by_where_they_were_read() -> None:
    assert unknown_header("raw.telecom.subscriber.v1", 2, 41) == {
        "event_id": "44ecde43-6f2f-5958-b05f-fc8bb50e2d0e", "source_system": "unknown",
        "source_key": "raw.telecom.subscriber.v1/2/41", "source_version": "0", "ingested_at": 0, "deleted": False}


def test_a_quarantine_issue_fits_the_quality_issue_contract_with_or_without_a_position() -> None:
    codec = Codec()
    codec.add(ISSUE_ID, contract("vn.gsp.quality.QualityIssue"))
    held = quarantine_issue(header=header("s", "k", "1", 0), dataset="telecom.subscriber", stage="connector", key="k",
                            rule="schema.required", field="msisdn", reason="required column for msisdn is NULL",
                            original=b'{"msisdn": null}')
    assert codec.decode(codec.encode(ISSUE_ID, held))[1] == held
    assert (held["source_topic"], held["source_partition"], held["source_offset"]) == (None, None, None)
    read = quarantine_issue(header=unknown_header("raw.x.y.v1", 0, 5), dataset="x.y", stage="clean", key=None,
                            rule="avro.decode", field=None, reason="garbage", original=b"\xff",
                            source_topic="raw.x.y.v1", source_partition=0, source_offset=5)
    assert codec.decode(codec.encode(ISSUE_ID, read))[1]["source_offset"] == 5
