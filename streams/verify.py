"""Verification without data: an agency's identity details in, a verdict and an agree/disagree mask out.

Pure: no Faust, no Kafka. An agency approved for verification (a subscription in mode ``verify``
to the registry dataset) sends what it holds of a person: personal id, full name, birth date and any
other field its approval lists. Each request is answered with

    {"request_id": "r1", "verdict": "MATCHED" | "MISMATCH" | "NOT_FOUND",
     "mask": {"personal_id": true, "full_name": true, "birth_date": false, "phone": null}}

or, for a request that cannot be verified, ``{"request_id": "r1", "error": "..."}``; nothing else.
No registry value, no other person's id, no probability, and never a search: a search answers
"who is this?", which is exactly what an agency approved to verify may not learn.

The rules are the stream's:

- the verdict is the programme's three-field check (`streams.matching.exact.check`, what the match
  stage starts from): MATCHED, MISMATCH or NOT_FOUND; names compared by `name_key`. The
  probabilistic matcher is not asked: a MISMATCH stays a MISMATCH (a steward's review is the
  stream's business, not an answer to an agency);
- before that, every supplied value is cleaned the way the clean stage cleans the registry itself:
  the registry dataset's cleaning contract (`streams.contracts`) restricted to the supplied fields
  and to its "fix" rules, so "NGUYỄN  văn an", "15/03/1990", "001 099 000 123", "+84 912 345 678" or
  a pre-2025 province code compare as the registry's own cleaned values do. Rules that only warn or
  reject change no value and are skipped. Cleaning is most of what a verification costs here
  (about 35-40 µs a request on the generated telecom requests, the bare check 3-4 µs: see
  gsp/tools/bench/verification.py), and little next to a round trip through Kafka;
- the mask: personal_id true when the registry holds the id (false for NOT_FOUND, and then every
  other field null: there is nobody to compare with); full_name and birth_date as the check
  compared them; any other field true when its cleaned value equals the registry's (NFC, case
  folded, spaces collapsed), false when it differs, null when the registry holds no value.

Extra fields (phone, province_code: the registry fields linked datasets map, `RegistryEntries`)
are compared against the values the worker keeps per citizen in its exact map
(`streams.matching.Linker.entry`, or the registry table with GSP_LINKAGE_MODEL=off), not through
the linkage model's comparison levels (`Linker.pair`). Why: the model's levels for phone and
province are a single "exact" level over normal forms (a 10-digit national number, a 2025 province)
the cleaning contract also produces, so for any value both can read the answer is the same; but `pair` scores only the living (a death takes a person out of the
search index), needs the model loaded (it may be off), and its fuzzy levels for names and dates
are degrees of likeness, which an answer of agree/disagree must not turn into. Keeping the extra
values costs about 75 bytes per citizen in every worker's replica (860 -> 934 B per citizen at
19,783 citizens, +9%: a phone string each, province codes shared), measured by
gsp/tools/bench/verification.py on the replica as a worker fills it from the registry changelog.

A request is checked before it is verified (`invalid`): a request_id, the three required fields,
only fields the approval lists, strings only, none longer than `MAX_VALUE`. An invalid request
gets an error answer of its own; the rest of the batch is answered.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from schemas.datasets import Dataset, FieldRef
from streams.contracts import Contract, contract_of
from streams.matching import THREE_FIELDS, Lookup, RegistryEntries, check

__all__ = ["MAX_BATCH", "MAX_VALUE", "MODES", "REQUEST_ID", "REQUIRED", "STREAM", "VERIFY", "Verifier", "error_answer",
           "invalid", "split", "verifiable_fields"]

STREAM, VERIFY = "stream", "verify"  # a subscription's modes: records delivered, or identity details verified
MODES = (STREAM, VERIFY)
REQUIRED = THREE_FIELDS  # every request supplies them, every verify approval lists them
MAX_BATCH = 10_000  # requests in one HTTP call or one Kafka message
MAX_VALUE = 200  # characters of one value: a name, a phone, a code; anything longer is not identity data
REQUEST_ID = "request_id"
_FIX = "fix"


def invalid(request: Any, approved: Collection[str]) -> str | None:
    """Why ``request`` (a flat mapping: request_id and field values) cannot be verified under an approval of
    ``approved`` fields; None when it can. The message names the field, never its value."""
    if not isinstance(request, Mapping):
        return "a request must be an object of request_id and field values"
    request_id = request.get(REQUEST_ID)
    if not isinstance(request_id, str) or not request_id.strip():
        return f"{REQUEST_ID}: a non-empty string is required"
    for name, value in request.items():
        if name == REQUEST_ID:
            continue
        if name not in approved:
            return f"{name}: not a field of this approval; it lists {', '.join(approved)}"
        if value is not None and not isinstance(value, str):
            return f"{name}: must be a string"
        if isinstance(value, str) and len(value) > MAX_VALUE:
            return f"{name}: longer than {MAX_VALUE} characters"
    missing = [name for name in REQUIRED if not _given(request.get(name))]
    if missing:
        return f"{', '.join(missing)}: required"
    return None


def error_answer(request: Any, error: str) -> dict[str, Any]:
    """The answer to a request that was not verified: its own id (when it sent a string one) and why."""
    request_id = request.get(REQUEST_ID) if isinstance(request, Mapping) else None
    return {REQUEST_ID: request_id if isinstance(request_id, str) else None, "error": error}


def split(request: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(request_id, field values) of a flat request."""
    return request.get(REQUEST_ID), {k: v for k, v in request.items() if k != REQUEST_ID}


def verifiable_fields(registry: Dataset, linked: Iterable[Dataset]) -> tuple[str, ...]:
    """What an agency may be approved to verify: personal_id, full_name, birth_date, then the registry fields
    linked datasets map (phone, province_code, ...): the ones every worker keeps per citizen."""
    return ("personal_id", *RegistryEntries(registry, linked).fields)


class Verifier:
    """The registry's verification rules: what may be verified, and the answer to each request."""

    def __init__(self, registry: Dataset, linked: Iterable[Dataset]) -> None:
        entries = RegistryEntries(registry, linked := list(linked))
        self.fields = verifiable_fields(registry, linked)
        self._refs = {"personal_id": FieldRef(entries.key), **{name: FieldRef(entries.path(name))
                                                                for name in entries.fields}}
        self._contract = contract_of(registry)
        self._fixes: dict[frozenset[str], Contract] = {}  # supplied fields -> the contract's fixes of those fields

    def verify(self, requests: Sequence[Any], approved: Collection[str], lookup: Lookup) -> list[dict[str, Any]]:
        """One answer per request, in order: an invalid one gets its error, the others their verdict and mask."""
        out = []
        for request in requests:
            problem = invalid(request, approved)
            out.append(error_answer(request, problem) if problem else self.answer(request, lookup))
        return out

    def answer(self, request: Mapping[str, Any], lookup: Lookup) -> dict[str, Any]:
        """The answer to one valid request (see `invalid`)."""
        request_id, given = split(request)
        values = self._cleaned({name: value for name, value in given.items() if _given(value)})
        checked = check(values["personal_id"], values["full_name"], values["birth_date"], lookup)
        mask: dict[str, bool | None] = dict.fromkeys(values)
        mask["personal_id"] = checked.found
        if checked.found:
            for name in checked.agreeing:
                mask[name] = True
            for name in checked.disagreeing:
                mask[name] = False
            extras = [name for name in values if name not in REQUIRED]
            entry = lookup(values["personal_id"]) if extras else None
            for name in extras:
                mask[name] = _agrees(values[name], None if entry is None else entry.get(name))
        return {REQUEST_ID: request_id, "verdict": str(checked.verdict), "mask": mask}

    def _cleaned(self, values: Mapping[str, str]) -> dict[str, str]:
        """The supplied values as the clean stage would have left them in a registry record."""
        record: dict[str, Any] = {}
        for name, value in values.items():
            _put(record, self._refs[name].path, value)
        supplied = frozenset(values)
        fixes = self._fixes.get(supplied)
        if fixes is None:
            fixes = self._fixes[supplied] = _fixes_only(self._contract, {self._refs[name].path for name in supplied})
        fixed = fixes.clean(record).record
        out = {}
        for name, original in values.items():
            value = self._refs[name].value(fixed)
            out[name] = value if isinstance(value, str) else original
        return out


def _fixes_only(contract: Contract, paths: Collection[str]) -> Contract:
    """The contract's fields at ``paths`` with their "fix" rules only: what rewrites a value. Presence and links
    are dropped (a request is not a whole record), and so are rules that only warn or reject."""
    fields = tuple(dataclasses.replace(spec, severities={r: s for r, s in spec.severities.items() if s == _FIX},
                                       presence="optional", links={}, enrich=frozenset())
                   for spec in contract.fields if spec.type is not None and spec.path in paths)
    return dataclasses.replace(contract, fields=fields)


def _put(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = record
    for step in parents:
        target = target.setdefault(step, {})
    target[last] = value


def _given(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _key(value: str) -> str:
    """How an extra field's values are compared: NFC, case folded, spaces collapsed (the linkage model's exact form)."""
    return unicodedata.normalize("NFC", " ".join(value.split())).casefold()


def _agrees(given: str, held: Any) -> bool | None:
    """True when the registry holds the same value, False when it holds another, None when it holds none."""
    if not isinstance(held, str) or not held.strip():
        return None
    return _key(given) == _key(held)
