"""The field paths of an Avro record, read as plain JSON (no Avro library).

The record is either named (a file in ``schemas/avro``) or given whole (a declaration's own contract).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["record_paths", "schema_paths"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


@cache
def _record(full_name: str) -> dict[str, Any] | None:
    if not _NAME.fullmatch(full_name):
        return None
    resource = files("schemas").joinpath("avro").joinpath(f"{full_name}.avsc")
    if not resource.is_file():
        return None
    record = json.loads(resource.read_text(encoding="utf-8"))
    return record if isinstance(record, dict) and record.get("type") == "record" else None


def _walk(schema: Any, prefix: str, out: set[str], depth: int) -> None:
    if depth > 8:  # recursive schemas end here
        return
    if isinstance(schema, list):  # a union: ["null", {...}]
        for branch in schema:
            _walk(branch, prefix, out, depth)
        return
    if isinstance(schema, str) and "." in schema:
        schema = _record(schema)
    if isinstance(schema, dict) and schema.get("type") == "record":
        for field in schema.get("fields", []):
            path = f"{prefix}{field['name']}"
            out.add(path)
            _walk(field["type"], path + ".", out, depth + 1)


@cache
def schema_paths(full_name: str) -> frozenset[str] | None:
    """Every field path ("residence", "residence.ward_code") of the record `full_name`, or None."""
    record = _record(full_name)
    return None if record is None else record_paths(record)


def record_paths(record: dict[str, Any]) -> frozenset[str]:
    """Every field path of a record given as JSON; named types it refers to are read from ``schemas/avro``."""
    out: set[str] = set()
    _walk(record, "", out, 0)
    return frozenset(out)
