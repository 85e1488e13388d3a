"""Dataset declarations: everything the platform knows about a dataset, in one JSON file.

One file per dataset, ``<domain>.<dataset>.json``, shipped here or in ``GSP_DATASETS_DIR``::

    {"dataset": "telecom.subscriber", "version": 1, "doc": "...",
     "contract": "vn.gsp.telecom.Subscriber",        # an Avro record in schemas/avro, or the record itself
     "key": "msisdn",                                # identity of a record in its source
     "source_system": "telecom.registry",
     "owner": "VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong",   # X-Road style agency subsystem
     "role": "linked",                               # registry | linked | plain
     "shareable": true,
     "fields": {"msisdn": "personal", "carrier": "internal", ...},   # sensitivity of each shareable field
     "source": {"columns": {"residence.province_code": "province_code"}},  # field -> source column, where they differ
     "quality": {"required": [...], "expected": [...], "freshness_days": 365, "delivery_s": 60},
     "registry": {"personal_id": "id_number", "full_name": "subscriber_name", "birth_date": "birth_date",
                  "province_code": {"field": "address", "part": "province"}},   # role linked only
     "cleaning": {"version": 1, "fields": [...]}}    # the cleaning contract, see streams.contracts

Sensitivity classes follow the Personal Data Protection Law (91/2025/QH15): ``public``,
``internal`` (the platform's own bookkeeping, not about a person), ``personal`` (basic personal
data) and ``sensitive`` (sensitive personal data). A ``linked`` dataset is matched against the
``registry`` dataset; its shareable fields may include the outcome of matching (`OUTCOME_TYPES`).
Every other module derives what it needs from a `Dataset`; nothing dataset-specific is written in
Python. The loader refuses a declaration with a one-line `DatasetError` naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from schemas.codec import UnknownSchema, contract, inline
from schemas.settings import settings

__all__ = [
    "OUTCOME_TYPES", "Dataset", "DatasetError", "FieldRef", "Quality", "Role", "Sensitivity",
    "catalog", "dataset", "declared", "parse_declaration", "registry_dataset",
]

_SHIPPED = Path(__file__).parent
_NAME = re.compile(r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*$")
_TOP_KEYS = ("dataset", "version", "doc", "contract", "key", "source_system", "owner", "role", "shareable",
             "fields", "source", "quality", "registry", "cleaning")
_OWNER = re.compile(r"^[A-Z]{2}/[A-Z]+/[a-z0-9-]+/[a-z0-9-]+$")
# Registry fields a linked dataset must map: the programme's three-field check.
_THREE_FIELDS = ("personal_id", "full_name", "birth_date")
_DAY = 86_400.0

# Avro types of the fields matching adds to a linked dataset's shared view.
OUTCOME_TYPES: dict[str, Any] = {"personal_id": ["null", "string"], "verdict": "string", "match_score": "double"}


class DatasetError(ValueError):
    """A declaration is missing or invalid; the message is one line naming the file."""


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"


class Role(StrEnum):
    REGISTRY = "registry"   # the population registry every linked dataset is matched against
    LINKED = "linked"       # matched against the registry: clean -> match -> share
    PLAIN = "plain"         # cleaned and shared as it is: clean -> share


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a registry field's value is in a dataset's record: a dotted path, optionally a part of it."""
    path: str
    part: str | None = None   # "province": the last comma-separated part of an address line
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", tuple(self.path.split(".")))  # split once: read per record on the hot path

    def value(self, record: Mapping[str, Any]) -> Any:
        value: Any = record
        for name in self._names:
            value = value.get(name) if isinstance(value, Mapping) else None
        if self.part == "province":
            return (str(value or "").rsplit(",", 1)[-1].strip() or None) if value is not None else None
        return value


@dataclass(frozen=True, slots=True)
class Quality:
    required: tuple[str, ...]
    expected: tuple[str, ...] = ()
    freshness_s: float = 365 * _DAY   # an older updated_at counts as not live
    delivery_s: float = 60.0          # a shared record later than this counts as not live


@dataclass(frozen=True)
class Dataset:
    name: str                         # <domain>.<dataset>
    version: int                      # major version: the v<major> of its topics
    doc: str
    contract: str                     # full name of its Avro record
    avro: dict[str, Any]              # that record, self-contained (named types inlined)
    key: str                          # field identifying a record in its source
    source_system: str
    owner: str                        # X-Road style id of the owning agency subsystem
    role: Role
    shareable: bool
    sensitivity: Mapping[str, Sensitivity]   # shareable field -> class
    source_columns: Mapping[str, str]        # field path -> source column, where they differ
    quality: Quality
    registry: Mapping[str, FieldRef]         # registry field -> where it is here (linked datasets)
    cleaning: Mapping[str, Any]              # the cleaning contract, validated by streams.contracts
    path: str = field(default="", compare=False)   # the declaration's file, for messages

    @property
    def linked(self) -> bool:
        return self.role is Role.LINKED

    @property
    def partition_key(self) -> str:
        """Field the clean topic is keyed by: the personal id, so a dataset and the registry are co-partitioned."""
        return self.registry["personal_id"].path if self.linked else self.key

    def shared_types(self) -> dict[str, Any]:
        """Avro type of each shareable field, in declaration order (timestamps as plain longs, as the codec reads them)."""
        own = {f["name"]: _plain(f["type"]) for f in self.avro["fields"]}
        return {name: OUTCOME_TYPES[name] if name not in own else own[name] for name in self.sensitivity}


def _plain(avro_type: Any) -> Any:
    if isinstance(avro_type, dict) and avro_type.get("type") == "long" and "logicalType" in avro_type:
        return "long"
    return avro_type


def _fail(path: str, message: str) -> DatasetError:
    return DatasetError(f"{path}: {message}")


def _paths(schema: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(schema, list):
        for branch in schema:
            out |= _paths(branch, prefix)
    elif isinstance(schema, dict) and schema.get("type") == "record":
        for f in schema.get("fields", []):
            out.add(prefix + f["name"])
            out |= _paths(f["type"], prefix + f["name"] + ".")
    elif isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
        out |= _paths(schema["type"], prefix)
    return out


def parse_declaration(data: Any, *, path: str) -> Dataset:
    """Validate one declaration (parsed JSON) read from ``path`` and build its `Dataset`."""
    if not isinstance(data, dict):
        raise _fail(path, "a declaration is a JSON object")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r}; known: {', '.join(_TOP_KEYS)}")
    for key in ("dataset", "contract", "key", "source_system", "owner", "role", "cleaning"):
        if key not in data:
            raise _fail(path, f"missing {key!r}")
    name = data["dataset"]
    if not isinstance(name, str) or not _NAME.match(name) or Path(path).name not in (f"{name}.json", path):
        raise _fail(path, f"dataset {name!r} must be <domain>.<dataset> in lower case and match the file name")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, "version must be a positive integer")
    try:
        avro = contract(data["contract"]) if isinstance(data["contract"], str) else inline(data["contract"])
    except UnknownSchema as exc:
        raise _fail(path, str(exc)) from None
    if not isinstance(avro, dict) or avro.get("type") != "record" or not any(
            f.get("name") == "header" for f in avro.get("fields", [])):
        raise _fail(path, "contract must be an Avro record with a header field (vn.gsp.common.EventHeader)")
    contract_name = avro["name"] if "." in avro["name"] else f"{avro.get('namespace', '')}.{avro['name']}"
    paths = _paths(avro)
    try:
        role = Role(data["role"])
    except ValueError:
        raise _fail(path, f"role {data['role']!r} is not one of {', '.join(r.value for r in Role)}") from None
    if data["key"] not in paths:
        raise _fail(path, f"key {data['key']!r} is not a field of {contract_name}")
    if not isinstance(data["owner"], str) or not _OWNER.match(data["owner"]):
        raise _fail(path, f"owner {data['owner']!r} must be an agency subsystem such as VN/GOV/bo-cong-an/c06")
    top = {f["name"] for f in avro["fields"]} - {"header"}
    sensitivity: dict[str, Sensitivity] = {}
    for field_name, cls in (data.get("fields") or {}).items():
        if field_name not in top and not (role is Role.LINKED and field_name in OUTCOME_TYPES):
            raise _fail(path, f"field {field_name!r} is not a field of {contract_name}")
        try:
            sensitivity[field_name] = Sensitivity(cls)
        except ValueError:
            raise _fail(path, f"sensitivity {cls!r} of {field_name} is not one of "
                              f"{', '.join(s.value for s in Sensitivity)}") from None
    registry: dict[str, FieldRef] = {}
    for registry_field, ref in (data.get("registry") or {}).items():
        ref = FieldRef(ref) if isinstance(ref, str) else FieldRef(ref.get("field", ""), ref.get("part"))
        if ref.path not in paths or ref.part not in (None, "province"):
            raise _fail(path, f"registry field {registry_field!r} maps to {ref.path!r}, not a field of {contract_name}")
        registry[registry_field] = ref
    if role is Role.LINKED and (missing := [f for f in _THREE_FIELDS if f not in registry]):
        raise _fail(path, f"a linked dataset maps {', '.join(_THREE_FIELDS)} to its fields; missing {missing[0]}")
    if role is not Role.LINKED and registry:
        raise _fail(path, "only a linked dataset has a registry mapping")
    quality = data.get("quality") or {}
    for p in (*quality.get("required", ()), *quality.get("expected", ())):
        if p not in paths:
            raise _fail(path, f"quality field {p!r} is not a field of {contract_name}")
    columns = (data.get("source") or {}).get("columns") or {}
    for p in columns:
        if p not in paths:
            raise _fail(path, f"source column for {p!r}: not a field of {contract_name}")
    if not isinstance(data["cleaning"], dict) or not isinstance(data["cleaning"].get("fields"), list):
        raise _fail(path, "cleaning must be an object with a list of fields")
    return Dataset(
        name=name, version=version, doc=str(data.get("doc", "")), contract=contract_name, avro=avro,
        key=data["key"], source_system=str(data["source_system"]), owner=data["owner"], role=role,
        shareable=bool(data.get("shareable", bool(sensitivity))), sensitivity=sensitivity,
        source_columns=dict(columns),
        quality=Quality(required=tuple(quality.get("required", ())), expected=tuple(quality.get("expected", ())),
                        freshness_s=float(quality.get("freshness_days", 365)) * _DAY,
                        delivery_s=float(quality.get("delivery_s", 60))),
        registry=registry, cleaning=data["cleaning"], path=path)


def _read(file: Path) -> Dataset:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(str(file), f"cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise _fail(str(file), f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_declaration(data, path=str(file))


@cache
def catalog(extra: Path | None = None) -> dict[str, Dataset]:
    """Every declared dataset, by name: the shipped ones, then those in ``extra`` (GSP_DATASETS_DIR)."""
    files = sorted(_SHIPPED.glob("*.json"))
    if extra is not None:
        if not extra.is_dir():
            raise DatasetError(f"GSP_DATASETS_DIR={extra}: not a directory")
        files += sorted(extra.glob("*.json"))
    out: dict[str, Dataset] = {}
    for file in files:
        d = _read(file)
        if d.name in out:
            raise _fail(str(file), f"dataset {d.name} is already declared in {out[d.name].path}")
        out[d.name] = d
    registries = [d.name for d in out.values() if d.role is Role.REGISTRY]
    if len(registries) > 1:
        raise DatasetError(f"more than one registry dataset: {', '.join(registries)}")
    return out


def declared() -> dict[str, Dataset]:
    """The datasets of this process: the shipped ones and those in its GSP_DATASETS_DIR (`schemas.settings`)."""
    return catalog(settings().datasets_dir)


def dataset(name: str, extra: Path | None = None) -> Dataset:
    """One declared dataset; a one-line DatasetError naming the known ones otherwise."""
    known = catalog(extra)
    try:
        return known[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(known)}") from None


def registry_dataset(extra: Path | None = None) -> Dataset | None:
    """The population registry linked datasets are matched against, if declared."""
    return next((d for d in catalog(extra).values() if d.role is Role.REGISTRY), None)
