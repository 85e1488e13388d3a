"""A quarantined record's value as a steward sees and fixes it: pure functions, no database, no Kafka.

Originals come in three shapes: Confluent-framed Avro (quarantined by a stream
stage), JSON of the contract-shaped row (quarantined by a connector), or bytes
that are neither (undecodable input). Each is shown as something a person can
read, and never raises. Fixes are dotted contract paths (``residence.ward_code``)
set to a steward's strings, typed as the contract says.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from gsp.errors import UserError
from schemas.codec import Codec, CodecError

__all__ = ["apply_fixes", "readable", "record_of", "release_version"]

_RELEASED = re.compile(r"^(?P<base>.*)\+release(?P<n>\d+)$")


def release_version(version: str) -> str:
    """Source version of a released record: ``1:7`` -> ``1:7+release1``, ``1:7+release1`` -> ``1:7+release2``."""
    m = _RELEASED.match(version)
    return f"{m['base']}+release{int(m['n']) + 1}" if m else f"{version}+release1"


def readable(codec: Codec, original: bytes) -> dict[str, Any]:
    """``{"format": "avro" | "json" | "text" | "base64", "value": ...}``, plus ``avro_error`` when framed Avro failed."""
    problem: dict[str, Any] = {}
    if original[:1] == b"\x00":
        try:
            schema_id, record = codec.decode(original)
            return {"format": "avro", "schema_id": schema_id, "value": _jsonable(record)}
        except CodecError as exc:
            problem = {"avro_error": str(exc)}
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError:
        return {"format": "base64", "value": base64.b64encode(original).decode("ascii"), **problem}
    try:
        return {"format": "json", "value": json.loads(text), **problem}
    except ValueError:
        return {"format": "text", "value": text, **problem}


def record_of(codec: Codec, original: bytes) -> dict[str, Any]:
    """The record in an original, header excluded; a UserError when it holds no record."""
    shown = readable(codec, original)
    if shown["format"] == "avro":
        record = codec.decode(original)[1]
    elif shown["format"] == "json" and isinstance(shown["value"], dict):
        record = shown["value"]
    else:
        raise UserError(f"the original is not a record ({shown['format']}); it can only be discarded")
    record.pop("header", None)
    return record


def apply_fixes(record: dict[str, Any], schema: dict[str, Any], fixes: dict[str, str | None]) -> None:
    """Set each dotted path of the contract to its fix (None sets an optional field to null)."""
    for path, value in fixes.items():
        if value is not None and not isinstance(value, str):
            raise UserError(f"the fix for {path} must be a string or null")
        parts = path.split(".")
        fields, target = schema["fields"], record
        for depth, part in enumerate(parts):
            field = next((f for f in fields if f["name"] == part and part != "header"), None)
            if field is None:
                raise UserError(f"unknown field {path!r} in {schema['name']}")
            if depth == len(parts) - 1:
                target[part] = _typed(field["type"], value, path)
                break
            if not (isinstance(field["type"], dict) and field["type"].get("type") == "record"):
                raise UserError(f"{path!r}: {part} is not a record")
            if not isinstance(target.get(part), dict):
                target[part] = {}
            fields, target = field["type"]["fields"], target[part]


def _typed(kind: Any, value: str | None, path: str) -> Any:
    branches = kind if isinstance(kind, list) else [kind]
    if value is None:
        if "null" in branches:
            return None
        raise UserError(f"{path} is required and cannot be null")
    names = {b if isinstance(b, str) else b.get("type") for b in branches} - {"null"}
    if "record" in names:
        raise UserError(f"{path} is a record: fix its fields, e.g. {path}.<field>")
    try:
        if names & {"int", "long"}:
            return int(value)
        if names & {"float", "double"}:
            return float(value)
        return {"true": True, "false": False}[value.strip().lower()] if "boolean" in names else value
    except (ValueError, KeyError):
        raise UserError(f"{path} needs a {'/'.join(sorted(names))} value") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
