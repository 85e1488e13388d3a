import sys
from datetime import date

from streams import reference
from streams.clean import clean_citizen, clean_subscriber
from streams.rules import (
    birth_province,
    decode_personal_id,
    folded_key,
    lacks_diacritics,
    looks_legacy_encoded,
    name_key,
    normalize_name,
    parse_address,
    parse_date,
    phone_problem,
    regional_variant,
    repair_mojibake,
    resolve_province,
    resolve_province_code,
    split_name,
)
from streams.rules.units import wards_named

TODAY = date(2025, 9, 1)


def citizen(**changes):
    record = {"personal_id": "015090123456", "full_name": "Nguyễn Văn Hòa", "birth_date": "1990-03-05", "sex": "MALE",
              "birth_registration_province": "015", "phone": None, "status": "ALIVE",
              "residence": {"province_code": "15", "ward_code": "02647", "address_line": "Tổ 5"}}
    return {**record, **changes}


def subscriber(**changes):
    record = {"msisdn": "0912345678", "carrier": "VinaPhone", "subscriber_name": "Trần Thị Mai",
              "id_number": "001305004321", "birth_date": "2005-11-20", "address": None}
    return {**record, **changes}


def rules(cleaned):
    return [f.rule for f in cleaned.findings]


# --- names -------------------------------------------------------------------------------

def test_old_and_new_tone_placement_share_one_key():
    for old, new in (("Hòa", "Hoà"), ("Thủy", "Thuỷ"), ("Khỏe", "Khoẻ"), ("Thúy", "Thuý"), ("Lê Thị Thùy", "Lê Thị Thuỳ")):
        assert name_key(old) == name_key(new), (old, new)
    assert name_key("Nguyễn Văn Hòa") == "nguyễn văn hoà"  # the modern convention of Decision 1989/QĐ-BGDĐT


def test_tone_key_puts_the_mark_on_the_main_vowel():
    cases = {"hòa": "hoà", "qúy": "quý", "gìa": "già", "hoàng": "hoàng", "huỳnh": "huỳnh", "nguyễn": "nguyễn",
             "người": "người", "thuở": "thuở", "hoài": "hoài", "khủyu": "khuỷu", "mùa": "mùa", "bìa": "bìa",
             "lửa": "lửa", "gì": "gì"}
    assert {k: name_key(k) for k in cases} == cases


def test_different_names_keep_different_exact_keys_and_share_the_folded_one():
    names = ("Hương", "Hưởng", "Hướng")
    assert len({name_key(n) for n in names}) == 3
    assert {folded_key(n) for n in names} == {"huong"}
    assert folded_key("Đặng Thị Hương") == "dang thi huong"


def test_split_puts_the_given_name_last():
    assert split_name(" nguyễn thị thu hà ") == ("Nguyễn", "Thị Thu", "Hà")
    assert split_name("Trần An") == ("Trần", "", "An")
    assert split_name("Lan") == ("", "", "Lan")
    assert split_name("") == ("", "", "")


def test_huynh_and_hoang_are_weak_equivalents_never_corrections():
    assert regional_variant("Huỳnh") == "Hoàng" and regional_variant("VÕ") == "Vũ"
    assert regional_variant("Nguyễn") is None
    assert name_key("Huỳnh Văn Bảo") != name_key("Hoàng Văn Bảo")
    cleaned = clean_subscriber(subscriber(subscriber_name="Huỳnh Văn Bảo", id_number="001205004321"), today=TODAY)
    assert cleaned.record["subscriber_name"] == "Huỳnh Văn Bảo" and cleaned.findings == ()


def test_invisible_characters_leave_names():
    assert normalize_name("Trần\u200bVăn\ufeff Lâm") == "Trần Văn Lâm"


def as_windows_1252(text: str) -> str:
    """What a program reading UTF-8 as Windows-1252 shows (its five undefined bytes as C1 controls)."""
    return "".join(bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b)
                   for b in text.encode("utf-8"))


def test_utf8_read_as_windows_1252_is_repaired():
    assert repair_mojibake("Nguyá»…n VÄƒn An") == "Nguyễn Văn An"
    assert repair_mojibake(as_windows_1252("Đặng Thị Hương")) == "Đặng Thị Hương"  # "Ä\x90áº·ng Thá»‹ HÆ°Æ¡ng"
    assert repair_mojibake("Ðỗ Văn Minh") == "Đỗ Văn Minh"  # Icelandic eth for Đ
    for fine in ("Nguyễn Văn An", "Võ Thị Hà", "Lan Anh", "Müller"):
        assert repair_mojibake(fine) is None, fine


def test_legacy_encodings_are_detected():
    assert looks_legacy_encoded("NguyÔn V¨n Hßa")  # TCVN3 (ABC)
    assert looks_legacy_encoded("Nguyeãn Vaên Hoøa")  # VNI
    for fine in ("Nguyễn Văn Hòa", "NGUYỄN VĂN HÒA", "Võ Thị Hà", "Ông Văn Tú"):
        assert not looks_legacy_encoded(fine), fine


def test_a_legacy_encoded_name_is_kept_as_given():
    cleaned = clean_citizen(citizen(full_name="NguyÔn  V¨n Hßa"), today=TODAY)
    assert cleaned.record["full_name"] == "NguyÔn  V¨n Hßa"
    assert [(f.rule, f.severity) for f in cleaned.findings] == [("name.legacy_encoding", "warn")]


def test_names_typed_without_diacritics_are_told_from_unmarked_names():
    assert lacks_diacritics("Nguyen Van Hoa") and lacks_diacritics("TRAN THI THU")
    for fine in ("Lan Anh", "Mai Lan Anh", "John Smith", "Nguyễn Văn Hòa", "Nguyen"):
        assert not lacks_diacritics(fine), fine
    cleaned = clean_subscriber(subscriber(subscriber_name="Tran Thi Mai"), today=TODAY)
    assert [(f.rule, f.severity) for f in cleaned.findings] == [("name.no_diacritics", "warn")]


# --- personal ids --------------------------------------------------------------------------

def test_prefix_015_is_yen_bai_which_became_lao_cai():
    decoded = decode_personal_id("015 090 123456")
    assert decoded.birth_province.name == "Yên Bái" and decoded.birth_province_2025.name == "Lào Cai"
    assert (decoded.century, decoded.sex, decoded.year_digits) == (1900, "MALE", "90") and decoded.born_in(1990)
    assert birth_province("010090123456")[0].name == "Lào Cai"


def test_the_seven_reused_codes_decode_against_the_legacy_table():
    for code in ("15", "24", "44", "52", "80", "82", "91"):
        old, new = reference.legacy_province("0" + code), reference.province_2025(code)
        assert old.name != new.name and old.successor == code
        assert decode_personal_id(f"0{code}090123456").birth_province.name == old.name


def test_gaps_and_2025_codes_are_not_id_prefixes():
    for bad in ("003", "005", "097", "099", "150"):  # 150: 2025's "15" typed as the prefix
        assert decode_personal_id(bad + "090123456") is None, bad
        cleaned = clean_citizen(citizen(personal_id=bad + "090123456", birth_registration_province=bad), today=TODAY)
        assert cleaned.rejection.rule == "id.prefix"
    assert len([p for p in reference.legacy_provinces() if decode_personal_id(p.id_prefix + "090123456")]) == 63


def test_digit_4_encodes_century_and_sex():
    assert [(d.century, d.sex) for d in (decode_personal_id(f"001{n}90123456") for n in (0, 1, 2, 3, 8, 9))] == [
        (1900, "MALE"), (1900, "FEMALE"), (2000, "MALE"), (2000, "FEMALE"), (2300, "MALE"), (2300, "FEMALE")]


def test_year_digits_reject_a_citizen_but_only_warn_on_a_subscriber():
    cleaned = clean_citizen(citizen(personal_id="015088123456"), today=TODAY)
    assert cleaned.rejection.rule == "id.birthyear"
    cleaned = clean_subscriber(subscriber(id_number="001304004321"), today=TODAY)  # the demo's MISMATCH case
    assert [(f.rule, f.severity) for f in cleaned.findings] == [("id.birthyear", "warn")] and cleaned.rejection is None


def test_an_id_that_lost_its_leading_zero_says_so():
    reason = clean_citizen(citizen(personal_id="15090123456"), today=TODAY).rejection.reason
    assert "11 digits" in reason and "leading zero" in reason


def test_the_birth_province_enrichment_maps_to_2025():
    enriched = clean_citizen(citizen(), today=TODAY).enriched
    assert enriched == {"id.birth_province": {"id_prefix": "015", "name": "Yên Bái", "province_2025": "15",
                                              "province_2025_name": "Lào Cai"}}


# --- phones and dates ----------------------------------------------------------------------

def test_phone_problems_name_the_cause_not_the_number():
    assert phone_problem("02438123456") == "is a fixed-line number (area code 024), not a mobile"
    assert phone_problem("0201234567") == "prefix 020 is not a mobile prefix"
    assert phone_problem("09123") == "has 5 digits, expected 10 (or 11 before the 2018 switch)"
    assert phone_problem("+1 212 555 0100") == "has a country code other than +84"
    assert phone_problem("0912345678") == ""


def test_swapped_day_and_month_are_flagged_with_the_fix():
    parsed = parse_date("12/25/1990", today=TODAY)
    assert parsed.swapped and parsed.iso == "1990-12-25"
    cleaned = clean_subscriber(subscriber(birth_date="11/20/2005"), today=TODAY)
    assert [(f.rule, f.severity, f.original) for f in cleaned.findings] == [("date.swapped", "fix", "11/20/2005")]
    assert cleaned.record["birth_date"] == "2005-11-20"


def test_only_day_first_dates_are_read_as_swapped():
    assert parse_date("13/25/1990", today=TODAY).iso is None  # neither order is a date
    assert parse_date("1990-13-05", today=TODAY).iso is None  # corrupt ISO, not a swap
    assert parse_date("05/03/1990", today=TODAY).iso == "1990-03-05"  # valid day-first is never swapped


def test_date_forms_and_limits():
    assert [parse_date(t, today=TODAY).iso for t in ("5-3-1990", "05.03.1990", " 1955 ", "2025-09-01")] == [
        "1990-03-05", "1990-03-05", "1955", "2025-09-01"]
    assert [parse_date(t, today=TODAY).problem for t in ("2025-09-02", "1899", "03/1990", None)] == [
        "is in the future", "is before 1900", "is not yyyy-mm-dd, dd/mm/yyyy or yyyy", "is missing"]


# --- provinces and wards -------------------------------------------------------------------

def test_every_2025_ward_and_province_is_found_by_its_own_name():
    for ward in reference.wards_2025():
        assert wards_named(ward.province_code, ward.name) == (ward,), ward
    for province in reference.provinces_2025():
        assert resolve_province(province.name).province == province and resolve_province(province.name).current


def test_pre_2025_province_names_and_codes_map_to_their_successor():
    for old in reference.legacy_provinces():
        match = resolve_province(old.official_name)
        assert match.province.code == old.successor, old
        assert resolve_province_code(old.id_prefix[1:]).province.code == old.successor
    assert resolve_province("Tỉnh Yên Bái").province.name == "Lào Cai"
    assert not resolve_province("Yên Bái").current and resolve_province("TP.HCM").province.code == "79"
    assert resolve_province_code("015") is None and resolve_province_code("1") is None


def test_a_split_ward_is_ambiguous_and_never_guessed():
    match = parse_address("12 Hàng Bột, Phường Cống Vị, Quận Ba Đình, Thành phố Hà Nội")
    assert match.ward is None and match.standard() is None
    assert [w.code for w in match.candidates] == ["00008", "00025"]
    cleaned = clean_citizen(citizen(residence={"province_code": "01", "ward_code": "00007", "address_line": ""}),
                            today=TODAY)
    assert [(f.rule, f.severity) for f in cleaned.findings] == [("ward.ambiguous", "warn")]
    assert cleaned.record["residence"]["ward_code"] == "00007"


def test_a_pre_2025_ward_that_became_one_ward_is_converted():
    assert parse_address("Tổ 5, P. Phúc Xá, Q. Ba Đình, TP Hà Nội").standard() == "Tổ 5, Phường Hồng Hà, Hà Nội"
    assert parse_address("Côn Đảo, Bà Rịa - Vũng Tàu").standard() == "Đặc khu Côn Đảo, Hồ Chí Minh"
    cleaned = clean_citizen(citizen(residence={"province_code": "01", "ward_code": "00001", "address_line": ""}),
                            today=TODAY)
    assert cleaned.record["residence"]["ward_code"] == "00097"
    assert [(f.rule, f.original) for f in cleaned.findings] == [("ward.legacy", "00001")]


def test_a_ward_of_another_province_is_flagged():
    cleaned = clean_citizen(citizen(residence={"province_code": "15", "ward_code": "00004", "address_line": ""}),
                            today=TODAY)
    assert [(f.rule, f.severity) for f in cleaned.findings] == [("ward.mismatch", "warn")]


def test_a_legacy_province_in_an_address_is_renamed_even_when_the_ward_is_unknown():
    cleaned = clean_subscriber(subscriber(address="Bản Mới, Yên Bái"), today=TODAY)
    assert cleaned.record["address"] == "Bản Mới, Lào Cai"
    assert [f.rule for f in cleaned.findings] == ["province.legacy", "ward.unknown"]
    assert rules(clean_subscriber(cleaned.record, today=TODAY)) == ["ward.unknown"]


def test_address_enrichment_gives_2025_codes():
    cleaned = clean_subscriber(subscriber(address="So 1, Phuong Ba Dinh, TP. HN"), today=TODAY)
    assert cleaned.findings == () and cleaned.enriched["address.units"] == {"province_2025": "01", "ward_2025": "00004"}


def test_cleaning_never_loads_the_address_converter_package():
    clean_subscriber(subscriber(address="12 Hàng Bột, Phường Cống Vị, Quận Ba Đình, Hà Nội"), today=TODAY)
    assert "vietnamadminunits" not in sys.modules
