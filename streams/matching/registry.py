"""What a worker keeps per registry record, derived from the dataset declarations.

A linked dataset's declaration maps registry fields to its own fields (``"full_name":
"subscriber_name"``). An entry keeps exactly those registry fields, read from the registry
record: a field of that name, at the top or nested (``province_code`` is
``residence.province_code`` in a citizen), plus ``status`` (a death takes a person out of the
search) and ``name_key``, the form the three-field check compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.datasets import Dataset, DatasetError, FieldRef
from streams.clean import name_key

__all__ = ["RegistryEntries"]

_STATUS = "status"


class RegistryEntries:
    """Registry record -> (personal id, entry), for the registry table and every worker's replica."""

    def __init__(self, registry: Dataset, linked: Iterable[Dataset]) -> None:
        fields = [name for d in linked for name in d.registry if name != "personal_id"]
        self.dataset = registry.name
        self._key = FieldRef(registry.key)
        self._fields = {name: _locate(registry, name) for name in dict.fromkeys([*fields, "full_name", "birth_date"])}
        status = _find(registry.avro, _STATUS)
        self._status = FieldRef(status) if status is not None else None

    @property
    def fields(self) -> tuple[str, ...]:
        """The registry fields an entry keeps (full name and birth date first), the key aside."""
        return tuple(dict.fromkeys(["full_name", "birth_date", *self._fields]))

    @property
    def key(self) -> str:
        """Where the registry record holds its key, the personal id."""
        return self._key.path

    def path(self, name: str) -> str:
        """Where the registry record holds the kept field ``name`` (``residence.province_code``)."""
        return self._fields[name].path

    def entry(self, record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        entry = {name: ref.value(record) for name, ref in self._fields.items()}
        entry["name_key"] = name_key(entry["full_name"])
        entry[_STATUS] = self._status.value(record) if self._status is not None else None
        return str(self._key.value(record)), entry


def _locate(registry: Dataset, name: str) -> FieldRef:
    path = _find(registry.avro, name)
    if path is None:
        raise DatasetError(f"{registry.path or registry.name}: no field {name!r}, which a linked dataset maps")
    return FieldRef(path)


def _find(schema: Any, name: str, prefix: str = "") -> str | None:
    """Path of the field ``name`` in an Avro record: a top-level field first, else the first nested one."""
    fields = schema.get("fields", []) if isinstance(schema, dict) else []
    if any(f["name"] == name for f in fields):
        return prefix + name
    for f in fields:
        for branch in f["type"] if isinstance(f["type"], list) else [f["type"]]:
            if isinstance(branch, dict) and branch.get("type") == "record" and f["name"] != "header":
                found = _find(branch, name, f"{prefix}{f['name']}.")
                if found is not None:
                    return found
    return None
