"""A dataset is one declaration: loaded, refused in one line, and run through clean and share with no Python of its own."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from schemas import topics
from schemas.codec import Codec, contract
from schemas.datasets import DatasetError, Role, Sensitivity, catalog
from schemas.envelope import header
from streams.contracts import ContractError, contract_of
from streams.quality import QualityTally
from streams.share import ShareError, Subscription, check, projected_schema, pseudonym, shareable_fields
from streams.stages import CleanStage, ShareStage, Where

CLINIC_ID, ISSUE_ID, SHARE_ID = 1, 2, 3
AGENCY = "so-y-te-ha-noi"
CLINIC: dict[str, Any] = {
    "dataset": "health.clinic",
    "version": 1,
    "doc": "Licensed clinics as a provincial health department registers them; not matched to people.",
    "contract": {
        "type": "record", "name": "Clinic", "namespace": "vn.gsp.health",
        "fields": [
            {"name": "header", "type": "vn.gsp.common.EventHeader"},
            {"name": "licence_no", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "phone", "type": ["null", "string"], "default": None},
            {"name": "specialty", "type": "string"},
            {"name": "findings", "type": {"type": "array", "items": "vn.gsp.quality.Finding"}, "default": []},
        ],
    },
    "key": "licence_no",
    "source_system": "health.clinics",
    "owner": "VN/GOV/bo-y-te/so-y-te-ha-noi",
    "role": "plain",
    "shareable": True,
    "fields": {"licence_no": "public", "name": "public", "phone": "personal", "specialty": "public"},
    "quality": {"required": ["licence_no", "name", "phone"], "expected": ["specialty"]},
    "cleaning": {"version": 1, "fields": [
        {"field": "name", "type": "name", "presence": "required",
         "rules": {"name.missing": "reject", "name.normalize": "fix"}},
        {"field": "phone", "type": "phone", "presence": "required",
         "rules": {"phone.invalid": "reject", "phone.normalize": "fix"}},
        {"field": "licence_no", "presence": "required"},
        {"field": "specialty", "presence": "expected"},
    ]},
}


def declare(directory: Path, data: dict[str, Any], name: str = "health.clinic") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / f"{name}.json"
    file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return file


def refusal(directory: Path, data: dict[str, Any]) -> str:
    file = declare(directory, data)
    with pytest.raises(DatasetError) as caught:
        catalog(directory)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{file}: "), message
    return message.removeprefix(f"{file}: ")


def changed(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(CLINIC), **changes}


def test_a_bad_declaration_is_refused_in_one_line_naming_its_file(tmp_path: Path) -> None:
    assert refusal(tmp_path / "role", changed(role="mirror")) == "role 'mirror' is not one of registry, linked, plain"
    assert refusal(tmp_path / "field", changed(fields={"licence": "public"})) == (
        "field 'licence' is not a field of vn.gsp.health.Clinic")
    assert refusal(tmp_path / "sensitivity", changed(fields={"name": "secret"})) == (
        "sensitivity 'secret' of name is not one of public, internal, personal, sensitive")
    no_key = changed()
    del no_key["key"]
    assert refusal(tmp_path / "key", no_key) == "missing 'key'"
    assert refusal(tmp_path / "linked", changed(role="linked", registry={"personal_id": "licence_no"})) == (
        "a linked dataset maps personal_id, full_name, birth_date to its fields; missing full_name")


def test_a_dataset_declared_twice_is_refused(tmp_path: Path) -> None:
    shipped = json.loads((Path(__file__).parents[2] / "schemas/datasets/telecom.subscriber.json").read_text("utf-8"))
    file = declare(tmp_path, shipped, "telecom.subscriber")
    with pytest.raises(DatasetError) as caught:
        catalog(tmp_path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{file}: dataset telecom.subscriber is already declared in ")


def clinic_event(codec: Codec, version: str, **fields: Any) -> bytes:
    record = {"licence_no": "GP-000123-HN", "name": "Trần Thị Mai", "phone": "0912345678", "specialty": "cardiology",
              **fields}
    return codec.encode(CLINIC_ID, {**record, "header": header("health.clinics", record["licence_no"], version, 1_000)})


def test_a_plain_dataset_declared_in_a_directory_is_cleaned_and_shared_with_no_python_of_its_own(tmp_path: Path) -> None:
    clinic = catalog(declare(tmp_path, CLINIC).parent)["health.clinic"]
    assert (clinic.role, clinic.partition_key, clinic.sensitivity["phone"]) == (Role.PLAIN, "licence_no", Sensitivity.PERSONAL)
    codec = Codec()
    codec.add(CLINIC_ID, clinic.avro)
    codec.add(ISSUE_ID, contract("vn.gsp.quality.QualityIssue"))
    fields, row_filter = ["licence_no", "name"], {"specialty": ["cardiology"]}
    check(clinic, fields, row_filter)
    codec.add(SHARE_ID, projected_schema(clinic, AGENCY, fields, contract("vn.gsp.common.EventHeader")))
    subscription = Subscription.from_event({
        "subscription_id": f"{AGENCY}:health.clinic", "agency": AGENCY, "dataset": "health.clinic", "fields": fields,
        "row_filter": row_filter, "verdicts": ["MATCHED"], "topic": topics.share(AGENCY, "health.clinic"),
        "schema_id": SHARE_ID, "pseudonym_key": "ab" * 32, "key_version": 1})
    tally = QualityTally.for_dataset(clinic)
    clean = CleanStage.for_dataset(clinic, codec, clean_schema_id=CLINIC_ID, issue_schema_id=ISSUE_ID, tally=tally,
                                   clock=lambda: 2.0)
    share = ShareStage(codec, lambda dataset: [subscription] if dataset == "health.clinic" else [],
                       tallies={"health.clinic": tally}, clock=lambda: 2.0, datasets={"health.clinic": clinic})
    where = Where("raw.health.clinic.v1", 0, 7)

    good = clean.process(b"GP-000123-HN", clinic_event(codec, "1"), where)
    fixable = clean.process(b"GP-000124-HN", clinic_event(
        codec, "2", licence_no="GP-000124-HN", name="  NGUYỄN   VĂN  HÒA ", phone="+84 912 345 679"), where)
    elsewhere = clean.process(b"GP-000125-HN", clinic_event(
        codec, "3", licence_no="GP-000125-HN", specialty="dermatology"), where)
    rejected = clean.process(b"GP-000126-HN", clinic_event(codec, "4", licence_no="GP-000126-HN", phone="12345"), where)
    garbage = clean.process(None, b"\x00\x00\x00\x00\x01\xff\xfe garbage", where)

    assert [topic for topic, _, _ in (good, fixable, elsewhere)] == ["clean.health.clinic.v1"] * 3
    assert (good[1], fixable[1]) == (b"GP-000123-HN", b"GP-000124-HN")  # keyed by the declared key
    fixed = codec.decode(fixable[2])[1]
    assert (fixed["name"], fixed["phone"]) == ("Nguyễn Văn Hòa", "0912345679")
    assert {(f["rule"], f["original"]) for f in fixed["findings"]} == {
        ("name.normalize", "  NGUYỄN   VĂN  HÒA "), ("phone.normalize", "+84 912 345 679")}
    for (topic, _, value), rule, field in [(rejected, "phone.invalid", "phone"), (garbage, "avro.decode", None)]:
        issue = codec.decode(value)[1]
        assert topic == "quarantine.health.clinic.v1"
        assert (issue["dataset"], issue["stage"], issue["rule"], issue["field"]) == ("health.clinic", "clean", rule, field)
        assert (issue["source_topic"], issue["source_offset"]) == ("raw.health.clinic.v1", 7)
    assert codec.decode(rejected[2])[1]["original"] == clinic_event(codec, "4", licence_no="GP-000126-HN", phone="12345")
    assert codec.decode(garbage[2])[1]["header"]["source_key"] == "raw.health.clinic.v1/0/7"

    # Shared straight from the clean topic; the subscription's verdicts mean nothing to a plain dataset.
    [((topic, key, shared), sent_to, _)] = share.process_clean("health.clinic", fixable[2])
    assert (topic, key, sent_to) == ("share.so-y-te-ha-noi.clinic.v1", b"GP-000124-HN", subscription)
    # The licence number (the key) is approved, so the agency sees it; the event id is its own, no person is matched.
    agency_header = {**fixed["header"], "event_id": pseudonym(subscription, "event", fixed["header"]["event_id"])}
    assert codec.decode(shared)[1] == {"header": agency_header, "licence_no": "GP-000124-HN", "name": "Nguyễn Văn Hòa",
                                       "person_key": None}
    assert fixed["header"]["event_id"].encode() not in shared
    for hidden in ("0912345679", "+84 912 345 679", "cardiology", "phone.normalize"):
        assert hidden.encode() not in shared, hidden
    assert len(share.process_clean("health.clinic", good[2])) == 1
    assert share.process_clean("health.clinic", elsewhere[2]) == []  # the row filter holds it back

    assert tally.records == 5 and tally.rules["phone.invalid"] == 1 and tally.rules["avro.decode"] == 1
    cells = {(c["field"], c["dimension"]): c for c in tally.snapshot_cells()}
    assert cells[("phone", "correct")]["failures"] == 1 and cells[("delivery", "live")]["checks"] == 2


def test_a_plain_dataset_refuses_fields_it_does_not_share(tmp_path: Path) -> None:
    quiet = catalog(declare(tmp_path, changed(fields={"licence_no": "public", "name": "public"})).parent)["health.clinic"]
    assert list(shareable_fields(quiet)) == ["licence_no", "name"]
    with pytest.raises(ShareError, match=r"^unknown field 'phone' for dataset health\.clinic; shareable fields: licence_no, name$"):
        check(quiet, ["phone"], {})
    with pytest.raises(ShareError, match=r"^unknown field 'verdict' for dataset health\.clinic"):
        check(quiet, ["name"], {"verdict": ["MATCHED"]})  # matching outcomes are a linked dataset's only


def test_every_shipped_declaration_loads_and_derives_valid_avro() -> None:
    codec = Codec()
    event_header = contract("vn.gsp.common.EventHeader")
    for i, d in enumerate(catalog().values()):
        codec.add(100 + 2 * i, d.avro)
        assert contract_of(d).dataset == d.name
        assert QualityTally.for_dataset(d).profile.key_field == d.key
        if d.shareable:
            shared = projected_schema(d, "bo-cong-an", list(d.shared_types()), event_header)
            codec.add(101 + 2 * i, shared)  # fastavro parses it, or the codec raises
            assert [f["name"] for f in shared["fields"]] == ["header", *d.sensitivity, "person_key"]


def test_a_cleaning_section_is_checked_against_the_declarations_own_record(tmp_path: Path) -> None:
    data = changed()
    data["cleaning"]["fields"][0]["field"] = "nam"
    clinic = catalog(declare(tmp_path, data).parent)["health.clinic"]
    with pytest.raises(ContractError) as caught:
        contract_of(clinic)
    assert str(caught.value) == ("unknown field 'nam' in health.clinic.json: not in schema vn.gsp.health.Clinic "
                                 "(did you mean name?)")
