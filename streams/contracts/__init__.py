"""Cleaning contracts: which fields a dataset has, which rules run on them, with which severity.

One JSON file per dataset, ``streams/contracts/<dataset>.json``::

    {"dataset": "telecom.subscriber", "version": 1, "schema": "vn.gsp.telecom.Subscriber", "doc": "...",
     "fields": [
       {"field": "id_number", "type": "personal_id", "presence": "required",
        "links": {"birth_date": "birth_date"},
        "rules": {"id.shape": "reject", "id.legacy_cmnd": "warn", "id.birthyear": "warn"},
        "enrich": ["id.birth_province"]},
       {"field": "carrier", "presence": "required"}]}

``type`` is one of `streams.rules.FIELD_TYPES`; ``rules`` maps rule ids of that type to
``reject``, ``fix`` or ``warn``; ``presence`` is ``required``, ``expected`` or ``optional``;
``links`` names the other fields a type reads. Every field path must exist in the Avro schema.
The loader refuses a contract with a one-line `ContractError` naming the file and, for a typo,
the nearest valid name.
"""

from __future__ import annotations

import json
from difflib import get_close_matches
from functools import cache
from typing import Any

from schemas.datasets import catalog
from streams.contracts.model import PRESENCES, Contract, FieldSpec
from streams.contracts.schema import schema_paths
from streams.rules import FIELD_TYPES, RULES, SEVERITIES

__all__ = ["Contract", "ContractError", "FieldSpec", "datasets", "load_contract", "parse_contract"]

_TOP_KEYS = ("dataset", "version", "schema", "doc", "fields")
_FIELD_KEYS = ("field", "type", "presence", "rules", "links", "enrich")


class ContractError(ValueError):
    """A contract file is missing or invalid; the message is one line naming the file."""


def _near(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def datasets() -> tuple[str, ...]:
    """Every dataset with a contract, sorted."""
    return tuple(sorted(catalog()))


@cache
def load_contract(dataset: str) -> Contract:
    """The contract of `dataset` (the cleaning section of its declaration), validated; cached for the life of the process."""
    known = datasets()
    if dataset not in known:
        raise ContractError(f"unknown dataset '{dataset}'{_near(dataset, known)} (known: {', '.join(known)})")
    declared = catalog()[dataset]
    text = json.dumps({"dataset": dataset, "version": declared.cleaning.get("version", 1), "schema": declared.contract,
                       "doc": declared.doc, "fields": declared.cleaning["fields"]}, ensure_ascii=False)
    return parse_contract(text, name=f"{dataset}.json")


def parse_contract(text: str, *, name: str) -> Contract:
    """Validate the JSON text of a contract file called `name` and build it."""
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
    if not isinstance(schema, str) or (paths := schema_paths(schema)) is None:
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
        if rules or links or enrich:
            raise ContractError(f"field '{path}' in {name} has rules, links or enrich but no type")
        return FieldSpec(path, None, presence, {}, {}, frozenset())
    field_type = FIELD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if field_type is None:
        raise ContractError(f"unknown type {type_name!r} for field '{path}' in {name}{_near(str(type_name), list(FIELD_TYPES))}")
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
    return FieldSpec(path, field_type, presence, dict(rules), dict(links), frozenset(enrich))
