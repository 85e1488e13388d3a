"""Outbox source, in Debezium's outbox style: an application writes its changes to an outbox table, we publish them.

The table has the columns ``id``, ``aggregatetype``, ``aggregateid``, ``type`` and ``payload`` (JSON text), and
an incrementing column to read it in order (``id`` unless told). Rows whose ``aggregatetype`` is the configured
one are published in that order, each once: the key is ``aggregateid``, the value the payload mapped to the
contract (``columns``, as in the SQL source), the version the row's ``id``, so every change is its own event.
A row whose ``type`` is one of ``delete_types`` (case-insensitive) is a delete: published with ``deleted`` set
and the payload's fields. A payload that is not a JSON object is quarantined with the reason.
Rows of other aggregate types are not read. The position is the incrementing column's last value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.base import Problem, SourceRecord, SourceUnavailable
from connectors.sql_source import map_columns

__all__ = ["OUTBOX_COLUMNS", "OutboxSource", "OutboxSourceConfig"]

OUTBOX_COLUMNS = ("id", "aggregatetype", "aggregateid", "type", "payload")


@dataclass(frozen=True, kw_only=True)
class OutboxSourceConfig:
    name: str
    aggregate_type: str                       # the rows to publish (the dataset's name, unless told)
    table: str = "outbox"
    incrementing_column: str = "id"
    delete_types: tuple[str, ...] = ("deleted",)
    columns: dict[str, str] = field(default_factory=dict)  # contract path -> payload key


class OutboxSource:
    """Polls one outbox table for one aggregate type."""

    def __init__(self, engine: sa.Engine, config: OutboxSourceConfig) -> None:
        self.name = config.name
        self._engine = engine
        self._config = config
        self._deletes = {t.lower() for t in config.delete_types}
        try:
            self._table = sa.Table(config.table, sa.MetaData(), autoload_with=engine)
        except sa.exc.NoSuchTableError:
            raise ValueError(f"outbox table {config.table!r} does not exist in the source database") from None
        for column in (*OUTBOX_COLUMNS, config.incrementing_column):
            if column not in self._table.c:
                raise ValueError(f"column {column!r} not found in outbox table {config.table!r}")
        self._inc = -1

    def start(self, position: dict[str, Any] | None) -> None:
        self._inc = int(position["inc"]) if position else -1

    def poll(self, max_records: int) -> list[SourceRecord]:
        c, t = self._config, self._table.c
        inc = t[c.incrementing_column]
        query = (sa.select(self._table).where(inc > self._inc, t.aggregatetype == c.aggregate_type)
                 .order_by(inc).limit(max_records))
        try:
            with self._engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query)]
        except (sa.exc.DBAPIError, sa.exc.DisconnectionError) as exc:
            raise SourceUnavailable(f"outbox table {c.table!r} cannot be read: {getattr(exc, 'orig', None) or exc}") from exc
        records = []
        for row in rows:
            self._inc = int(row[c.incrementing_column])
            records.append(self._record(row))
        return records

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        key, version, position = str(row["aggregateid"]), str(row["id"]), {"inc": self._inc}
        deleted = str(row["type"] or "").lower() in self._deletes
        origin = f"{self._config.table} row {row['id']}"
        text = row["payload"]
        try:
            payload = json.loads(text) if isinstance(text, (str, bytes)) else text
            if not isinstance(payload, dict):
                raise ValueError(f"a JSON {type(payload).__name__ if payload is not None else 'null'} "
                                 "where an object was expected")
        except ValueError as exc:  # json.JSONDecodeError is one
            original = text.encode() if isinstance(text, str) else text if isinstance(text, bytes) else b""
            return SourceRecord(key=key, version=version, value={}, position=position, raw=row, deleted=deleted,
                                origin=origin, problem=Problem(rule="outbox.payload", original=original,
                                                               reason=f"{origin}: payload is not usable: {exc}"))
        columns = self._config.columns
        value = map_columns({**dict.fromkeys(columns.values()), **payload}, columns)
        return SourceRecord(key=key, version=version, value=value, position=position, raw=row, deleted=deleted,
                            origin=origin)

    def close(self) -> None:
        self._engine.dispose()
