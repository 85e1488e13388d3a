"""Linkage errors. Bad records to link never raise: they get a "null" level or no candidates
(a registry record without its unique id is a ValueError: the index is keyed by it).

    LinkageError          also: nothing to train on
    ├── SettingsError     a settings file is unreadable or declares something unknown
    └── ModelError        a model file is unreadable, of another format version, or inconsistent
"""

from __future__ import annotations

__all__ = ["LinkageError", "ModelError", "SettingsError"]


class LinkageError(Exception):
    """Base of linkage errors."""


class SettingsError(LinkageError):
    """Settings that cannot be used: unknown kind, level, field or blocking key, bad JSON."""


class ModelError(LinkageError):
    """A model file that cannot be used."""
