"""SQL source in timestamp+incrementing mode (Kafka Connect's JDBC semantics), with SQLAlchemy.

Rows are read in (timestamp, id) order after the stored position. Rows
modified within ``delay_ms`` of now are left for the next poll so that a
transaction still committing with an older timestamp is not skipped. A
database that cannot be reached raises :class:`SourceUnavailable` and leaves
the position where it was, so the runner's retry reads the same rows.

Deletes: with ``soft_delete_column``, a row whose value there is set (not NULL, and not false, 0 or an
empty string: a ``deleted_at`` timestamp or an ``is_deleted`` flag) is the source's delete of the record.
Marking it must also bump the timestamp column, as any update does, so it is read; it is published with
``deleted`` set and its last fields, as a new version of the record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connectors.base import SourceRecord, SourceUnavailable

__all__ = ["SqlSource", "SqlSourceConfig", "is_set", "map_columns"]


@dataclass(frozen=True, kw_only=True)
class SqlSourceConfig:
    name: str
    table: str
    key_column: str
    timestamp_column: str = "updated_at"
    incrementing_column: str = "id"
    columns: dict[str, str] = field(default_factory=dict)  # contract path ("residence.ward_code") -> column
    delay_ms: int = 0
    soft_delete_column: str | None = None  # set (truthy, non-NULL) in a row: the record was deleted


class SqlSource:
    """Polls one table; ``columns`` maps contract fields to columns (default: same name)."""

    def __init__(self, engine: sa.Engine, config: SqlSourceConfig) -> None:
        self.name = config.name
        self._engine = engine
        self._config = config
        try:
            self._table = sa.Table(config.table, sa.MetaData(), autoload_with=engine)
        except sa.exc.NoSuchTableError:
            raise ValueError(f"source table {config.table!r} does not exist in the source database") from None
        soft_delete = (config.soft_delete_column,) if config.soft_delete_column else ()
        for column in (config.key_column, config.timestamp_column, config.incrementing_column, *soft_delete,
                       *config.columns.values()):
            if column not in self._table.c:
                raise ValueError(f"column {column!r} not found in table {config.table!r}")
        self._ts = -1
        self._inc = -1

    def start(self, position: dict[str, Any] | None) -> None:
        """Resume after ``position``; None rewinds to the first row (a replay after the broker lost everything)."""
        self._ts, self._inc = (int(position["ts"]), int(position["inc"])) if position else (-1, -1)

    def poll(self, max_records: int) -> list[SourceRecord]:
        c = self._config
        ts, inc = self._table.c[c.timestamp_column], self._table.c[c.incrementing_column]
        query = (
            sa.select(self._table)
            .where(sa.or_(ts > self._ts, sa.and_(ts == self._ts, inc > self._inc)))
            .order_by(ts, inc)
            .limit(max_records)
        )
        if c.delay_ms:
            query = query.where(ts <= int(time.time() * 1000) - c.delay_ms)
        try:
            with self._engine.connect() as conn:
                result = conn.execute(query)
                names = list(result.keys())  # once: a Row's own mapping builds its keys again for every row
                rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        except (sa.exc.DBAPIError, sa.exc.DisconnectionError) as exc:  # the latter: a failed pre-ping's reconnect
            raise SourceUnavailable(f"source table {c.table!r} cannot be read: {getattr(exc, 'orig', None) or exc}") from exc
        records = []
        for row in rows:
            self._ts, self._inc = int(row[c.timestamp_column]), int(row[c.incrementing_column])
            records.append(SourceRecord(
                key=str(row[c.key_column]),
                version=f"{self._ts}:{self._inc}",
                value=self._map(row),
                position={"ts": self._ts, "inc": self._inc},
                raw=row,
                deleted=c.soft_delete_column is not None and is_set(row[c.soft_delete_column]),
            ))
        return records

    def _map(self, row: dict[str, Any]) -> dict[str, Any]:
        return map_columns(row, self._config.columns)

    def close(self) -> None:
        self._engine.dispose()


def is_set(value: Any) -> bool:
    """Whether a soft-delete column's value marks a delete: anything but NULL, false, 0 and "", "0", "false", "f", "no", "n"."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "f", "no", "n")
    return value is not None and value is not False and value != 0


def map_columns(row: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """A source row as contract fields: ``columns`` maps a field path ("residence.ward_code") to its column; others keep their name."""
    mapped_columns = set(columns.values())
    value: dict[str, Any] = {k: v for k, v in row.items() if k not in mapped_columns} if columns else dict(row)
    for path, column in columns.items():
        target = value
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = row[column]
    return value
