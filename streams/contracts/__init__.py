"""Cleaning contracts: which fields a dataset has, which rules run on them, with which severity.

A contract is the ``cleaning`` section of a dataset's declaration (`schemas.datasets`)::

    "cleaning": {"version": 1, "fields": [
       {"field": "id_number", "type": "personal_id", "presence": "required",
        "links": {"birth_date": "birth_date"},
        "rules": {"id.shape": "reject", "id.legacy_cmnd": "warn", "id.birthyear": "warn"},
        "enrich": ["id.birth_province"]},
       {"field": "carrier", "presence": "required"}]}

``type`` is one of `streams.rules.FIELD_TYPES`; ``rules`` maps rule ids of that type to
``reject``, ``fix`` or ``warn``; ``presence`` is ``required``, ``expected`` or ``optional``;
``links`` names the other fields a type reads; ``format`` (a string or a list of them) is the
source's own form for the types that read one: strptime formats for ``date`` (``"%Y%m%d"``), a
regular expression the whole value must match for ``code``, which requires it. Every field path must exist in the dataset's
Avro record (its own, for a declaration that carries the record inline). The loader refuses a
contract with a one-line `ContractError` naming the file and, for a typo, the nearest valid name.
`parse_contract` also reads a contract standing alone, ``{"dataset", "version", "schema", "doc",
"fields"}``, its schema a record in ``schemas/avro``.
"""

from __future__ import annotations

import json
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from schemas.datasets import Dataset, catalog
from streams.contracts.model import PRESENCES, Contract, FieldSpec
from streams.contracts.schema import record_paths, schema_paths
from streams.rules import FIELD_TYPES, RULES, SEVERITIES, FieldType

__all__ = ["Contract", "ContractError", "FieldSpec", "contract_of", "datasets", "load_contract", "parse_contract"]

_TOP_KEYS = ("dataset", "version", "schema", "doc", "fields")
_FIELD_KEYS = ("field", "type", "presence", "rules", "links", "enrich", "format")


class ContractError(ValueError):
    """A contract file is missing or invalid; the message is one line naming the file."""


def _near(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def datasets(extra: Path | None = None) -> tuple[str, ...]:
    """Every declared dataset (each has a contract), sorted; ``extra`` is GSP_DATASETS_DIR."""
    return tuple(sorted(catalog(extra)))


# By name and declaration file: two directories may declare different datasets of one name in turn (tests do).
_CONTRACTS: dict[tuple[str, str], Contract] = {}


def contract_of(dataset: Dataset) -> Contract:
    """The cleaning contract of a declared dataset, validated against its own Avro record; cached for the process."""
    cached = _CONTRACTS.get((dataset.name, dataset.path))
    if cached is None:
        text = json.dumps({"dataset": dataset.name, "version": dataset.cleaning.get("version", 1),
                           "schema": dataset.contract, "doc": dataset.doc, "fields": dataset.cleaning["fields"]},
                          ensure_ascii=False)
        cached = _CONTRACTS[(dataset.name, dataset.path)] = parse_contract(
            text, name=f"{dataset.name}.json", avro=dataset.avro)
    return cached


def load_contract(dataset: str, extra: Path | None = None) -> Contract:
    """The contract of the declared dataset called ``dataset`` (shipped, or in ``extra``), validated."""
    known = datasets(extra)
    if dataset not in known:
        raise ContractError(f"unknown dataset '{dataset}'{_near(dataset, known)} (known: {', '.join(known)})")
    return contract_of(catalog(extra)[dataset])


def parse_contract(text: str, *, name: str, avro: dict[str, Any] | None = None) -> Contract:
    """Validate the JSON text of a contract file called `name` and build it.

    ``avro`` is the record its fields belong to, when it is not a file in ``schemas/avro``.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{name} must hold a JSON object")
    _known_keys(data, _TOP_KEYS, f"in {name}")
    dataset = data.get("dataset")
    if dataset != name.removesuffix(".json"):
        raise ContractError(f"dataset {dataset!r} in {name} does not match the file name")
    version, schema, doc, fields = data.get("version"), data.get("schema"), data.get("doc", ""), data.get("fields")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ContractError(f"version in {name} must be a positive integer")
    if not isinstance(doc, str):
        raise ContractError(f"doc in {name} must be a string")
    paths = record_paths(avro) if avro is not None and isinstance(schema, str) else None
    if not isinstance(schema, str) or (paths is None and (paths := schema_paths(schema)) is None):
        raise ContractError(f"schema {schema!r} in {name} is not an Avro record in schemas/avro")
    if not isinstance(fields, list) or not fields:
        raise ContractError(f"fields in {name} must be a non-empty list")
    specs = [_field(entry, name, schema, paths) for entry in fields]
    seen: set[str] = set()
    for spec in specs:
        if spec.path in seen:
            raise ContractError(f"field '{spec.path}' is declared twice in {name}")
        seen.add(spec.path)
    by_path = {s.path: s for s in specs}
    for spec in specs:
        for link, target in spec.links.items():
            if target not in by_path:
                raise ContractError(f"link '{link}' of field '{spec.path}' in {name} names '{target}', "
                                    f"which the contract does not declare{_near(target, list(by_path))}")
        birth = spec.links.get("birth_date")
        birth_type = by_path[birth].type if birth is not None else None
        if birth is not None and (birth_type is None or birth_type.name != "date"):
            raise ContractError(f"link 'birth_date' of field '{spec.path}' in {name} must name a field of type date")
    return Contract(dataset, version, schema, doc, tuple(specs))


def _known_keys(entry: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in entry:
        if key not in allowed:
            raise ContractError(f"unknown key '{key}' {where}{_near(key, allowed)}")


def _field(entry: Any, name: str, schema: str, paths: frozenset[str]) -> FieldSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
        raise ContractError(f"every entry of fields in {name} must be an object with a 'field' name")
    path = entry["field"]
    _known_keys(entry, _FIELD_KEYS, f"for field '{path}' in {name}")
    if path not in paths:
        raise ContractError(f"unknown field '{path}' in {name}: not in schema {schema}{_near(path, sorted(paths))}")
    presence = entry.get("presence", "optional")
    if presence not in PRESENCES:
        raise ContractError(f"bad presence {presence!r} for field '{path}' in {name} (expected {', '.join(PRESENCES)})")
    type_name, rules = entry.get("type"), entry.get("rules", {})
    links, enrich = entry.get("links", {}), entry.get("enrich", [])
    if type_name is None:
        if rules or links or enrich or "format" in entry:
            raise ContractError(f"field '{path}' in {name} has rules, links, enrich or format but no type")
        return FieldSpec(path, None, presence, {}, {}, frozenset())
    field_type = FIELD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if field_type is None:
        raise ContractError(f"unknown type {type_name!r} for field '{path}' in {name}{_near(str(type_name), list(FIELD_TYPES))}")
    formats = _formats(entry, field_type, path, name)
    if not isinstance(rules, dict) or not isinstance(links, dict) or not isinstance(enrich, list):
        raise ContractError(f"field '{path}' in {name}: rules and links must be objects, enrich a list")
    for rule, severity in rules.items():
        if rule not in RULES:
            raise ContractError(f"unknown rule '{rule}' in {name}{_near(rule, list(RULES))}")
        known = field_type.rule(rule)
        if known is None:
            raise ContractError(f"rule '{rule}' does not apply to field '{path}' of type {type_name} in {name} "
                                f"(its rules: {', '.join(r.id for r in field_type.rules)})")
        if severity not in SEVERITIES:
            raise ContractError(f"bad severity {severity!r} for rule '{rule}' in {name} "
                                f"(expected {', '.join(SEVERITIES)}){_near(str(severity), SEVERITIES)}")
        if severity == "fix" and not known.fixes:
            raise ContractError(f"rule '{rule}' in {name} cannot fix a value: use reject or warn")
    for link, target in links.items():
        if link not in field_type.links:
            allowed = ", ".join(field_type.links) or "none"
            raise ContractError(f"unknown link '{link}' for field '{path}' in {name} (type {type_name} reads: {allowed})")
        if not isinstance(target, str) or target not in paths:
            raise ContractError(f"link '{link}' of field '{path}' in {name} names {target!r}, not a field of {schema}")
    for wanted in enrich:
        if wanted not in field_type.enrichments:
            offered = ", ".join(field_type.enrichments) or "none"
            raise ContractError(f"unknown enrichment {wanted!r} for field '{path}' in {name} (type {type_name} offers: {offered})")
    return FieldSpec(path, field_type, presence, dict(rules), dict(links), frozenset(enrich), formats)


def _formats(entry: dict[str, Any], field_type: FieldType, path: str, name: str) -> tuple[str, ...]:
    """The field's declared "format" as a tuple, checked by its type; () when it declares none."""
    declared = entry.get("format")
    where = f"field '{path}' of type {field_type.name} in {name}"
    if declared is None:
        if field_type.needs_format:
            raise ContractError(f"{where} needs a format")
        return ()
    if field_type.format_problem is None:
        raise ContractError(f"{where} takes no format")
    formats = (declared,) if isinstance(declared, str) else declared
    if not isinstance(formats, list | tuple) or not formats or not all(isinstance(f, str) for f in formats):
        raise ContractError(f"format of {where} must be a string or a non-empty list of strings")
    for fmt in formats:
        if problem := field_type.format_problem(fmt):
            raise ContractError(f"format {fmt!r} of {where} {' '.join(problem.split())}")
    return tuple(formats)
