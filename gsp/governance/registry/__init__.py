"""A Confluent-compatible schema registry served by the control plane.

    store = RegistryStore(sqlalchemy.create_engine("sqlite:///registry.db"))
    app.add_routes(gsp.http.registry.registry_routes(store))

Producers and consumers reach it with any Confluent client, or with
:class:`schemas.registry.RegistryClient`.
"""

from gsp.governance.registry.compat import DEFAULT_LEVEL, LEVELS
from gsp.governance.registry.errors import (
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
from gsp.governance.registry.store import RegisteredSchema, RegistryStore, SubjectVersion

__all__ = [
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
]
