"""Text that went through the wrong character encoding on its way to us.

Two cases are told apart:

- UTF-8 bytes decoded as Windows-1252 or Latin-1 ("Nguyá»…n" for "Nguyễn"). This is reversible:
  encode back, decode as UTF-8. The repair is accepted only when every letter it yields is a
  Vietnamese one, which also makes it a fixed point (a repaired name is never repaired again).
- Legacy 8-bit Vietnamese encodings, TCVN3/ABC (TCVN 5712:1993) and VNI, shown through a
  Latin-1 font ("NguyÔn V¨n Hßa", "Nguyeãn Vaên Hoøa"). Decoding them needs to know which font the
  source used, so they are only detected: symbols and letters that no Vietnamese name has, or a
  Latin-1 capital in the middle of a word.
"""

from __future__ import annotations

import unicodedata
from itertools import pairwise

__all__ = ["VIETNAMESE_LETTERS", "looks_legacy_encoded", "repair_mojibake"]


def _letters() -> frozenset[str]:
    bases = "aăâeêioôơuưy"
    tones = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
    lower = {unicodedata.normalize("NFC", b + t) for b in bases for t in tones} | {"đ"}
    return frozenset(lower | {c.upper() for c in lower})


VIETNAMESE_LETTERS = _letters()  # every precomposed letter of the alphabet, with its tone, both cases
_NON_ASCII = frozenset(c for c in VIETNAMESE_LETTERS if not c.isascii())

# TCVN3 puts lower-case letters on Latin-1's symbols; no Vietnamese word has these Latin-1 letters
# (both cases, so that a change of case never changes the verdict).
_SUSPECT = frozenset("".join(chr(c) for c in range(0xA1, 0xC0)) + "×÷äåæçëîïðñöøûüþÿßÄÅÆÇËÎÏÐÑÖØÛÜÞŸẞ")
_LATIN1_CAPITALS = frozenset(chr(c) for c in range(0xC0, 0xDF))
_ENCODABLE = frozenset(chr(c) for c in range(0x100)) | frozenset(
    bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D))


def _windows_1252_bytes(text: str) -> bytes | None:
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            if ord(char) > 0xFF:
                return None
            out.append(ord(char))  # the five bytes Windows-1252 leaves undefined decode as C1 controls
    return bytes(out)


def repair_mojibake(text: str) -> str | None:
    """The text as written when it is UTF-8 decoded as Windows-1252 or Latin-1 (or has Ð for Đ), else None."""
    if text.isascii():
        return None
    if "\u00d0" in text or "\u00f0" in text:  # Icelandic eth typed for Đ/đ: the same glyph, another letter
        text = text.replace("\u00d0", "Đ").replace("\u00f0", "đ")
        if all(c.isascii() or c in _NON_ASCII for c in unicodedata.normalize("NFC", text)):
            return unicodedata.normalize("NFC", text)
    if not _ENCODABLE.issuperset(text):
        return None  # a letter beyond Windows-1252 ("ễ"): not mojibake
    raw = _windows_1252_bytes(text)
    if raw is None:
        return None
    try:
        repaired = unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if repaired == text or not all(c.isascii() or c in _NON_ASCII for c in repaired):
        return None
    return repaired


def looks_legacy_encoded(text: str) -> bool:
    """True when the text has symbols or letters of a TCVN3/VNI name seen through a Latin-1 font."""
    text = unicodedata.normalize("NFC", text)
    if not _SUSPECT.isdisjoint(text):
        return True
    if _LATIN1_CAPITALS.isdisjoint(text):
        return False
    # TCVN3's "NguyÔn": a Latin-1 capital inside a word
    return any(c in _LATIN1_CAPITALS and p.islower() for p, c in pairwise(text))
