"""The registry's tables, named ``registry_*`` to share a database with the rest of the control plane.

- ``registry_schemas``: one row per distinct schema text; its ``id`` is the
  global schema id written into every Kafka record, so identical schemas
  registered under different subjects share one id, as in Confluent.
- ``registry_subject_versions``: which schema is version N of a subject, and
  whether that version was soft-deleted.
- ``registry_config``: compatibility levels; the global level is the row whose
  subject is :data:`GLOBAL`, the empty string, a name no subject can have on
  the REST API.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, MetaData, String, Table, Text

__all__ = ["GLOBAL", "config_table", "metadata", "schemas_table", "versions_table"]

GLOBAL = ""

metadata = MetaData()

schemas_table = Table(
    "registry_schemas", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("schema_type", String(16), nullable=False),
    Column("schema", Text, nullable=False),
)
versions_table = Table(
    "registry_subject_versions", metadata,
    Column("subject", Text, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("schema_id", Integer, ForeignKey("registry_schemas.id"), nullable=False, index=True),
    Column("deleted", Boolean, nullable=False, default=False),
)
config_table = Table(
    "registry_config", metadata,
    Column("subject", Text, primary_key=True),
    Column("compatibility", String(32), nullable=False),
)
