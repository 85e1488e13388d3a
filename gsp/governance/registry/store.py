"""Schema registry storage on SQLAlchemy Core: SQLite by default, PostgreSQL in production.

The tables are described in :mod:`gsp.governance.registry.tables`. Every method is
synchronous and runs one transaction; the HTTP layer calls them from worker
threads. Writes are serialised within the process; writes from different
processes that race (two registrations picking the same next version) lose
on a unique key and are retried from the start, so the compatibility check
always sees the version it is appended after.

An in-memory SQLite engine (``sqlite://``) gives each thread its own empty
database unless it is created with ``poolclass=StaticPool``; use a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gsp.governance.registry import compat
from gsp.governance.registry.errors import (
    ConfigNotFound,
    DeletionRefused,
    IncompatibleSchema,
    InvalidSchema,
    InvalidVersion,
    SchemaNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from gsp.governance.registry.tables import GLOBAL, config_table, metadata, schemas_table, versions_table

__all__ = ["RegisteredSchema", "RegistryStore", "SubjectVersion", "parse_version"]

_MAX_VERSION = 2**31 - 1
_RACE_RETRIES = 10
Latest = Literal["latest"]
_T = TypeVar("_T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredSchema:
    id: int
    schema: str
    schema_type: str = "AVRO"


@dataclass(frozen=True)
class SubjectVersion:
    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = "AVRO"


def parse_version(version: int | str) -> int | Latest:
    """A version id as Confluent accepts it: 1..2^31-1, ``"latest"`` or -1 (also latest)."""
    if isinstance(version, str) and version.strip().lower() == "latest":
        return "latest"
    try:
        number = int(version)
    except ValueError:
        raise InvalidVersion(version) from None
    if number == -1:
        return "latest"
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersion(version)
    return number


def _canonical(schema: object, schema_type: str | None) -> tuple[str, str, str]:
    """(schema type, canonical text, fingerprint) of a schema; rejects what is not valid Avro."""
    kind = (schema_type or "AVRO").upper()
    if kind != "AVRO":
        raise InvalidSchema(f"Unsupported schema type '{schema_type}'; this registry stores AVRO only")
    if not isinstance(schema, str) or not schema.strip():
        raise InvalidSchema("Invalid schema: 'schema' must be a non-empty string of Avro JSON")
    compat.parse(schema)
    # Whitespace-insensitive but otherwise as written: docs and field order are
    # what readers get back, so two schemas differing only there stay distinct.
    text = json.dumps(json.loads(schema), separators=(",", ":"), ensure_ascii=False)
    fingerprint = hashlib.sha256(f"{kind}\n{text}".encode()).hexdigest()
    return kind, text, fingerprint


class RegistryStore:
    """Subjects, versions, schemas and compatibility levels; creates its tables if missing."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._write_lock = threading.Lock()
        metadata.create_all(engine)

    # -- schemas and versions ------------------------------------------------

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        """The schema's global id; adds a version unless the subject already has this schema."""
        kind, text, fingerprint = _canonical(schema, schema_type)

        def run(conn: Connection) -> int:
            live = self._live(conn, subject)
            for row in live:
                if row.fingerprint == fingerprint:
                    return int(row.schema_id)
            problems = compat.check(text, [(r.version, r.schema) for r in live], self._level(conn, subject))
            if problems:
                raise IncompatibleSchema(subject, problems)
            schema_id = self._schema_id(conn, kind, text, fingerprint)
            last = conn.scalar(select(func.max(versions_table.c.version)).where(versions_table.c.subject == subject))
            conn.execute(insert(versions_table).values(
                subject=subject, version=(last or 0) + 1, schema_id=schema_id, deleted=False,
            ))
            return schema_id

        return self._transaction(run)

    def lookup(self, subject: str, schema: str, schema_type: str = "AVRO") -> SubjectVersion:
        """The live version of ``subject`` holding exactly this schema."""
        _, _, fingerprint = _canonical(schema, schema_type)
        with self._engine.connect() as conn:
            live = self._live(conn, subject)
        if not live:
            raise SubjectNotFound(subject)
        for row in live:
            if row.fingerprint == fingerprint:
                return SubjectVersion(subject, row.version, row.schema_id, row.schema, row.schema_type)
        raise SchemaNotFound(f"Schema not found under subject '{subject}'")

    def subjects(self, *, include_deleted: bool = False) -> list[str]:
        query = select(versions_table.c.subject).distinct().order_by(versions_table.c.subject)
        if not include_deleted:
            query = query.where(versions_table.c.deleted.is_(False))
        with self._engine.connect() as conn:
            return list(conn.scalars(query))

    def versions(self, subject: str, *, include_deleted: bool = False) -> list[int]:
        with self._engine.connect() as conn:
            rows = self._rows(conn, subject, include_deleted=include_deleted)
        if not rows:
            raise SubjectNotFound(subject)
        return [row.version for row in rows]

    def get_version(self, subject: str, version: int | str, *, include_deleted: bool = False) -> SubjectVersion:
        wanted = parse_version(version)
        with self._engine.connect() as conn:
            rows = self._rows(conn, subject, include_deleted=include_deleted)
        if not rows:
            raise SubjectNotFound(subject)
        row = rows[-1] if wanted == "latest" else next((r for r in rows if r.version == wanted), None)
        if row is None:
            raise VersionNotFound(subject, version)
        return SubjectVersion(subject, row.version, row.schema_id, row.schema, row.schema_type)

    def schema_by_id(self, schema_id: int) -> RegisteredSchema:
        if not 0 < schema_id <= _MAX_VERSION:  # ids are 32-bit too; a larger one would overflow the column
            raise SchemaNotFound(f"Schema {schema_id} not found")
        with self._engine.connect() as conn:
            row = conn.execute(select(schemas_table).where(schemas_table.c.id == schema_id)).first()
        if row is None:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return RegisteredSchema(row.id, row.schema, row.schema_type)

    def subject_versions_of(self, schema_id: int, *, include_deleted: bool = False) -> list[tuple[str, int]]:
        """Every (subject, version) that holds schema ``schema_id``."""
        self.schema_by_id(schema_id)
        query = (
            select(versions_table.c.subject, versions_table.c.version)
            .where(versions_table.c.schema_id == schema_id)
            .order_by(versions_table.c.subject, versions_table.c.version)
        )
        if not include_deleted:
            query = query.where(versions_table.c.deleted.is_(False))
        with self._engine.connect() as conn:
            return [(row.subject, row.version) for row in conn.execute(query)]

    def test_compatibility(
        self, subject: str, schema: str, version: int | str | None = "latest", schema_type: str = "AVRO",
    ) -> list[str]:
        """Why ``schema`` could not be registered after ``version``; empty if it could.

        ``version=None`` checks against every version the subject's level asks for,
        exactly as :meth:`register` would.
        """
        _, text, _ = _canonical(schema, schema_type)
        wanted = None if version is None else parse_version(version)
        with self._engine.connect() as conn:
            live = self._live(conn, subject)
            level = self._level(conn, subject)
        if isinstance(wanted, int):
            if not live:
                raise SubjectNotFound(subject)
            live = [row for row in live if row.version == wanted]
            if not live:
                raise VersionNotFound(subject, wanted)
        elif wanted == "latest":
            live = live[-1:]
        return compat.check(text, [(r.version, r.schema) for r in live], level)

    # -- deletion ------------------------------------------------------------

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every live version, or with ``permanent`` erase a soft-deleted subject."""

        def run(conn: Connection) -> list[int]:
            rows = self._rows(conn, subject, include_deleted=True)
            if not rows:
                raise SubjectNotFound(subject)
            live = [row.version for row in rows if not row.deleted]
            where = versions_table.c.subject == subject
            if not permanent:
                if not live:
                    raise DeletionRefused(
                        f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently", 40404,
                    )
                conn.execute(update(versions_table).where(where).values(deleted=True))
                return live
            if live:
                raise DeletionRefused(
                    f"Subject '{subject}' was not deleted first before being permanently deleted", 40405,
                )
            conn.execute(delete(versions_table).where(where))
            conn.execute(delete(config_table).where(config_table.c.subject == subject))
            return [row.version for row in rows]

        return self._transaction(run)

    def delete_version(self, subject: str, version: int | str, *, permanent: bool = False) -> int:
        """Soft-delete one live version, or with ``permanent`` erase a soft-deleted one."""
        wanted = parse_version(version)

        def run(conn: Connection) -> int:
            rows = self._rows(conn, subject, include_deleted=True)
            if not rows:
                raise SubjectNotFound(subject)
            if wanted == "latest":
                candidates = rows if permanent else [row for row in rows if not row.deleted]
                row = candidates[-1] if candidates else None
            else:
                row = next((r for r in rows if r.version == wanted), None)
            if row is None:
                raise VersionNotFound(subject, version)
            where = (versions_table.c.subject == subject) & (versions_table.c.version == row.version)
            if not permanent:
                if row.deleted:
                    raise DeletionRefused(
                        f"Subject '{subject}' Version {row.version} was soft deleted. "
                        "Set permanent=true to delete permanently", 40406,
                    )
                conn.execute(update(versions_table).where(where).values(deleted=True))
            elif not row.deleted:
                raise DeletionRefused(
                    f"Subject '{subject}' Version {row.version} was not deleted first before being "
                    "permanently deleted", 40407,
                )
            else:
                conn.execute(delete(versions_table).where(where))
            return int(row.version)

        return self._transaction(run)

    # -- compatibility configuration -----------------------------------------

    def get_config(self, subject: str | None = None, *, default_to_global: bool = False) -> str:
        """The subject's own level (or the global one when asked), else :class:`ConfigNotFound`."""
        with self._engine.connect() as conn:
            if subject is None:
                return self._level(conn, None)
            own = conn.scalar(select(config_table.c.compatibility).where(config_table.c.subject == subject))
            if own is not None:
                return str(own)
            if default_to_global:
                return self._level(conn, None)
        raise ConfigNotFound(subject)

    def set_config(self, level: str, subject: str | None = None) -> str:
        level = compat.normalise_level(level)
        key = GLOBAL if subject is None else subject

        def run(conn: Connection) -> str:
            changed = conn.execute(
                update(config_table).where(config_table.c.subject == key).values(compatibility=level)
            ).rowcount
            if not changed:
                conn.execute(insert(config_table).values(subject=key, compatibility=level))
            return level

        return self._transaction(run)

    def delete_config(self, subject: str | None = None) -> str:
        """Drop a level so the subject follows the global one (or the global one BACKWARD); returns it."""
        key = GLOBAL if subject is None else subject

        def run(conn: Connection) -> str:
            previous = self._level(conn, subject)
            removed = conn.execute(delete(config_table).where(config_table.c.subject == key)).rowcount
            if subject is not None and not removed and not self._rows(conn, subject, include_deleted=False):
                raise SubjectNotFound(subject)
            return previous

        return self._transaction(run)

    # -- internals -----------------------------------------------------------

    def _transaction(self, work: Callable[[Connection], _T]) -> _T:
        for attempt in range(_RACE_RETRIES):
            try:
                with self._write_lock, self._engine.begin() as conn:
                    return work(conn)
            except IntegrityError:
                # Another process took the same version number or schema row first.
                if attempt == _RACE_RETRIES - 1:
                    raise
                logger.debug("registry write lost a race with another process; retrying")
        raise AssertionError("unreachable")

    @staticmethod
    def _rows(conn: Connection, subject: str, *, include_deleted: bool) -> list[Row[Any]]:
        query = (
            select(versions_table, schemas_table.c.schema, schemas_table.c.schema_type, schemas_table.c.fingerprint)
            .join(schemas_table, schemas_table.c.id == versions_table.c.schema_id)
            .where(versions_table.c.subject == subject)
            .order_by(versions_table.c.version)
        )
        if not include_deleted:
            query = query.where(versions_table.c.deleted.is_(False))
        return list(conn.execute(query))

    def _live(self, conn: Connection, subject: str) -> list[Row[Any]]:
        return self._rows(conn, subject, include_deleted=False)

    @staticmethod
    def _level(conn: Connection, subject: str | None) -> str:
        keys = [GLOBAL] if subject is None else [subject, GLOBAL]
        query = select(config_table.c.subject, config_table.c.compatibility).where(config_table.c.subject.in_(keys))
        levels = {subject: level for subject, level in conn.execute(query)}
        for key in keys:
            if key in levels:
                return str(levels[key])
        return compat.DEFAULT_LEVEL

    @staticmethod
    def _schema_id(conn: Connection, kind: str, text: str, fingerprint: str) -> int:
        existing = conn.scalar(select(schemas_table.c.id).where(schemas_table.c.fingerprint == fingerprint))
        if existing is not None:
            return int(existing)
        inserted = insert(schemas_table).values(fingerprint=fingerprint, schema_type=kind, schema=text)
        return int(conn.execute(inserted.returning(schemas_table.c.id)).scalar_one())
