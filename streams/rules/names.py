"""Vietnamese personal names: normal form, comparison keys, parts, and the name rules.

Comparison keys use ONE tone-placement convention, the modern one of Decision 1989/QĐ-BGDĐT
(25 May 2018, Art. 8, as the 1984 spelling rules before it): the tone mark sits on the main
vowel, so open "oa", "oe", "uy" carry it on the second letter ("hoà", "khoẻ", "thuỷ"), while
"ia", "ua", "ưa" keep it on the first ("bìa", "lụa", "lửa"). "Hòa" and "Hoà" get the same key.
The stored name is never re-toned: the legal form is whatever the registry holds.

Huỳnh/Hoàng and Vũ/Võ are regional forms of one surname: `regional_variant` says so for
matching, and no rule ever rewrites one into the other.
"""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache
from typing import NamedTuple

from streams import reference
from streams.rules.base import Check, Context, FieldType, Rule
from streams.rules.encodings import looks_legacy_encoded, repair_mojibake

__all__ = ["NAME", "NameParts", "folded_key", "lacks_diacritics", "name_key", "normalize_name",
           "regional_variant", "split_name"]

_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng
_VOWELS = frozenset("aăâeêioôơuưy")
_QUALITY = frozenset("ăâêôơư")
_INVISIBLE = {0x200B: " ", 0x200C: None, 0x200D: None, 0x2060: None, 0xFEFF: None}
_REGIONAL = {"hoàng": "huỳnh", "huỳnh": "hoàng", "vũ": "võ", "võ": "vũ"}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _one_char(mapped: str, original: str) -> str:
    # "ß".upper() is "SS" and "İ".lower() is two code points: keeping such letters as they are
    # keeps the rule idempotent; no Vietnamese letter is affected.
    return mapped if len(mapped) == 1 else original


@lru_cache(maxsize=1 << 14)  # words repeat: a few hundred syllables make most names
def _capitalise(word: str) -> str:
    head = _one_char(word[0].upper(), word[0])
    return head + "".join(_one_char(c.lower(), c) for c in word[1:])


def normalize_name(text: str) -> str:
    """NFC, single spaces, each word capitalised: "  nguyễn  VĂN hòa" -> "Nguyễn Văn Hòa".

    Invisible characters copied from web forms go: a zero-width space separates words, a
    zero-width joiner or a byte-order mark is dropped.
    """
    text = text.translate(_INVISIBLE)
    for _ in range(4):  # case mapping can create a new NFC composition; settle on a fixed point
        step = _nfc(" ".join(_capitalise(w) for w in _nfc(text).split()))
        if step == text:
            break
        text = step
    return text


def _tone_position(nucleus: str, *, closed: bool) -> int:
    marked = [i for i, c in enumerate(nucleus) if c in _QUALITY]
    if marked:
        return marked[-1]  # "ươ" -> ơ, "uê" -> ê, "ưa" -> ư
    if len(nucleus) == 1:
        return 0
    if closed:
        return len(nucleus) - 1  # "hoàn", "huỳnh"
    if len(nucleus) >= 3:
        return 1  # "hoài", "khuỷu"
    return 1 if nucleus in ("oa", "oe", "uy") else 0


@lru_cache(maxsize=1 << 14)
def _retone(syllable: str) -> str:
    """A lower-case syllable with its tone mark where the modern convention puts it."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tones = [c for c in decomposed if c in _TONES]
    if len(tones) != 1:
        return syllable
    bare = _nfc("".join(c for c in decomposed if c not in _TONES))
    start = next((i for i, c in enumerate(bare) if c in _VOWELS), None)
    if start is None or not bare.isalpha():
        return syllable
    following = start + 1 < len(bare) and bare[start + 1] in _VOWELS
    if following and start > 0 and (bare[start - 1:start + 1] in ("qu", "gi")):
        start += 1  # "qu" and "gi" are consonants: "quý", "giá"
    end = start
    while end < len(bare) and bare[end] in _VOWELS:
        end += 1
    at = start + _tone_position(bare[start:end], closed=end < len(bare))
    return _nfc(bare[:at + 1] + tones[0] + bare[at + 1:])


def name_key(name: str) -> str:
    """Comparison key: NFC, spaces collapsed, case folded, tone marks placed by one convention."""
    return _nfc(" ".join(_retone(w) for w in _nfc(name).casefold().split()))


def folded_key(name: str) -> str:
    """Weaker key: `name_key` without any mark, Đ/đ folded to d ("Hương", "Hướng" -> "huong")."""
    decomposed = unicodedata.normalize("NFD", name_key(name))
    return _nfc("".join(c for c in decomposed if not unicodedata.combining(c)).replace("đ", "d"))


class NameParts(NamedTuple):
    family: str  # "Nguyễn"; "" for a one-word name
    middle: str  # "Văn" or "Thị Thu"; "" when there is none
    given: str  # the last word: the name a person is called by


def split_name(name: str) -> NameParts:
    """Family name first, given name last, everything between is the middle name."""
    words = normalize_name(name).split()
    if len(words) < 2:
        return NameParts("", "", words[0] if words else "")
    return NameParts(words[0], " ".join(words[1:-1]), words[-1])


def regional_variant(family: str) -> str | None:
    """The other regional form of a surname ("Huỳnh" -> "Hoàng", "Võ" -> "Vũ"): weak evidence only."""
    other = _REGIONAL.get(normalize_name(family).casefold())
    return None if other is None else normalize_name(other)


@cache
def _syllables() -> tuple[frozenset[str], frozenset[str]]:
    """(syllables written without marks, folded syllables that are always written with marks)."""
    plain = {name_key(s) for s in reference.name_syllables() if name_key(s) == folded_key(s)}
    marked = {folded_key(s) for s in reference.name_syllables()} - plain
    return frozenset(plain), frozenset(marked)


def lacks_diacritics(name: str) -> bool:
    """True for a Vietnamese name typed without its marks ("Nguyen Van Hoa"), not for "Lan Anh"."""
    if not name.isascii():
        return False
    words = name_key(name).split()
    if len(words) < 2:
        return False
    plain, marked = _syllables()
    return all(w in plain or w in marked for w in words) and any(w in marked for w in words)


def _check_name(check: Check, ctx: Context) -> None:
    value = check.value
    if not isinstance(value, str):
        check.flag("name.missing", f"{check.field} is missing")
        return
    repaired = repair_mojibake(value)
    if repaired is None and not value.isascii():
        repaired = repair_mojibake(normalize_name(value))  # a case change can make mojibake of garbage
    if repaired is not None:
        check.fix("name.mojibake", f"{check.field} was mis-decoded (UTF-8 read as Windows-1252, or Ð for Đ); "
                                   "repaired", repaired)
    if check.wants("name.legacy_encoding") and looks_legacy_encoded(check.value):
        check.flag("name.legacy_encoding",
                   f"{check.field} has letters outside Vietnamese: a TCVN3 or VNI legacy encoding? kept as given")
        return
    normal = normalize_name(check.value)
    if normal != check.value:
        check.fix("name.normalize", f"{check.field} normalised (NFC, spacing, capitals)", normal)
    if not normal:
        check.flag("name.missing", f"{check.field} is empty")
    elif lacks_diacritics(check.value):
        check.flag("name.no_diacritics", f"{check.field} looks typed without diacritics")


_LAW_ID = "Law on Identification 26/2023/QH15 Art. 9 (full name in the population database)"
_UNICODE = "TCVN 6909:2001 (Unicode), required by Decision 72/2002/QĐ-TTg and Decree 30/2020/NĐ-CP"

NAME = FieldType("name", _check_name, (
    Rule("name.missing", "the name is absent or empty", _LAW_ID),
    Rule("name.mojibake", "UTF-8 text that was decoded as Windows-1252/Latin-1 ('Nguyá»…n'): decoded again",
         _UNICODE, fixes=True),
    Rule("name.legacy_encoding", "letters no Vietnamese name has (TCVN3/ABC or VNI bytes): kept as given",
         "TCVN 5712:1993 (TCVN3) and VNI, superseded by " + _UNICODE),
    Rule("name.normalize", "NFC, single spaces, each word capitalised", _UNICODE + "; Unicode UAX #15", fixes=True),
    Rule("name.no_diacritics", "every word is a Vietnamese syllable typed without its marks",
         "engineering heuristic over common name syllables (streams/reference/name_syllables.csv)"),
))
