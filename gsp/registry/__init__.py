"""A Confluent-compatible schema registry served by the control plane.

    store = RegistryStore(sqlalchemy.create_engine("sqlite:///registry.db"))
    app.add_routes(registry_routes(store))

Producers and consumers reach it with any Confluent client, or with
:class:`schemas.registry.RegistryClient`.
"""

from gsp.registry.api import CONTENT_TYPE, registry_routes
from gsp.registry.compat import DEFAULT_LEVEL, LEVELS
from gsp.registry.errors import (
    ConfigNotFound,
    DeletionRefused,
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidSchema,
    InvalidVersion,
    RegistryError,
    SchemaNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from gsp.registry.store import RegisteredSchema, RegistryStore, SubjectVersion

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_LEVEL",
    "LEVELS",
    "ConfigNotFound",
    "DeletionRefused",
    "IncompatibleSchema",
    "InvalidCompatibilityLevel",
    "InvalidSchema",
    "InvalidVersion",
    "RegisteredSchema",
    "RegistryError",
    "RegistryStore",
    "SchemaNotFound",
    "SubjectNotFound",
    "SubjectVersion",
    "VersionNotFound",
    "registry_routes",
]
