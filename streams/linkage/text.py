"""Comparison forms of Vietnamese identity values: names, dates, id numbers, phones, provinces.

Each function turns one raw value into the plain keys the comparators work on, and never
raises. Three forms of a name token, from strongest to weakest evidence:

- exact: NFC and case folded ("Hòa" and NFD "Hòa" are equal, "Hòa" and "Hoà" are not);
- tone: the tone mark taken off its vowel and written after the syllable, so the old and new
  placements agree ("hoà", "hòa" -> "hoa`") while different tones stay apart ("hương", "hường");
- folded: every mark stripped and Đ/đ folded to d ("Đặng" -> "dang"); merges Hương, Hưởng, Hướng.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from streams import reference
from streams.clean import normalize_phone

__all__ = ["NameParts", "TokenForms", "parse_date", "parse_id", "parse_name", "phone_number",
           "province_code", "token_forms"]

# The five tone marks; circumflex, breve and horn change the vowel itself and are kept.
_TONES = {"\u0300": "`", "\u0301": "'", "\u0303": "~", "\u0309": "?", "\u0323": "."}
_D_FOLD = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d"})  # Ð (eth) is a common mistype


@dataclass(frozen=True, slots=True)
class TokenForms:
    exact: str
    tone: str
    folded: str


@lru_cache(maxsize=1 << 16)
def token_forms(token: str) -> TokenForms:
    """The three comparison forms of one name token (already NFC and case folded)."""
    decomposed = unicodedata.normalize("NFD", token)
    tones = "".join(_TONES[c] for c in decomposed if c in _TONES)
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return TokenForms(token, base + tones, bare.translate(_D_FOLD).casefold())


@dataclass(frozen=True, slots=True)
class NameParts:
    """A name in legal order split into family (first token), middle and given (last token)."""

    family: TokenForms | None  # None for a one-token name
    middle: TokenForms  # "" when there is none; several tokens joined by one space
    given: TokenForms | None  # None for an empty name
    full: TokenForms


_EMPTY = TokenForms("", "", "")


def _join(forms: list[TokenForms]) -> TokenForms:
    if not forms:
        return _EMPTY
    if len(forms) == 1:
        return forms[0]
    return TokenForms(" ".join(f.exact for f in forms), " ".join(f.tone for f in forms),
                      " ".join(f.folded for f in forms))


def _exact(text: str) -> str:
    # NFC, case folded, spaces collapsed; unlike streams.clean.name_key the tone placement is
    # kept, so that the "exact" and "tone" levels stay apart
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


@lru_cache(maxsize=1 << 16)
def parse_name(raw: str) -> NameParts | None:
    """Family, middle and given name of a full name; None when there is no name at all."""
    tokens = [token_forms(t) for t in _exact(raw).split()]
    if not tokens:
        return None
    family = tokens[0] if len(tokens) > 1 else None
    return NameParts(family, _join(tokens[1:-1]), tokens[-1], _join(tokens))


_ISO = re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})")
_DMY = re.compile(r"([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4})")
_YEAR = re.compile(r"[0-9]{4}")


def parse_date(raw: object, form: str | None = None) -> tuple[int, int, int]:
    """(year, month, day) of a birth date; month and day 0 for a year alone, all 0 if unreadable.

    With ``form`` (a `strptime` format, "%Y%m%d") only that format is read. Without it: yyyy-mm-dd,
    dd/mm/yyyy and yyyy. A month above 12 next to a day of 12 or less is the month/day order of
    another system and is read the other way round; a swap that still looks like a valid date
    cannot be seen here and is a comparison level instead.
    """
    if not isinstance(raw, str):
        return 0, 0, 0
    text = raw.strip()
    if form is not None:
        return _strptime(text, form)
    if _YEAR.fullmatch(text):
        return int(text), 0, 0
    if m := _ISO.fullmatch(text):
        year, month, day = (int(p) for p in m.groups())
    elif m := _DMY.fullmatch(text):
        day, month, year = (int(p) for p in m.groups())
    else:
        return 0, 0, 0
    if month > 12 and day <= 12:
        month, day = day, month
    if not (1 <= month <= 12 and 1 <= day <= 31 and year >= 1800):
        return (year, 0, 0) if year >= 1800 else (0, 0, 0)
    return year, month, day


@lru_cache(maxsize=1 << 16)
def _strptime(text: str, form: str) -> tuple[int, int, int]:
    try:
        parsed = datetime.strptime(text, form)
    except ValueError:
        return 0, 0, 0
    return (parsed.year, 0, 0) if "%m" not in form and "%b" not in form and "%B" not in form else (
        parsed.year, parsed.month, parsed.day)


_ID_SEPARATORS = re.compile(r"[\s.\-]")


def parse_id(raw: object) -> tuple[int, int]:
    """(number, digit count) of a 12-digit personal id or a 9-digit CMND; (0, 0) otherwise."""
    if not isinstance(raw, str):
        return 0, 0
    digits = _ID_SEPARATORS.sub("", raw)
    if not (digits.isascii() and digits.isdigit() and len(digits) in (9, 12)):
        return 0, 0
    return int(digits), len(digits)


def phone_number(raw: object) -> int:
    """The 10-digit national mobile number as an integer (11-digit 2018 numbers converted); 0 if none."""
    if not isinstance(raw, str):
        return 0
    normal = normalize_phone(raw)
    return int(normal) if normal else 0


def _place_key(text: str) -> str:
    folded = token_forms(unicodedata.normalize("NFC", text).casefold()).folded
    for prefix in ("thanh pho ", "tp. ", "tp ", "tinh "):
        folded = folded.removeprefix(prefix)
    return "".join(c for c in folded if c.isalnum())


@lru_cache(maxsize=1)
def _provinces() -> dict[str, int]:
    keys: dict[str, int] = {}
    for old in reference.legacy_provinces():  # legacy first, so a 2025 name wins a shared key
        for text in (old.name, old.official_name):
            keys[_place_key(text)] = int(old.successor)
        keys[old.id_prefix] = int(old.successor)
    for new in reference.provinces_2025():
        for text in (new.name, new.official_name):
            keys[_place_key(text)] = int(new.code)
        keys[new.code] = int(new.code)
    return keys


@lru_cache(maxsize=1 << 12)
def province_code(raw: object) -> int:
    """The 2025 province (as an integer code) a province name or code refers to; 0 if unknown.

    Pre-2025 names ("Yên Bái") and id prefixes ("015") map to their 2025 successor (Lào Cai,
    15); 2025 names and two-digit codes map to themselves. Case, marks and "Tỉnh"/"TP" ignored.
    """
    if not isinstance(raw, str) or not raw.strip():
        return 0
    text = raw.strip()
    if text.isdigit():
        return _provinces().get(text, 0)
    return _provinces().get(_place_key(text), 0)
