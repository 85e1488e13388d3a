"""Sex, declared date formats and source codes: the conventions of the sources added after the registry."""

import json
import unicodedata
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import ContractError, load_contract, parse_contract
from streams.rules import normalize_code, normalize_sex, parse_date

TODAY = date(2025, 9, 1)
NAME = "test.participant"
RECORD = {"type": "record", "name": "Participant", "namespace": "vn.gsp.test", "fields": [
    {"name": name, "type": ["null", "string"], "default": None}
    for name in ("personal_id", "si_code", "customer_code", "birth_date", "sex", "note")]}


def participant_contract(*fields: dict[str, Any]) -> Any:
    text = json.dumps({"dataset": NAME, "version": 1, "schema": "vn.gsp.test.Participant", "doc": "",
                       "fields": list(fields)})
    return parse_contract(text, name=f"{NAME}.json", avro=RECORD)


def refusal(*fields: dict[str, Any]) -> str:
    with pytest.raises(ContractError) as caught:
        participant_contract(*fields)
    message = str(caught.value)
    assert "\n" not in message
    return message


SEX_FIELD = {"field": "sex", "type": "sex", "presence": "required",
             "rules": {"sex.invalid": "reject", "sex.normalize": "fix"}}
SI_CODE = {"field": "si_code", "type": "code", "format": "^[0-9]{10}$", "presence": "required",
           "rules": {"code.invalid": "reject", "code.normalize": "fix"}}
EVN_CODE = {"field": "customer_code", "type": "code", "format": "^P[A-Z][0-9A-Z]{11}$", "presence": "optional",
            "rules": {"code.invalid": "reject", "code.normalize": "fix"}}
BIRTH = {"field": "birth_date", "type": "date", "format": "%Y%m%d", "presence": "required",
         "rules": {"birthdate.invalid": "reject", "birthdate.parse": "fix", "date.swapped": "fix"}}
ID = {"field": "personal_id", "type": "personal_id", "presence": "required",
      "links": {"birth_date": "birth_date", "sex": "sex"}, "rules": {"id.shape": "reject", "id.century": "reject"}}


def citizen(**changes: Any) -> dict[str, Any]:
    record = {"personal_id": "015090123456", "full_name": "Nguyễn Văn An", "birth_date": "1990-02-15",
              "sex": "MALE", "birth_registration_province": "015", "phone": "0912345678", "status": "ALIVE",
              "residence": {"province_code": "15", "ward_code": None, "address_line": None}}
    return {**record, **changes}


def findings(cleaned: Any) -> list[tuple[str, str, str]]:
    return [(f.rule, f.field, f.severity) for f in cleaned.findings]


# sex

def test_every_spelling_of_male_and_female_is_read():
    nfd = unicodedata.normalize("NFD", "Nữ")
    for male in ("MALE", "M", "m", "male", "Male", "Nam", "NAM", " nam ", "Nam giới", "trai", "Trai", "1", 1):
        assert normalize_sex(male) == "MALE", male
    for female in ("FEMALE", "F", "f", "female", "Nữ", "NỮ", "nữ", "nu", "NU", nfd, "nữ giới", "gái", "Gái", "gai",
                   "0", 0):
        assert normalize_sex(female) == "FEMALE", female


def test_anything_else_is_no_sex():
    for other in ("2", "X", "", "  ", "nam nu", "MALES", "01", 2, True, False, None, 1.0, "Ông"):
        assert normalize_sex(other) is None, other


def test_a_spelling_is_rewritten_and_an_unknown_one_rejected():
    contract = participant_contract(SEX_FIELD)
    fixed = contract.clean({"sex": "Nữ"}, today=TODAY)
    assert fixed.record["sex"] == "FEMALE"
    assert [(f.rule, f.severity, f.original) for f in fixed.findings] == [("sex.normalize", "fix", "Nữ")]
    assert contract.clean({"sex": "MALE"}, today=TODAY).findings == ()
    for bad in ("2", "X", None, " "):
        cleaned = contract.clean({"sex": bad}, today=TODAY)
        assert cleaned.rejection is not None and cleaned.rejection.rule == "sex.invalid", bad
        assert cleaned.record["sex"] == bad


def test_a_missing_optional_sex_is_no_finding():
    contract = participant_contract({**SEX_FIELD, "presence": "optional"})
    assert contract.clean({"sex": None}, today=TODAY).findings == ()
    assert contract.clean({"sex": "?"}, today=TODAY).rejection.rule == "sex.invalid"


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans()))
def test_sex_never_raises_and_is_idempotent(value):
    contract = participant_contract(SEX_FIELD)
    first = contract.clean({"sex": value}, today=TODAY)
    assert first.record["sex"] in ("MALE", "FEMALE") or first.rejection.rule == "sex.invalid"
    assert contract.clean(first.record, today=TODAY).record == first.record


def test_citizen_sex_m_against_a_female_digit_4_is_flagged():
    cleaned = load_contract("population.citizen").clean(citizen(personal_id="015190123456", sex="M"), today=TODAY)
    assert cleaned.rejection is not None and cleaned.rejection.rule == "id.century"
    assert "FEMALE" in cleaned.rejection.reason
    assert cleaned.record["sex"] == "MALE"


def test_citizen_spellings_of_sex_are_checked_against_digit_4():
    contract = load_contract("population.citizen")
    for male in ("M", "Nam", "1", "trai"):
        assert contract.clean(citizen(sex=male), today=TODAY).rejection is None, male
        assert contract.clean(citizen(personal_id="015190123456", sex=male), today=TODAY).rejection.rule == "id.century"
    assert contract.clean(citizen(personal_id="015190123456", sex="nữ"), today=TODAY).rejection is None


def test_citizen_unreadable_sex_is_reported_once_by_its_own_rule():
    cleaned = load_contract("population.citizen").clean(citizen(sex="X"), today=TODAY)
    assert findings(cleaned) == [("sex.invalid", "sex", "reject")]


def test_an_untyped_unreadable_sex_makes_the_id_check_say_so():
    contract = participant_contract(ID, BIRTH, {"field": "sex", "presence": "required"})
    cleaned = contract.clean({"personal_id": "015090123456", "birth_date": "19900215", "sex": "X"}, today=TODAY)
    assert [(f.rule, f.severity) for f in cleaned.findings] == [("id.century", "reject"), ("birthdate.parse", "fix")]
    assert "could not be read" in cleaned.findings[0].reason
    # an untyped but readable sex is compared; an absent one is a question of presence only
    disagree = contract.clean({"personal_id": "015190123456", "birth_date": "19900215", "sex": "Nam"}, today=TODAY)
    assert disagree.rejection.rule == "id.century" and "disagrees" in disagree.rejection.reason
    assert contract.clean({"personal_id": "015090123456", "birth_date": "19900215", "sex": None},
                          today=TODAY).rejection is None


def test_a_typed_sex_without_its_invalid_rule_leaves_the_id_check_to_say_so():
    quiet = {**SEX_FIELD, "rules": {"sex.normalize": "fix"}}
    contract = participant_contract(ID, BIRTH, quiet)
    cleaned = contract.clean({"personal_id": "015090123456", "birth_date": "1990-02-15", "sex": "X"}, today=TODAY)
    assert [f.rule for f in cleaned.findings] == ["id.century"]


# dates in a declared format

def test_a_declared_date_format_is_parsed_and_rewritten_as_iso():
    contract = participant_contract(BIRTH)
    cleaned = contract.clean({"birth_date": "19900215"}, today=TODAY)
    assert cleaned.record["birth_date"] == "1990-02-15"
    assert [(f.rule, f.original) for f in cleaned.findings] == [("birthdate.parse", "19900215")]
    for still_accepted, iso in (("1990-02-15", "1990-02-15"), ("15/02/1990", "1990-02-15"), ("1990", "1990")):
        assert contract.clean({"birth_date": still_accepted}, today=TODAY).record["birth_date"] == iso
    for bad in ("19900230", "1990215", "20300101", "18990101", "199002150"):
        assert contract.clean({"birth_date": bad}, today=TODAY).rejection.rule == "birthdate.invalid", bad


def test_without_the_format_yyyymmdd_is_invalid():
    assert parse_date("19900215", today=TODAY).iso is None
    assert parse_date("19900215", today=TODAY, formats=("%Y%m%d",)).iso == "1990-02-15"


def test_a_declared_format_comes_before_the_day_first_reading():
    american = ("%m/%d/%Y",)
    assert parse_date("05/03/1990", today=TODAY, formats=american).iso == "1990-05-03"
    assert parse_date("05/03/1990", today=TODAY).iso == "1990-03-05"
    assert parse_date("12/25/1990", today=TODAY, formats=american).swapped is False
    several = ("%Y%m%d", "%d.%m.%y")
    assert [parse_date(v, today=TODAY, formats=several).iso for v in ("19900215", "15.02.90")] == [
        "1990-02-15", "1990-02-15"]


def test_the_id_rules_read_the_birth_year_through_the_declared_format():
    contract = participant_contract(ID, BIRTH, SEX_FIELD)
    agrees = contract.clean({"personal_id": "015090123456", "birth_date": "19900215", "sex": "1"}, today=TODAY)
    assert agrees.rejection is None and agrees.record["sex"] == "MALE"
    wrong_century = contract.clean({"personal_id": "015290123456", "birth_date": "19900215", "sex": "1"}, today=TODAY)
    assert wrong_century.rejection.rule == "id.century"


@settings(max_examples=300)
@given(st.text(max_size=14))
def test_a_declared_date_format_never_raises(value):
    contract = participant_contract({**BIRTH, "format": ["%Y%m%d", "%d-%b-%Y"]})
    cleaned = contract.clean({"birth_date": value}, today=TODAY)
    assert cleaned.rejection is not None or isinstance(cleaned.record["birth_date"], str)


# codes

def test_codes_are_normalised_then_matched():
    contract = participant_contract(SI_CODE, EVN_CODE)
    cleaned = contract.clean({"si_code": " 01-2345.6789 ", "customer_code": "pe 0400-0123456"}, today=TODAY)
    assert cleaned.record == {"si_code": "0123456789", "customer_code": "PE04000123456"}
    assert [(f.rule, f.field) for f in cleaned.findings] == [
        ("code.normalize", "si_code"), ("code.normalize", "customer_code")]
    assert contract.clean(cleaned.record, today=TODAY).findings == ()


def test_a_code_that_does_not_match_is_invalid_and_kept():
    contract = participant_contract(SI_CODE, EVN_CODE)
    for si_code, customer_code in (("012345678", None), ("0123456789", "PE0400012345"), ("0123456789", "XE04000123456"),
                                   (None, None), (123456789, None), ("01234567AB", None)):
        cleaned = contract.clean({"si_code": si_code, "customer_code": customer_code}, today=TODAY)
        assert cleaned.rejection is not None and cleaned.rejection.rule == "code.invalid", (si_code, customer_code)
        assert cleaned.record["si_code"] == si_code
        assert "012345678" not in cleaned.rejection.reason


def test_a_code_matching_only_when_normalised_is_invalid_without_the_fix_rule():
    contract = participant_contract({**SI_CODE, "rules": {"code.invalid": "reject"}})
    assert contract.clean({"si_code": "0123 456 789"}, today=TODAY).rejection.rule == "code.invalid"


def test_a_code_with_separators_in_its_format_passes_as_given():
    contract = participant_contract({**SI_CODE, "format": ["^[0-9]{3}-[0-9]{4}$", "^[0-9]{10}$"]})
    assert contract.clean({"si_code": "012-3456"}, today=TODAY).findings == ()
    assert contract.clean({"si_code": "012 345 6789"}, today=TODAY).record["si_code"] == "0123456789"


def test_normalize_code_removes_typing_only():
    assert normalize_code(" pe.04-00\t0123456 ") == "PE04000123456"
    assert normalize_code("ab/cd") == "AB/CD"


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=16), st.integers(), st.none()))
def test_codes_never_raise_and_are_idempotent(value):
    contract = participant_contract(SI_CODE, EVN_CODE)
    first = contract.clean({"si_code": value, "customer_code": value}, today=TODAY)
    assert contract.clean(first.record, today=TODAY).record == first.record


# declarations

def test_format_declarations_are_checked_in_one_line():
    where = "field '{}' of type {} in test.participant.json"
    cases = [
        ({**SI_CODE, "format": None}, where.format("si_code", "code") + " needs a format"),
        ({k: v for k, v in SI_CODE.items() if k != "format"}, where.format("si_code", "code") + " needs a format"),
        ({**SI_CODE, "format": "^[0-9]{10$("},
         "format '^[0-9]{10$(' of " + where.format("si_code", "code")
         + " is not a regular expression (missing ), unterminated subpattern at position 10)"),
        ({**BIRTH, "format": "%Y%m%Q"},
         "format '%Y%m%Q' of " + where.format("birth_date", "date")
         + " is not a strptime date format ('Q' is a bad directive in format '%Y%m%Q')"),
        ({**BIRTH, "format": "%Y%m"},
         "format '%Y%m' of " + where.format("birth_date", "date") + " does not hold a day, a month and a year"),
        ({**BIRTH, "format": []},
         "format of " + where.format("birth_date", "date") + " must be a string or a non-empty list of strings"),
        ({**BIRTH, "format": ["%Y%m%d", 8]},
         "format of " + where.format("birth_date", "date") + " must be a string or a non-empty list of strings"),
        ({**SEX_FIELD, "format": "^[MF]$"}, where.format("sex", "sex") + " takes no format"),
        ({"field": "note", "format": "%Y"}, "field 'note' in test.participant.json has rules, links, enrich or format "
                                            "but no type"),
        ({**SI_CODE, "formt": "^[0-9]{10}$"},
         "unknown key 'formt' for field 'si_code' in test.participant.json (did you mean format?)"),
    ]
    for entry, message in cases:
        assert refusal(entry) == message


def test_a_format_on_a_shipped_type_that_takes_none_is_refused():
    for field_type in ("name", "personal_id", "phone", "province_code", "ward_code", "address", "id_prefix"):
        entry = {"field": "note", "type": field_type, "format": "x"}
        assert refusal(entry) == f"field 'note' of type {field_type} in test.participant.json takes no format"


def test_the_citizen_declares_its_sex_with_the_sex_type():
    sex = load_contract("population.citizen").field("sex")
    assert sex is not None and sex.type is not None and sex.type.name == "sex"
    assert dict(sex.severities) == {"sex.invalid": "reject", "sex.normalize": "fix"}
