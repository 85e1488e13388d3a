"""SQL sink: upsert by event id, so a replayed event changes nothing.

Works on SQLite and PostgreSQL (both support INSERT ... ON CONFLICT). A
flush the database refuses (server down, table gone, a constraint) raises
:class:`SinkFailed` and drops the staged rows: the runner hands the same
events again, so at most one batch is ever held.

Deletes: every row has a ``deleted`` column, the event header's ``deleted`` (false for events written
before headers had it). A source's delete arrives as a new version of the record with its last fields; the
sink stores it as its own row (keyed by its event id like any other), so the agency sees when the record
was deleted and what it was, and filters ``WHERE NOT deleted`` for the live ones. A table made before the
column existed gets it added.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from connectors.base import SinkFailed

__all__ = ["SqlSink"]

_TYPES = {"string": sa.Text, "long": sa.BigInteger, "int": sa.Integer, "double": sa.Float, "boolean": sa.Boolean}


def _column_type(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        avro_type = next(t for t in avro_type if t != "null")
    return _TYPES.get(avro_type if isinstance(avro_type, str) else "string", sa.Text)


class SqlSink:
    """One table per shared topic: event_id, the source key, and one column per shared field."""

    def __init__(self, engine: sa.Engine, *, name: str, table: str, schema: dict[str, Any]) -> None:
        self.name = name
        self._engine = engine
        metadata = sa.MetaData()
        fields = [f for f in schema["fields"] if f["name"] != "header"]
        self._fields = [f["name"] for f in fields]
        self._table = sa.Table(
            table, metadata,
            sa.Column("event_id", sa.String(64), primary_key=True),
            sa.Column("source_key", sa.Text, nullable=False),
            sa.Column("source_version", sa.Text, nullable=False),
            sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
            *[sa.Column(f["name"], _column_type(f["type"])) for f in fields],
        )
        metadata.create_all(engine)
        if "deleted" not in {c["name"] for c in sa.inspect(engine).get_columns(table)}:
            with engine.begin() as conn:  # made before sinks stored deletes
                conn.execute(sa.text(f'ALTER TABLE "{table}" ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE'))
        self._pending: dict[str, dict[str, Any]] = {}

    def write_batch(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            header = event["header"]
            row = {"event_id": header["event_id"], "source_key": header["source_key"],
                   "source_version": header["source_version"], "deleted": bool(header.get("deleted", False))}
            for name in self._fields:
                value = event.get(name)
                row[name] = json.dumps(value) if isinstance(value, (dict, list)) else value
            self._pending[row["event_id"]] = row

    def flush(self) -> None:
        if not self._pending:
            return
        rows = list(self._pending.values())
        insert = (postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert)(self._table)
        updates = {name: insert.excluded[name] for name in ["source_key", "source_version", "deleted", *self._fields]}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert.on_conflict_do_update(index_elements=["event_id"], set_=updates), rows)
        except (sa.exc.DBAPIError, sa.exc.DisconnectionError) as exc:  # the latter: a failed pre-ping's reconnect
            raise SinkFailed(f"table {self._table.name!r}: {getattr(exc, 'orig', None) or exc}") from exc
        finally:
            self._pending.clear()

    @property
    def table_name(self) -> str:
        return self._table.name

    def sample(self) -> dict[str, Any] | None:
        """One stored row (the first by event id), or None when the table is empty."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(self._table).order_by(self._table.c.event_id).limit(1)).first()
        return None if row is None else dict(row._mapping)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self._table)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()
