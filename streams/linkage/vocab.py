"""Interned strings: the registry's permanent codes, and a batch's local codes for new values."""

from __future__ import annotations

__all__ = ["BatchEncoder", "Interner", "Vocab"]


class Vocab:
    """Strings seen in the registry, each with a permanent code >= 0 (never reused)."""

    __slots__ = ("codes", "strings")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.strings: list[str] = []

    def intern(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.strings)
            self.strings.append(value)
        return code

    def __len__(self) -> int:
        return len(self.strings)


class Interner:
    """The registry's encoder: every value gets a permanent code."""

    def __init__(self, vocabs: dict[str, Vocab]) -> None:
        self._vocabs = vocabs

    def code(self, vocab: str, value: str) -> int:
        v = self._vocabs.get(vocab)
        if v is None:
            v = self._vocabs[vocab] = Vocab()
        return v.intern(value)

    def string(self, vocab: str, code: int) -> str:
        return self._vocabs[vocab].strings[code]


class BatchEncoder:
    """A batch of records' encoder: registry codes where known, else local codes -2, -3, ...

    A local code equals no registry code, so unseen values never agree exactly, but their
    strings stay available to Jaro-Winkler and to initials. The registry is not changed.
    """

    def __init__(self, vocabs: dict[str, Vocab]) -> None:
        self._vocabs = vocabs
        self._local: dict[str, dict[str, int]] = {}
        self._local_strings: dict[str, list[str]] = {}

    def code(self, vocab: str, value: str) -> int:
        v = self._vocabs.get(vocab)
        code = v.codes.get(value) if v is not None else None
        if code is not None:
            return code
        local = self._local.setdefault(vocab, {})
        code = local.get(value)
        if code is None:
            strings = self._local_strings.setdefault(vocab, [])
            code = local[value] = -2 - len(strings)
            strings.append(value)
        return code

    def string(self, vocab: str, code: int) -> str:
        if code >= 0:
            return self._vocabs[vocab].strings[code]
        return self._local_strings[vocab][-2 - code]
