import copy
import json
import unicodedata
from datetime import date
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gsp.tools.bench.cleaning import bench_cleaning
from streams.contracts import ContractError, datasets, load_contract, parse_contract

TODAY = date(2025, 9, 1)
CITIZEN = "population.citizen"
SUBSCRIBER = "telecom.subscriber"


def contract_data(dataset: str = CITIZEN) -> dict[str, Any]:
    """The cleaning section of a shipped declaration, as a contract standing alone."""
    declared = json.loads(files("schemas.datasets").joinpath(f"{dataset}.json").read_text(encoding="utf-8"))
    return {"dataset": dataset, "version": declared["cleaning"]["version"], "schema": declared["contract"],
            "doc": declared["doc"], "fields": declared["cleaning"]["fields"]}


def field_entry(data: dict[str, Any], path: str) -> dict[str, Any]:
    return next(f for f in data["fields"] if f["field"] == path)


def error_of(data: dict[str, Any], name: str = "population.citizen.json") -> str:
    with pytest.raises(ContractError) as caught:
        parse_contract(json.dumps(data), name=name)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_both_datasets_have_a_valid_contract():
    assert datasets() == ("electricity.customer", "insurance.participant", CITIZEN, "population.event", SUBSCRIBER)
    assert load_contract(CITIZEN).schema == "vn.gsp.population.Citizen"
    assert load_contract(SUBSCRIBER).field("msisdn").presence == "required"


def test_the_rules_that_decide_the_demo_keep_their_severity():
    citizen = {(f, r): s for f, r, s in load_contract(CITIZEN).rules()}
    subscriber = {(f, r): s for f, r, s in load_contract(SUBSCRIBER).rules()}
    for key in (("full_name", "name.missing"), ("personal_id", "id.shape"), ("personal_id", "id.prefix"),
                ("personal_id", "id.century"), ("birth_date", "birthdate.invalid"),
                ("residence.province_code", "province.unknown")):
        assert citizen[key] == "reject", key
    for key in (("subscriber_name", "name.missing"), ("id_number", "id.shape"), ("id_number", "id.prefix"),
                ("id_number", "id.century"), ("birth_date", "birthdate.invalid"), ("msisdn", "phone.invalid")):
        assert subscriber[key] == "reject", key
    assert subscriber[("id_number", "id.birthyear")] == "warn"  # wrong birth years are the demo's MISMATCH
    assert subscriber[("id_number", "id.legacy_cmnd")] == "warn" and citizen[("phone", "phone.invalid")] == "warn"
    new_rejects = {r for (_, r), s in {**citizen, **subscriber}.items() if s == "reject"} - {
        "name.missing", "id.shape", "id.prefix", "id.century", "birthdate.invalid", "province.unknown",
        "phone.invalid"}
    assert new_rejects == {"id.birthyear", "sex.invalid"}  # citizens only; generate() never makes such a citizen


def test_a_misspelt_rule_names_the_nearest_one():
    data = contract_data()
    field_entry(data, "personal_id")["rules"]["id.prefx"] = "reject"
    assert error_of(data) == "unknown rule 'id.prefx' in population.citizen.json (did you mean id.prefix?)"


def test_an_unknown_field_is_refused_against_the_schema():
    data = contract_data()
    field_entry(data, "residence.ward_code")["field"] = "residence.ward_cod"
    assert error_of(data) == ("unknown field 'residence.ward_cod' in population.citizen.json: not in schema "
                              "vn.gsp.population.Citizen (did you mean residence.ward_code?)")


def test_a_bad_severity_is_refused():
    data = contract_data()
    field_entry(data, "personal_id")["rules"]["id.shape"] = "rejected"
    assert error_of(data) == ("bad severity 'rejected' for rule 'id.shape' in population.citizen.json "
                              "(expected reject, fix, warn) (did you mean reject?)")


def test_a_rule_only_applies_to_its_type_and_only_fixers_fix():
    data = contract_data()
    field_entry(data, "personal_id")["rules"]["phone.invalid"] = "warn"
    assert error_of(data).startswith("rule 'phone.invalid' does not apply to field 'personal_id' of type personal_id")
    data = contract_data()
    field_entry(data, "personal_id")["rules"]["id.prefix"] = "fix"
    assert error_of(data) == "rule 'id.prefix' in population.citizen.json cannot fix a value: use reject or warn"


def test_types_keys_links_and_enrichments_are_checked():
    cases = [
        (lambda d: field_entry(d, "phone").update(type="phonee"),
         "unknown type 'phonee' for field 'phone' in population.citizen.json (did you mean phone?)"),
        (lambda d: field_entry(d, "phone").update(ruls={}),
         "unknown key 'ruls' for field 'phone' in population.citizen.json (did you mean rules?)"),
        (lambda d: d.update(verison=2), "unknown key 'verison' in population.citizen.json (did you mean version?)"),
        (lambda d: field_entry(d, "personal_id")["links"].update(birthdate="birth_date"),
         "unknown link 'birthdate' for field 'personal_id' in population.citizen.json "
         "(type personal_id reads: birth_date, sex)"),
        (lambda d: field_entry(d, "personal_id")["links"].update(birth_date="sex"),
         "link 'birth_date' of field 'personal_id' in population.citizen.json must name a field of type date"),
        (lambda d: field_entry(d, "personal_id").update(enrich=["id.birthplace"]),
         "unknown enrichment 'id.birthplace' for field 'personal_id' in population.citizen.json "
         "(type personal_id offers: id.birth_province)"),
        (lambda d: d["fields"].append({"field": "phone"}), "field 'phone' is declared twice in population.citizen.json"),
        (lambda d: field_entry(d, "status").update(presence="must"),
         "bad presence 'must' for field 'status' in population.citizen.json (expected required, expected, optional)"),
        (lambda d: d.update(schema="vn.gsp.population.Citizenn"),
         "schema 'vn.gsp.population.Citizenn' in population.citizen.json is not an Avro record in schemas/avro"),
    ]
    for change, message in cases:
        data = contract_data()
        change(data)
        assert error_of(data) == message


def test_file_level_errors_are_one_line():
    with pytest.raises(ContractError, match=r"^population.citizen.json is not valid JSON: .* at line 1 column 2$"):
        parse_contract("{,", name="population.citizen.json")
    assert error_of(contract_data(), name="telecom.subscriber.json") == (
        "dataset 'population.citizen' in telecom.subscriber.json does not match the file name")
    with pytest.raises(ContractError, match=r"^unknown dataset 'telecom.subscribers' \(did you mean telecom.subscriber\?\)"):
        load_contract("telecom.subscribers")


def test_severities_come_from_the_contract():
    data = contract_data(SUBSCRIBER)
    field_entry(data, "msisdn")["rules"]["phone.invalid"] = "warn"
    field_entry(data, "birth_date")["rules"]["date.swapped"] = "warn"
    lenient = parse_contract(json.dumps(data), name="telecom.subscriber.json")
    record = {"msisdn": "123", "carrier": "Viettel", "subscriber_name": "Lê Văn Tám", "id_number": "001090123456",
              "birth_date": "12/25/1990", "address": None}
    cleaned = lenient.clean(record, today=TODAY)
    assert [(f.rule, f.severity) for f in cleaned.findings] == [
        ("date.swapped", "warn"), ("birthdate.invalid", "reject"), ("phone.invalid", "warn")]
    assert cleaned.record["birth_date"] == "12/25/1990"  # a warning never rewrites


def test_missing_lists_required_and_expected_fields_for_completeness():
    record = {"msisdn": "0912345678", "carrier": " ", "subscriber_name": "Lê Văn Tám", "id_number": "001090123456",
              "birth_date": "1990-01-01", "address": None}
    assert load_contract(SUBSCRIBER).missing(record) == ("carrier", "address")


def test_bench_reports_microseconds_per_record_per_dataset():
    citizen = {"personal_id": "001090123456", "full_name": "Lê Văn Tám", "birth_date": "1990-01-01", "sex": "MALE",
               "birth_registration_province": "001", "phone": None, "status": "ALIVE",
               "residence": {"province_code": "01", "ward_code": "00004", "address_line": "Số 1"}}
    figures = bench_cleaning({CITIZEN: [citizen] * 20, SUBSCRIBER: []}, repeat=1, today=TODAY)
    assert figures[CITIZEN]["records"] == 20 and figures[CITIZEN]["us_per_record"] > 0
    assert figures[CITIZEN]["rejected"] == 0 and figures[SUBSCRIBER]["us_per_record"] == 0.0


# --- any input: never raises, cleaning twice changes nothing -------------------------------

values = st.one_of(st.none(), st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(),
                   st.lists(st.text(), max_size=2))
# Vietnamese letters in Latin-1 and beyond, Windows-1252's mojibake symbols, TCVN3 symbols, separators
texts = st.one_of(st.text(), st.text(alphabet="ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúýĂăĐđĨĩŨũƠơƯưạỹ"
                                              "»…€‚ƒ„†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ¨©ªÐð 0123456789,./-"))


def _spellings(name: str) -> list[str]:
    mojibake = "".join(bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b)
                       for b in name.encode("utf-8"))
    return [name, name.upper(), unicodedata.normalize("NFD", name), f"  {name.lower()} ", mojibake,
            name.replace("Đ", "Ð"), "".join(c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c))]


names = st.one_of(texts, st.sampled_from(["Nguyễn Văn Hòa", "Đặng Thị Thu Hương", "Huỳnh Thuỷ", "Lê Khoẻ", "Mai Lan Anh",
                                          "NguyÔn V¨n Hßa"]).flatmap(lambda n: st.sampled_from(_spellings(n))))
dates = st.one_of(
    st.from_regex(r"[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-][0-9]{4}|[0-9]{4}(-[0-9]{2}-[0-9]{2})?", fullmatch=True),
    st.dates(date(1900, 1, 1), TODAY).flatmap(lambda d: st.sampled_from([
        d.isoformat(), f"{d.day:02d}/{d.month:02d}/{d.year}", f"{d.day}.{d.month}.{d.year}", str(d.year),
        f"{d.month}/{d.day}/{d.year}"])))
ids = st.one_of(
    st.from_regex(r"[0-9 ]{8,13}", fullmatch=True),
    st.builds(lambda prefix, digit, year, rest, gap: f"{prefix}{gap}{digit}{year}{gap}{rest}",
              st.sampled_from(["001", "015", "079", "096", "003", "097"]), st.integers(0, 3),
              st.from_regex(r"[0-9]{2}", fullmatch=True), st.from_regex(r"[0-9]{6}", fullmatch=True), st.sampled_from(["", " "])))
codes = st.one_of(st.from_regex(r"[0-9]{2}|[0-9]{5}", fullmatch=True),
                  st.sampled_from(["01", "02", "15", "13", "00004", "00001", "00007", "02647", "99999"]))
addresses = st.one_of(st.sampled_from([
    "12 Hàng Bột, Phường Cống Vị, Quận Ba Đình, Thành phố Hà Nội", "Tổ 5, P. Phúc Xá, Q. Ba Đình, TP Hà Nội",
    "Thôn 3, Xã Minh Bảo, TP Yên Bái, Yên Bái", "Côn Đảo, Bà Rịa - Vũng Tàu", "Bản Mới, Yên Bái, Việt Nam",
    "So 1, Phuong Ba Dinh, TP. HN", "Ấp 2, Xã Thanh An, Hồ Chí Minh", "P1, Q.3, TP.HCM"]),
    st.lists(st.one_of(texts, st.sampled_from([
        "Phường Cống Vị", "Quận Ba Đình", "Hà Nội", "P. Phúc Xá", "Yên Bái", "TP Yên Bái", "Xã Minh Bảo", "Côn Đảo",
        "Bà Rịa - Vũng Tàu", "Việt Nam", "Phường Ba Đình", "Lào Cai", "Xa Loc Thanh", "Đồng Nai", "P1", "Q.3",
        "TP.HCM"])), max_size=5).map(", ".join))


def any_field(typed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(typed, typed, typed, texts, values)


def citizens() -> st.SearchStrategy[dict[str, Any]]:
    residence = st.one_of(values, st.fixed_dictionaries({
        "province_code": any_field(codes), "ward_code": any_field(codes), "address_line": any_field(texts)}))
    return st.fixed_dictionaries({
        "personal_id": any_field(ids), "full_name": any_field(names),
        "birth_date": any_field(dates), "sex": st.sampled_from(["MALE", "FEMALE", None, 1]),
        "birth_registration_province": any_field(codes), "phone": any_field(texts), "status": values,
        "residence": residence})


def subscribers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "msisdn": any_field(st.from_regex(r"\+?(84)?[0-9 .()\-]{8,14}", fullmatch=True)),
        "carrier": values, "subscriber_name": any_field(names), "id_number": any_field(ids),
        "birth_date": any_field(dates),
        "address": st.one_of(st.none(), addresses)})


def assert_idempotent(dataset: str, record: dict[str, Any]) -> None:
    before = copy.deepcopy(record)
    contract = load_contract(dataset)
    first = contract.clean(record, today=TODAY)
    assert record == before  # the input is never changed
    second = contract.clean(first.record, today=TODAY)
    assert second.record == first.record
    assert list(second.findings) == [f for f in first.findings if f.severity != "fix"]
    assert all(isinstance(f.original, str) == (f.severity == "fix") for f in first.findings)


@settings(max_examples=300)
@given(citizens())
def test_citizen_contract_never_raises_and_is_idempotent(record):
    assert_idempotent(CITIZEN, record)


@settings(max_examples=300)
@given(subscribers())
def test_subscriber_contract_never_raises_and_is_idempotent(record):
    assert_idempotent(SUBSCRIBER, record)
