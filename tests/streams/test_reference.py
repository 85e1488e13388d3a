import unicodedata

from streams import reference

# Resolution 202/2025/QH15: 2025 province code <- pre-2025 id prefixes of its constituents.
MERGERS = {
    "01": {"001"}, "04": {"004"}, "08": {"002", "008"}, "11": {"011"}, "12": {"012"}, "14": {"014"},
    "15": {"010", "015"}, "19": {"006", "019"}, "20": {"020"}, "22": {"022"}, "24": {"024", "027"},
    "25": {"017", "025", "026"}, "31": {"030", "031"}, "33": {"033", "034"},
    "37": {"035", "036", "037"}, "38": {"038"}, "40": {"040"}, "42": {"042"}, "44": {"044", "045"},
    "46": {"046"}, "48": {"048", "049"}, "51": {"051", "062"}, "52": {"052", "064"},
    "56": {"056", "058"}, "66": {"054", "066"}, "68": {"060", "067", "068"}, "75": {"070", "075"},
    "79": {"074", "077", "079"}, "80": {"072", "080"}, "82": {"082", "087"},
    "86": {"083", "084", "086"}, "91": {"089", "091"}, "92": {"092", "093", "094"}, "96": {"095", "096"},
}


def test_there_are_63_legacy_provinces_with_distinct_prefixes_from_001_to_096():
    prefixes = [p.id_prefix for p in reference.legacy_provinces()]
    assert len(prefixes) == len(set(prefixes)) == 63
    assert all(len(p) == 3 and p.isdigit() and "001" <= p <= "096" for p in prefixes)


def test_there_are_34_provinces_of_2025():
    codes = [p.code for p in reference.provinces_2025()]
    assert len(codes) == len(set(codes)) == 34


def test_every_legacy_province_maps_to_an_existing_2025_province():
    for legacy in reference.legacy_provinces():
        assert reference.province_2025(legacy.successor) is not None, legacy


def test_mergers_follow_resolution_202_2025():
    merged = {p.code: {q.id_prefix for q in reference.predecessors(p.code)} for p in reference.provinces_2025()}
    assert merged == MERGERS


def test_each_2025_province_kept_the_code_of_one_constituent():
    for province in reference.provinces_2025():
        assert "0" + province.code in {p.id_prefix for p in reference.predecessors(province.code)}


def test_trap_prefixes_decode_to_the_legacy_province_not_the_2025_one():
    traps = {
        "015": ("Yên Bái", "Lào Cai"), "024": ("Bắc Giang", "Bắc Ninh"), "044": ("Quảng Bình", "Quảng Trị"),
        "052": ("Bình Định", "Gia Lai"), "080": ("Long An", "Tây Ninh"), "082": ("Tiền Giang", "Đồng Tháp"),
        "091": ("Kiên Giang", "An Giang"),
    }
    for prefix, (legacy_name, new_name) in traps.items():
        legacy = reference.legacy_province(prefix)
        assert legacy is not None and legacy.name == legacy_name
        assert legacy.successor == prefix[1:]
        new = reference.province_2025(prefix[1:])
        assert new is not None and new.name == new_name


def test_gaps_and_2025_codes_are_not_prefixes():
    assert reference.legacy_province("003") is None
    assert reference.legacy_province("097") is None
    assert reference.legacy_province("15") is None
    assert reference.province_2025("015") is None


def test_there_are_3321_wards_each_in_an_existing_province():
    wards = reference.wards_2025()
    assert len(wards) == len({w.code for w in wards}) == 3321
    assert all(reference.province_2025(w.province_code) is not None for w in wards)
    assert sum(len(reference.wards_2025(p.code)) for p in reference.provinces_2025()) == 3321


def test_ward_lookup():
    ward = reference.ward_2025("00004")
    assert ward is not None and ward.name == "Phường Ba Đình" and ward.province_code == "01"
    assert reference.wards_2025("99") == ()


def test_names_are_nfc():
    names = [p.name for p in reference.legacy_provinces()] + [w.name for w in reference.wards_2025()]
    assert all(unicodedata.is_normalized("NFC", n) for n in names)


def test_the_2018_mobile_switch_table():
    table = {
        "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078",
        "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",
        "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036", "0167": "037",
        "0168": "038", "0169": "039", "0186": "056", "0188": "058", "0199": "059",
    }
    assert {old: reference.new_mobile_prefix(old) for old in table} == table
    assert {m.legacy_prefix for m in reference.mobile_prefixes() if m.legacy_prefix} == set(table)
    assert reference.new_mobile_prefix("0912") is None


def test_current_mobile_prefixes():
    prefixes = {m.prefix: m.carrier for m in reference.mobile_prefixes()}
    assert len(prefixes) == len(reference.mobile_prefixes())
    for prefix in ("086", "096", "097", "098", "032", "039", "070", "079", "081", "085", "088", "089",
                   "090", "093", "091", "094", "056", "058", "059", "099", "087", "092", "052"):
        assert prefix in prefixes
    assert prefixes["032"] == prefixes["086"] == "Viettel"
    assert prefixes["070"] == "MobiFone" and prefixes["083"] == "VinaPhone"
    assert reference.mobile_prefix("012") is None
