"""The only code that touches Avro bytes.

Wire format is Confluent's: byte 0 is the magic 0, bytes 1-4 the schema id
(big-endian), then the Avro binary body. Each schema is parsed once; library
errors are re-raised as :class:`CodecError` subclasses:

    CodecError
    ├── DecodeError     bytes that are not a valid event (bad magic, truncated, garbage)
    ├── EncodeError     a value that does not fit its schema
    └── UnknownSchema   a schema id this process cannot resolve (no resolver, or the registry says no such id)

    SchemaUnavailable   the registry could not answer (down, timing out, 5xx): deliberately *not* a
                        CodecError, because the bytes may be good. A stage lets it propagate, and its
                        worker waits and retries instead of quarantining records the registry would have
                        described. Nothing is cached on failure: the next decode asks again.

Timestamps (``timestamp-millis``) are plain ``int`` milliseconds in memory:
the registered schema keeps the logical type for readers in other languages,
the codec reads it as a long, which is the same binary encoding and avoids a
datetime per field on the hot path.
"""

from __future__ import annotations

import http.client
import io
import json
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from schemas.registry import RegistryRequestFailed, RegistryUnavailable

__all__ = [
    "Codec", "CodecError", "DecodeError", "EncodeError", "SchemaUnavailable", "UnknownSchema",
    "contract", "contract_names", "inline", "schema_id_of",
]

_MAGIC = 0
_HEADER = struct.Struct(">bI")
_AVRO_DIR = Path(__file__).parent / "avro"


class CodecError(Exception):
    """An event could not be encoded or decoded."""


class DecodeError(CodecError):
    """Bytes that are not a valid event for their schema."""


class EncodeError(CodecError):
    """A record that does not fit its schema."""


class UnknownSchema(CodecError):
    """A schema id that cannot be resolved."""


class SchemaUnavailable(Exception):
    """The schema registry could not be asked about an id: an outage to wait out, not a bad record."""


_NOT_FOUND = 404


def contract_names() -> list[str]:
    """Full names of the contracts shipped in schemas/avro."""
    return sorted(p.stem for p in _AVRO_DIR.glob("*.avsc"))


@cache
def _contract_json(fullname: str) -> str:
    path = _AVRO_DIR / f"{fullname}.avsc"
    if not path.exists():
        raise UnknownSchema(f"no contract named {fullname} in {_AVRO_DIR}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    return json.dumps(_inline(schema, set()), ensure_ascii=False)


def contract(fullname: str) -> dict[str, Any]:
    """A contract as a self-contained JSON schema (named dependencies inlined once).

    Self-contained schemas register as-is in any Confluent-compatible registry,
    with no schema references to manage.
    """
    return json.loads(_contract_json(fullname))


def inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A record schema given as JSON with the shipped named types it refers to inlined once."""
    return json.loads(json.dumps(_inline(schema, set()), ensure_ascii=False))


def _inline(node: Any, seen: set[str]) -> Any:
    if isinstance(node, str) and "." in node and (_AVRO_DIR / f"{node}.avsc").exists():
        if node in seen:
            return node
        seen.add(node)
        return _inline(json.loads((_AVRO_DIR / f"{node}.avsc").read_text(encoding="utf-8")), seen)
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            seen.add(_fullname(node))
        return {k: _inline(v, seen) if k in ("type", "fields", "items", "values") else v for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(item, seen) for item in node]
    return node


def _fullname(node: dict[str, Any]) -> str:
    name = str(node.get("name", ""))
    return name if "." in name or "namespace" not in node else f"{node['namespace']}.{name}"


def _strip_logical(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(item) for item in node]
    return node


def schema_id_of(data: bytes) -> int:
    """The schema id in an event's header."""
    if len(data) < 5 or data[0] != _MAGIC:
        raise DecodeError("not in Confluent wire format (missing magic byte 0 and schema id)")
    return int(_HEADER.unpack_from(data)[1])


class Codec:
    """Encodes and decodes events by schema id.

    ``resolve`` fetches a schema's JSON for an id this codec has not seen (for
    example ``RegistryClient.schema_by_id``); it is called once per id, again after a failure.
    """

    def __init__(self, resolve: Callable[[int], str] | None = None) -> None:
        self._resolve = resolve
        self._parsed: dict[int, Any] = {}
        self._validating: dict[int, Any] = {}

    def add(self, schema_id: int, schema: dict[str, Any] | str) -> None:
        """Make a schema known under its registry id."""
        if schema_id in self._parsed:
            return
        try:
            as_dict = json.loads(schema) if isinstance(schema, str) else schema
            # Parsed with fastavro's marker: schemaless_writer and schemaless_reader parse again any schema
            # without it, on every call (four times the cost of encoding a subscriber).
            parsed = fastavro.parse_schema(_strip_logical(as_dict))
            validating = fastavro.parse_schema(as_dict)
        except Exception as exc:  # not JSON, or fastavro's several unrelated types for bad schemas
            raise UnknownSchema(f"schema {schema_id} is not valid Avro: {exc}") from None
        self._parsed[schema_id], self._validating[schema_id] = parsed, validating

    def knows(self, schema_id: int) -> bool:
        return schema_id in self._parsed

    def name_of(self, schema_id: int) -> str:
        """Full name of the record a schema id describes ("" for an unnamed type): which contract an event is of."""
        parsed = self._schema(schema_id)
        return str(parsed.get("name", "")) if isinstance(parsed, dict) else ""

    def _schema(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            if self._resolve is None:
                raise UnknownSchema(f"schema id {schema_id} is unknown to this process")
            try:
                text = self._resolve(schema_id)
            except RegistryRequestFailed as exc:
                if exc.status == _NOT_FOUND:
                    raise UnknownSchema(f"schema id {schema_id} is not in the registry: {exc}") from None
                raise SchemaUnavailable(f"schema id {schema_id} could not be looked up: {exc}") from None
            except (RegistryUnavailable, OSError, http.client.HTTPException) as exc:  # OSError: refused, reset, timeout
                raise SchemaUnavailable(f"schema id {schema_id} could not be looked up: {exc}") from None
            except Exception as exc:  # a resolver of another kind that cannot name the id
                raise UnknownSchema(f"schema id {schema_id} could not be resolved: {exc}") from None
            self.add(schema_id, text)
            parsed = self._parsed[schema_id]
        return parsed

    def encode(self, schema_id: int, record: dict[str, Any]) -> bytes:
        schema = self._schema(schema_id)
        out = io.BytesIO()
        out.write(_HEADER.pack(_MAGIC, schema_id))
        try:
            fastavro.schemaless_writer(out, schema, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(self._explain(schema_id, record, exc)) from None
        return out.getvalue()

    def _explain(self, schema_id: int, record: dict[str, Any], exc: Exception) -> str:
        # Only on the failure path: validation names the offending field.
        try:
            validate(record, self._validating[schema_id], raise_errors=True)
        except ValidationError as verr:
            return "; ".join(str(e) for e in verr.errors)[:500]
        except Exception:
            pass
        return f"record does not fit schema {schema_id}: {type(exc).__name__}: {exc}"[:500]

    def decode(self, data: bytes | None) -> tuple[int, dict[str, Any]]:
        """(schema id, record) of an event."""
        if data is None:  # a tombstone: Kafka's null value, on a topic whose events are never deleted
            raise DecodeError("null value (a tombstone), not an event")
        schema_id = schema_id_of(data)
        schema = self._schema(schema_id)
        body = io.BytesIO(data)
        body.seek(5)
        try:
            record = fastavro.schemaless_reader(body, schema, None)
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
            raise DecodeError(f"Avro body does not match schema {schema_id}: {type(exc).__name__}") from None
        if body.tell() != len(data):
            raise DecodeError(f"{len(data) - body.tell()} trailing bytes after the Avro body of schema {schema_id}")
        if not isinstance(record, dict):
            raise DecodeError(f"schema {schema_id} does not describe a record")
        return schema_id, record
