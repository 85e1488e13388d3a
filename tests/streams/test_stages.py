from typing import Any

from schemas import topics
from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.envelope import Verdict
from streams import clean as cleaning
from streams.linkage import Model
from streams.matching import DEFAULT_MODEL, Linker, Lookup, Matcher, RegistryEntries
from streams.share import Subscription, projected_schema, pseudonym
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
    return CleanStage.for_dataset(dataset("telecom.subscriber"), c, clean_schema_id=SUBSCRIBER_ID, issue_schema_id=ISSUE_ID)


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


def test_a_tombstone_is_quarantined_and_the_next_record_is_cleaned() -> None:
    c = codec()
    s = stage(c)
    topic, _, value = s.process(b"0912345678", None, WHERE)
    assert topic == "quarantine.telecom.subscriber.v1"
    issue = c.decode(value)[1]
    assert (issue["rule"], issue["original"], issue["key"]) == ("tombstone", b"", "0912345678")
    assert "tombstone" in issue["reason"]
    assert s.process(b"k", c.encode(SUBSCRIBER_ID, SUBSCRIBER), WHERE)[0] == "clean.telecom.subscriber.v1"


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
SUBSCRIBERS = dataset("telecom.subscriber")


def registry_of(entry: dict[str, Any] | None) -> Lookup:
    """A registry holding ``entry`` for the subscriber's id, or nobody."""
    held: dict[str, dict[str, Any]] = {} if entry is None else {"001085012345": entry}
    return held.get


def match_stage(c: Codec, entry: dict[str, Any] | None = None, **kwargs: Any) -> MatchStage:
    linker = kwargs.get("linker")
    lookup = linker.entry if linker is not None and entry is None else registry_of(entry)
    return MatchStage(c, SUBSCRIBERS, result_schema_id=RESULT_ID, lookup=lookup, **kwargs)


def test_match_stage_verdicts() -> None:
    c = codec()
    for changes, entry, verdict, disagreeing in [
        ({}, ENTRY, Verdict.MATCHED, []),
        ({"subscriber_name": "Nguyen Van Hoa"}, ENTRY, Verdict.MISMATCH, ["full_name"]),
        ({"birth_date": "1986-03-02"}, ENTRY, Verdict.MISMATCH, ["birth_date"]),
        ({}, None, Verdict.NOT_FOUND, []),
    ]:
        _, value = subscriber_event(c, **changes)
        [(topic, key, out)], got = match_stage(c, entry).process(value)
        assert got is verdict and topic == "match.telecom.subscriber.v1"
        result = c.decode(out)[1]
        assert (result["verdict"], result["disagreeing_fields"]) == (verdict, disagreeing)
        assert key == b"0912345678" and result["record"] == value


def test_a_batch_keeps_its_order_and_looks_up_only_personal_ids() -> None:
    c = codec()
    asked: list[str] = []

    def lookup(personal_id: str) -> dict[str, Any] | None:
        asked.append(personal_id)
        return ENTRY if personal_id == "001085012345" else None

    values = [subscriber_event(c, id_number=n, header={**HEADER, "source_key": f"k{i}"})[1]
              for i, n in enumerate(["001085012345", "012345678", "001085099999"])]
    out = MatchStage(c, SUBSCRIBERS, result_schema_id=RESULT_ID, lookup=lookup).process_batch(values)
    assert [verdict for _, verdict in out] == [Verdict.MATCHED, Verdict.NOT_FOUND, Verdict.NOT_FOUND]
    assert [events[0][1] for events, _ in out] == [b"k0", b"k1", b"k2"]
    assert asked == ["001085012345", "001085099999"]  # a 9-digit CMND is not a registry key


def test_share_stage_projects_approved_fields_of_covered_rows_only() -> None:
    c = codec()
    c.add(SHARE_ID, projected_schema("telecom.subscriber", "a", ["msisdn"], contract("vn.gsp.common.EventHeader")))
    sub = Subscription(subscription_id="a:telecom.subscriber", agency="a", dataset="telecom.subscriber",
                       fields=("msisdn",), topic="share.a.subscriber.v1", schema_id=SHARE_ID,
                       row_filter={"carrier": ("Viettel",)}, pseudonym_key=b"k" * 32, key_version=1)
    share = ShareStage(c, lambda dataset: [sub])
    m = match_stage(c, ENTRY)

    def matched(**changes: Any) -> bytes:
        return m.process(subscriber_event(c, **changes)[1])[0][0][2]

    [((topic, key, shared), _, reported)] = share.process(matched())
    assert topic == "share.a.subscriber.v1"
    received = c.decode(shared)[1]
    assert received["msisdn"] == "0912345678" and set(received) == {"header", "msisdn", "person_key"}
    # The agency's own event id and person key (the personal id is not approved); the source key is approved.
    assert received["header"] == {**HEADER, "event_id": pseudonym(sub, "event", HEADER["event_id"]), "deleted": False}
    assert received["person_key"] == pseudonym(sub, "person", "001085012345") and key == received["person_key"].encode()
    assert b"001085012345" not in shared + key
    # What the audit ledger is told (inside the platform): the platform's and the agency's ids, the person.
    assert reported == {"event_id": HEADER["event_id"], "agency_event_id": received["header"]["event_id"],
                        "personal_id": "001085012345", "source_system": HEADER["source_system"],
                        "source_version": HEADER["source_version"]}
    assert share.process(matched(carrier="MobiFone")) == []
    assert share.process(matched(subscriber_name="Nguyen Van Hoa")) == []


def test_cleaned_records_carry_their_findings_with_the_original_values() -> None:
    c = codec()
    _, _, value = stage(c).process(b"k", c.encode(SUBSCRIBER_ID, SUBSCRIBER), WHERE)
    findings = {f["rule"]: f for f in c.decode(value)[1]["findings"]}
    assert findings["phone.normalize"]["severity"] == "fix" and findings["phone.normalize"]["original"] == "+84 912 345 678"
    assert findings["name.normalize"]["original"] == "NGUYỄN  VĂN HÒA"
    assert all(f["severity"] != "reject" for f in findings.values())


# --- the match stage with the probabilistic matcher -------------------------------------------

def linker_with_registry() -> Linker:
    linker = Linker(Model.load(DEFAULT_MODEL))
    citizens = [("001085012345", "Nguyễn Văn Hòa", "1985-03-02", "0912345678", "ALIVE"),
                ("001190004321", "Trần Thị Thu", "1990-11-20", "0987000111", "ALIVE"),
                ("079170000777", "Lê Văn Tám", "1970-05-05", "0903000222", "DECEASED")]
    citizens += [(f"0011900{i:05d}", f"Phạm Văn {given}", f"1990-0{1 + i % 9}-1{i % 10}", f"09120{i:05d}", "ALIVE")
                 for i, given in enumerate(["An", "Bình", "Cường", "Dũng", "Giang", "Hải", "Khánh", "Long"] * 5)]
    for pid, name, born, phone, status in citizens:
        linker.apply_entry(pid, {"name_key": cleaning.name_key(name), "full_name": name, "birth_date": born,
                                 "phone": phone, "status": status, "province_code": pid[1:3]})
    return linker


def linked(m: MatchStage, c: Codec, **changes: Any) -> tuple[dict[str, Any], list[str]]:
    _, value = subscriber_event(c, **changes)
    [(outs, verdict)] = m.process_batch([value])
    result = c.decode(outs[0][2])[1]
    assert result["verdict"] == verdict and outs[0][0] == "match.telecom.subscriber.v1"
    assert all(out[2] == outs[0][2] for out in outs)  # the review copy is the same result
    return result, [topic for topic, _, _ in outs]


def test_an_old_cmnd_is_searched_for_and_the_person_proposed_for_review() -> None:
    c, linker = codec(), linker_with_registry()
    m = match_stage(c, linker=linker)
    result, sent = linked(m, c, id_number="012345678")  # a 9-digit CMND: not a registry key
    assert (result["verdict"], result["method"], result["personal_id"]) == ("POSSIBLE", "search", "001085012345")
    assert sent == ["match.telecom.subscriber.v1", "review.telecom.subscriber.v1"]
    # A 9-digit CMND cannot be compared with a 12-digit id: no evidence either way ("null"), not a disagreement.
    assert result["levels"]["given_name"] == "exact" and result["levels"]["id_number"] == "null"
    assert result["probability"] >= 0.2  # likely enough to ask; a search alone never says MATCHED
    nobody, sent = linked(m, c, id_number="012345678", subscriber_name="Hoàng Quốc Việt", birth_date="1961-08-19",
                          msisdn="0977123456")
    assert (nobody["verdict"], nobody["personal_id"], sent) == ("NO_MATCH", None, ["match.telecom.subscriber.v1"])


def test_a_mismatch_that_is_the_same_person_goes_to_review_with_its_probability() -> None:
    c = codec()
    m = match_stage(c, linker=linker_with_registry())
    result, sent = linked(m, c, subscriber_name="Nguyen Van Hoa")  # typed without diacritics
    assert (result["verdict"], result["method"], result["disagreeing_fields"]) == ("MISMATCH", "exact", ["full_name"])
    assert result["probability"] > 0.99 and result["levels"]["family_name"] == "folded"
    assert sent[-1] == "review.telecom.subscriber.v1"


def test_a_stewards_decision_is_applied_instead_of_asking_again() -> None:
    c, linker = codec(), linker_with_registry()
    m = match_stage(c, linker=linker)
    linker.apply_decision(topics.decision_key("telecom.subscriber", "0912345678", "001085012345"), "ACCEPTED")
    accepted, sent = linked(m, c, id_number="012345678")
    assert (accepted["verdict"], accepted["method"], accepted["personal_id"]) == ("MATCHED", "review", "001085012345")
    assert sent == ["match.telecom.subscriber.v1"]
    linker.apply_decision(topics.decision_key("telecom.subscriber", "0912345678", "001085012345"), "REJECTED")
    rejected, sent = linked(m, c, id_number="012345678")
    assert (rejected["verdict"], rejected["method"], rejected["personal_id"], sent) == (
        "NO_MATCH", "review", None, ["match.telecom.subscriber.v1"])
    linker.apply_decision(topics.decision_key("telecom.subscriber", "0912345678", "001085012345"), None)  # tombstone
    assert linked(m, c, id_number="012345678")[0]["verdict"] == "POSSIBLE"


def test_the_dead_are_not_proposed_and_a_death_takes_an_entry_out() -> None:
    c, linker = codec(), linker_with_registry()
    m = match_stage(c, linker=linker)
    ghost, _ = linked(m, c, id_number="012345670", subscriber_name="Lê Văn Tám", birth_date="1970-05-05",
                      msisdn="0903000222")
    assert ghost["verdict"] == "NO_MATCH"
    assert linked(m, c, id_number="012345678")[0]["personal_id"] == "001085012345"
    linker.apply_entry("001085012345", {**ENTRY, "full_name": "Nguyễn Văn Hòa", "phone": "0912345678", "status": "DECEASED"})
    assert linked(m, c, id_number="012345678")[0]["verdict"] == "NO_MATCH"
    assert "001085012345" not in linker.index and linker.entries == 43


def test_without_a_matcher_an_unknown_id_is_not_found() -> None:
    c = codec()
    result, sent = linked(match_stage(c), c, id_number="012345678")
    assert (result["verdict"], result["method"], sent) == ("NOT_FOUND", "exact", ["match.telecom.subscriber.v1"])


def test_the_linkage_record_follows_the_declaration_and_the_models_columns() -> None:
    matcher = Matcher(SUBSCRIBERS, linker=Linker(Model.load(DEFAULT_MODEL)))
    record, _ = subscriber_event(codec(), address="12 Hàng Bạc, Phường Hoàn Kiếm, Hà Nội")
    assert matcher.linkage_record(record) == {
        "record_id": "0912345678", "subscriber_name": "Nguyễn Văn Hòa", "birth_date": "1985-03-02",
        "id_number": "001085012345", "msisdn": "0912345678", "province": "Hà Nội"}
    record, _ = subscriber_event(codec(), address=None)
    assert matcher.linkage_record(record)["province"] is None


def test_a_registry_entry_keeps_the_fields_linked_datasets_map() -> None:
    citizen = {"personal_id": "001085012345", "full_name": "Nguyễn Văn Hòa", "birth_date": "1985-03-02",
               "phone": "0912345678", "status": "ALIVE",
               "residence": {"province_code": "01", "ward_code": "00004", "address_line": None}}
    entries = RegistryEntries(dataset("population.citizen"), [SUBSCRIBERS])
    assert entries.entry(citizen) == ("001085012345", {
        "name_key": cleaning.name_key("Nguyễn Văn Hòa"), "full_name": "Nguyễn Văn Hòa", "birth_date": "1985-03-02",
        "phone": "0912345678", "province_code": "01", "status": "ALIVE"})
