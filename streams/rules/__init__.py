"""Rules for Vietnamese identity data: pure functions, and the field types contracts apply them through.

Each module owns one kind of value and exports its functions plus the `FieldType`s a contract
can give a field (``"type": "personal_id"``); `FIELD_TYPES` lists them all, `RULES` every rule
by id. A type may read a ``"format"`` its field declares (`FieldType.format_problem`): ``date``
takes strptime formats, ``code`` requires regular expressions, the others take none. Nothing
here imports Faust or Kafka or touches the network.
"""

from __future__ import annotations

from streams.rules.addresses import ADDRESS, PROVINCE_CODE, WARD_CODE, AddressMatch, parse_address
from streams.rules.base import FIX, REJECT, SEVERITIES, WARN, Cleaned, FieldType, Finding, Rule
from streams.rules.codes import CODE, normalize_code
from streams.rules.dates import DATE, ParsedDate, parse_date
from streams.rules.encodings import looks_legacy_encoded, repair_mojibake
from streams.rules.ids import ID_PREFIX, PERSONAL_ID, PersonalId, birth_province, decode_personal_id
from streams.rules.names import (
                                 NAME,
                                 NameParts,
                                 folded_key,
                                 lacks_diacritics,
                                 name_key,
                                 normalize_name,
                                 regional_variant,
                                 split_name,
)
from streams.rules.phones import PHONE, normalize_phone, phone_problem
from streams.rules.sexes import FEMALE, MALE, SEX, normalize_sex
from streams.rules.units import ProvinceMatch, resolve_province, resolve_province_code

__all__ = [
    "FEMALE", "FIELD_TYPES", "FIX", "MALE", "REJECT", "RULES", "SEVERITIES", "WARN",
    "AddressMatch", "Cleaned", "FieldType", "Finding", "NameParts", "ParsedDate", "PersonalId", "ProvinceMatch", "Rule",
    "birth_province", "decode_personal_id", "folded_key", "lacks_diacritics", "looks_legacy_encoded", "name_key",
    "normalize_code", "normalize_name", "normalize_phone", "normalize_sex", "parse_address", "parse_date",
    "phone_problem", "regional_variant", "repair_mojibake", "resolve_province", "resolve_province_code", "split_name",
]

FIELD_TYPES: dict[str, FieldType] = {t.name: t for t in (
    NAME, PERSONAL_ID, ID_PREFIX, DATE, SEX, CODE, PHONE, PROVINCE_CODE, WARD_CODE, ADDRESS,
)}

RULES: dict[str, Rule] = {r.id: r for t in FIELD_TYPES.values() for r in t.rules}
