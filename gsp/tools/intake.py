"""The demo's sources as their systems would hand them over: SQL tables, an outbox table, files dropped in a folder.

`write_intake` stores each generated table the way `gsp.tools.scenario.INTAKE` says and returns, per
table, the `Source` a connector reads it with (the same classes `gsp connect run` runs).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.base import Source
from connectors.file_source import FileSource, FileSourceConfig
from connectors.outbox_source import OutboxSource, OutboxSourceConfig
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.governance.catalog import DATASETS
from gsp.tools.scenario import INTAKE
from gsp.tools.synth.seed import SourceTable

__all__ = ["Intake", "write_intake"]

_FILES = 3  # the participants arrive as this many files, like monthly batches


@dataclass(frozen=True)
class Intake:
    table: SourceTable
    kind: str              # "sql" | "outbox" | "file"
    where: str             # the table or the folder, for the summary
    open: Callable[[], Source]


def write_intake(tables: list[SourceTable], *, engine: sa.Engine, drop: Path) -> list[Intake]:
    out = []
    for table in tables:
        kind = INTAKE.get(table.name, "sql")
        if kind == "outbox":
            out.append(_outbox(engine, table))
        elif kind == "file":
            out.append(_files(drop / table.name, table))
        else:
            out.append(_sql(engine, table))
    return out


def _sql(engine: sa.Engine, table: SourceTable) -> Intake:
    d = DATASETS[table.dataset]
    columns = [c for c in table.rows[0] if c != "updated_at"]
    t = sa.Table(table.name, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                 sa.Column("updated_at", sa.BigInteger, nullable=False, index=True),
                 *[sa.Column(c, sa.Text) for c in columns])
    t.create(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(t), [{c: _text(row.get(c)) for c in columns} | {"updated_at": row["updated_at"]}
                                    for row in table.rows])
    config = SqlSourceConfig(name=table.name.replace("_", "-"), table=table.name,
                             key_column=d.source_columns.get(d.key, d.key), columns=dict(d.source_columns))
    return Intake(table, "sql", f"table {table.name}", lambda: SqlSource(engine, config))


def _outbox(engine: sa.Engine, table: SourceTable) -> Intake:
    """The registry's change events written in the Debezium outbox style, as the population database's service would."""
    d = DATASETS[table.dataset]
    t = sa.Table("outbox", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                 sa.Column("aggregatetype", sa.Text, nullable=False), sa.Column("aggregateid", sa.Text, nullable=False),
                 sa.Column("type", sa.Text, nullable=False), sa.Column("payload", sa.Text, nullable=False),
                 sa.Column("updated_at", sa.BigInteger, nullable=False))
    t.create(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(t), [{"aggregatetype": table.dataset, "aggregateid": str(row[d.key]),
                                     "type": "created", "payload": json.dumps(row, ensure_ascii=False),
                                     "updated_at": row["updated_at"]} for row in table.rows])
    config = OutboxSourceConfig(name=table.name.replace("_", "-"), table="outbox", aggregate_type=table.dataset)
    return Intake(table, "outbox", "table outbox", lambda: OutboxSource(engine, config))


def _files(folder: Path, table: SourceTable) -> Intake:
    """The rows as CSV files, each written under a temporary name and renamed when complete."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(table.rows[0])
    size = -(-len(table.rows) // _FILES)
    for i in range(_FILES):
        part = table.rows[i * size:(i + 1) * size]
        if not part:
            break
        final = folder / f"{table.name}-{i + 1:02d}.csv"
        temporary = final.with_name(final.name + ".part")
        with temporary.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows({c: _text(row.get(c)) or "" for c in columns} for row in part)
        os.replace(temporary, final)
    d = DATASETS[table.dataset]  # CSV text is converted to the contract's numbers; columns map as for SQL
    config = FileSourceConfig(name=table.name.replace("_", "-"), format="csv", key_field=d.key,
                              columns=dict(d.source_columns), contract=d.avro)
    return Intake(table, "file", f"folder {folder}", lambda: FileSource(folder, config))


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)
