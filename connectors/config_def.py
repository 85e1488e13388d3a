"""Declared connector settings, Kafka Connect's ConfigDef idea: each key once, everything else derived from it.

A :class:`ConfigDef` validates a config listing every bad field at once (missing, wrong type, refused by its
validator, unknown), parses it into typed values with defaults, and renders Kafka Connect's answer to
``PUT /connector-plugins/{type}/config/validate``. Values may come as JSON types or as text, as Kafka
Connect's REST clients send them ("2", "true", "a,b"); a MAP may be a JSON object or its text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gsp.errors import UserError

__all__ = ["REQUIRED", "TYPES", "Check", "ConfigDef", "ConfigInvalid", "ConfigKey", "Validator", "missing_message"]

TYPES: Final = ("STRING", "INT", "DOUBLE", "BOOLEAN", "LIST", "PASSWORD", "MAP")
Validator = Callable[[Any], "str | None"]  # a parsed value -> why it is refused (the whole message), or None
# A rule across fields: the parsed values -> {field: message}. A field whose own value was refused is absent from
# the values (a field not set is there, with its default), so a check can tell "not set" from "already reported".
Check = Callable[[Mapping[str, Any]], dict[str, str]]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()  # the default of a key that has none: the config must set it


@dataclass(frozen=True, kw_only=True)
class ConfigKey:
    name: str
    type: str                       # one of TYPES
    default: Any = REQUIRED
    importance: str                 # "HIGH", "MEDIUM" or "LOW"
    documentation: str
    group: str = "Common"
    validator: Validator | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class ConfigInvalid(UserError):
    """A config with mistakes; ``errors`` maps each bad field to its messages, ``str`` is one line naming them all."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        unknown = sorted(n for n, ms in self.errors.items() if any(_is_unknown(n, m) for m in ms))
        missing = sorted(n for n, ms in self.errors.items() if missing_message(n) in ms)
        others = [m for n, ms in self.errors.items() for m in ms if m != missing_message(n) and not _is_unknown(n, m)]
        super().__init__("; ".join([*([f"unknown keys {', '.join(unknown)}"] if unknown else []),
                                    *([f"missing keys {', '.join(missing)}"] if missing else []), *others]))


def missing_message(name: str) -> str:
    """The message of a required field that is not set (a check across fields may report one too)."""
    return f'Missing required configuration "{name}" which has no default value.'  # Kafka Connect's words


def _unknown(name: str, plugin: str) -> str:
    return f"{name} is not a setting of {plugin}"


def _is_unknown(name: str, message: str) -> bool:
    return message.startswith(f"{name} is not a setting of ")


class _WrongType(ValueError):
    pass


_EXPECTED = {"STRING": "a non-empty string", "PASSWORD": "a non-empty string", "INT": "a whole number",
             "DOUBLE": "a number", "BOOLEAN": "true or false", "LIST": "a list of strings",
             "MAP": "a JSON object of strings"}


def _parse(type_: str, value: Any) -> Any:
    """``value`` as ``type_`` (text accepted as Kafka Connect accepts it); _WrongType when it is not one."""
    if type_ in ("STRING", "PASSWORD"):
        if isinstance(value, str) and value:
            return value
    elif type_ == "INT":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    elif type_ == "DOUBLE":
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise _WrongType() from None
        if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
            return float(number)
    elif type_ == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif type_ == "LIST":
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(v, str) and v for v in items):
            return list(items)
    elif type_ == "MAP":
        mapping = value
        if isinstance(value, str):
            try:
                mapping = json.loads(value)
            except ValueError:
                raise _WrongType() from None
        if isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values()):
            return dict(mapping)
    raise _WrongType()


def _text(type_: str, value: Any) -> str | None:
    """A value as Kafka Connect shows one: text, a list comma-joined, a password hidden."""
    if value is None or value is REQUIRED:
        return None
    if type_ == "PASSWORD":
        return "[hidden]"
    if type_ == "BOOLEAN" and isinstance(value, bool):
        return "true" if value else "false"
    if type_ == "LIST" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if type_ == "MAP" and isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class ConfigDef:
    """The declared keys of one plugin (``plugin`` names it in messages) and the checks across them."""

    def __init__(self, plugin: str, keys: Sequence[ConfigKey], *, checks: Sequence[Check] = ()) -> None:
        names = [k.name for k in keys]
        if len(set(names)) != len(names):
            raise ValueError(f"{plugin} declares a key twice")
        unknown_types = [k.name for k in keys if k.type not in TYPES]
        if unknown_types:
            raise ValueError(f"{plugin}: keys of no known type: {', '.join(unknown_types)}")
        self.plugin = plugin
        self.keys: dict[str, ConfigKey] = {k.name: k for k in keys}
        self._checks = tuple(checks)

    def validate(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """Every bad field of ``config`` with its messages; empty when the config is valid."""
        return self._read(config)[1]

    def parse(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared key's typed value (its default when not set); ConfigInvalid naming every bad field."""
        values, errors = self._read(config)
        if errors:
            raise ConfigInvalid(errors)
        return values

    def validation_body(self, plugin: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Kafka Connect's answer to PUT /connector-plugins/{type}/config/validate; ``plugin`` is its "name"."""
        values, errors = self._read(config)
        groups = list(dict.fromkeys(["Common", *(k.group for k in self.keys.values())]))
        order: dict[str, int] = {}
        configs = []
        for key in self.keys.values():
            order[key.group] = order.get(key.group, 0) + 1
            shown = config.get(key.name) if key.name in errors else values.get(key.name)
            configs.append(self._info(key, order[key.group], _text(key.type, shown), errors.get(key.name, [])))
        for name in config:
            if name not in self.keys:  # shown as Kafka Connect shows a value no key declares
                key = ConfigKey(name=name, type="STRING", default=None, importance="LOW",
                                documentation=_unknown(name, self.plugin))
                configs.append(self._info(key, -1, _text("STRING", config[name]), errors.get(name, [])))
        return {"name": plugin, "error_count": sum(len(m) for m in errors.values()), "groups": groups,
                "configs": configs}

    @staticmethod
    def _info(key: ConfigKey, order: int, value: str | None, errors: list[str]) -> dict[str, Any]:
        return {"definition": {"name": key.name, "type": key.type, "required": key.required,
                               "default_value": _text(key.type, key.default), "importance": key.importance,
                               "documentation": key.documentation, "group": key.group, "order": order,
                               "width": "NONE", "display_name": key.name, "dependents": []},
                "value": {"name": key.name, "value": value, "recommended_values": [], "errors": list(errors),
                          "visible": True}}

    def _read(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for key in self.keys.values():
            raw = config.get(key.name)
            if raw is None:
                if key.required:
                    errors[key.name] = [missing_message(key.name)]
                else:
                    values[key.name] = key.default
                continue
            try:
                value = _parse(key.type, raw)
            except _WrongType:
                shown = "[hidden]" if key.type == "PASSWORD" else repr(raw)
                errors[key.name] = [f"{key.name} must be {_EXPECTED[key.type]}, not {shown}"]
                continue
            refusal = key.validator(value) if key.validator is not None else None
            if refusal:
                errors[key.name] = [refusal]
            else:
                values[key.name] = value
        for name in config:
            if name not in self.keys:
                errors[name] = [_unknown(name, self.plugin)]
        for check in self._checks:
            for name, message in check(values).items():
                if name not in errors:
                    errors.setdefault(name, []).append(message)
        return values, errors
