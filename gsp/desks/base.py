"""What the stewards' desks (quarantine, match review) share: topics indexed into SQL, acknowledged writes, the audit log.

A desk holds items copied from topics by an :class:`Indexer`, insert-if-absent
by the item's event id, so a replay changes nothing and never reopens a closed
item. A steward's action claims the open row, publishes, waits for the broker's
ack and commits: an item is closed only if the broker acknowledged every event
the action wrote, including its ``gsp.audit`` event.

    GspError
    ├── Unavailable    the broker did not acknowledge an action; the item was left open
    └── UserError
        └── NotOpen    the item was already closed
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, IllegalGenerationError, KafkaError, RebalanceInProgressError, UnknownMemberIdError
from sqlalchemy.dialects import postgresql, sqlite

from gsp.errors import GspError, NotFound, UserError
from schemas import topics
from schemas.codec import Codec, SchemaUnavailable, UnknownSchema, contract

__all__ = ["AuditLog", "Indexer", "NotOpen", "Unavailable", "check_status", "claim", "commit", "deliver", "fetch", "list_items",
           "now_ms", "upsert"]

_REBALANCING = (CommitFailedError, RebalanceInProgressError, IllegalGenerationError, UnknownMemberIdError)

class NotOpen(UserError):
    """The item was already closed (released, discarded, accepted or rejected)."""


class Unavailable(GspError):
    """The broker did not acknowledge an action; the item was left open."""


def now_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


def deliver(producer: KafkaProducer, topic: str, key: bytes, value: bytes) -> None:
    try:
        producer.send(topic, key=key, value=value).get(timeout=30)
    except KafkaError as exc:
        raise Unavailable(f"the broker did not acknowledge the write to {topic}; the item is left open: {exc}") from None


def commit(consumer: KafkaConsumer, *, stage: str) -> bool:
    """Commit the consumer's positions; False when a rebalance took its partitions meanwhile. That is routine
    (a second control plane joining the group), not a failure: the partitions' next owner reads the batch
    again from the last commit, and every caller's write is idempotent (insert-if-absent, offset-deduped)."""
    try:
        consumer.commit()
    except _REBALANCING as exc:
        logging.getLogger(f"gsp.{stage}").info("commit skipped: the group is rebalancing",
                                               extra={"stage": stage, "error": type(exc).__name__})
        return False
    return True


class Indexer:
    """Consumes topics into one table, insert-if-absent by its primary key; offsets are committed after the write.

    A desk's indexer says how a message becomes a row (``_row``, ``None`` to skip
    it) and may adjust a batch before it is inserted (``_store``).
    """

    stage = "desk"

    def __init__(self, bootstrap: str, engine: sa.Engine, *, table: sa.Table, sources: Iterable[str], group: str,
                 consumer_config: dict[str, Any] | None = None) -> None:
        self._engine, self._table = engine, table
        table.metadata.create_all(engine)
        config = {"bootstrap_servers": bootstrap, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
                  **(consumer_config or {})}
        self._consumer = KafkaConsumer(*sources, group_id=group, client_id=group, enable_auto_commit=False,
                                       auto_offset_reset="earliest", **config)
        self.indexed = 0

    def run_once(self, *, timeout_ms: int = 500) -> int:
        """Index one batch; the number of events read. On failure the batch is read again next time."""
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=1000)
        if not polled:
            return 0
        key = self._table.primary_key.columns[0].name
        try:
            rows: dict[str, dict[str, Any]] = {}
            for row in (self._row(m) for batch in polled.values() for m in batch):
                if row is not None:
                    rows.setdefault(row[key], row)
            if rows:
                with self._engine.begin() as conn:
                    self._store(conn, list(rows.values()))
        except Exception:
            for tp, batch in polled.items():
                self._consumer.seek(tp, batch[0].offset)
            raise
        commit(self._consumer, stage=self.stage)
        self.indexed += (read := sum(len(batch) for batch in polled.values()))
        return read

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except (sa.exc.SQLAlchemyError, KafkaError, UnknownSchema, SchemaUnavailable) as exc:
                logging.getLogger(f"gsp.{self.stage}").error(f"{self.stage} indexing failed, retrying",
                                                             extra={"stage": self.stage, "error": str(exc)[:300]})
                stop.wait(2.0)

    def close(self) -> None:
        self._consumer.close()

    def _row(self, message: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def _store(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        keys = [c.name for c in self._table.primary_key]
        conn.execute(upsert(conn, self._table).on_conflict_do_nothing(index_elements=keys), rows)

    @staticmethod
    def received_at(message: Any) -> int:
        return int(message.timestamp) if message.timestamp and message.timestamp > 0 else now_ms()

    @staticmethod
    def columns_of(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
        """The row's values that are columns: fields added to a contract later are not."""
        return {k: v for k, v in row.items() if k in table.c}


def upsert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing`` and ``on_conflict_do_update``, in the connection's dialect."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def check_status(status: str | None, statuses: tuple[str, ...]) -> str | None:
    """A status to list by (``None``: every status), or a UserError naming the known ones."""
    if status is not None and status not in statuses:
        raise UserError(f"unknown status {status!r}; one of {', '.join(statuses)}")
    return status


def list_items(engine: sa.Engine, columns: list[sa.Column[Any]], *, order_by: list[sa.Column[Any]],
               where: dict[sa.Column[Any], Any], limit: int,
               also: Iterable[sa.ColumnElement[bool]] = ()) -> list[dict[str, Any]]:
    """Rows whose columns equal the given values (``None`` matches anything) and that meet the conditions
    ``also``, at most ``limit`` (1 to 1000)."""
    query = sa.select(*columns).where(*also).order_by(*order_by).limit(max(1, min(int(limit), 1000)))
    for column, wanted in where.items():
        if wanted is not None:
            query = query.where(column == wanted)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def fetch(conn: sa.Connection, table: sa.Table, item_id: str, *, what: str) -> dict[str, Any]:
    """One item by its primary key, binary columns as bytes; NotFound names ``what`` it is."""
    row = conn.execute(sa.select(table).where(table.primary_key.columns[0] == item_id)).first()
    if row is None:
        raise NotFound(f"no {what} {item_id!r}")
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row._mapping.items()}


def claim(conn: sa.Connection, table: sa.Table, item_id: str, values: dict[str, Any], *, what: str) -> None:
    """Close an open item in the caller's transaction, before publishing: a concurrent action waits for the row,
    then finds it closed. The caller commits only after the broker acknowledged."""
    key = table.primary_key.columns[0]
    if conn.execute(sa.update(table).where(key == item_id, table.c.status == "open").values(**values)).rowcount != 1:
        raise NotOpen(f"{what} {item_id} was resolved by someone else meanwhile")


class AuditLog:
    """Publishes control-plane actions on ``gsp.audit`` and waits for the broker's ack.

    ``register(subject, schema_json) -> id`` registers the AuditEvent contract on
    first use (registering an identical schema again returns its existing id).
    """

    subject = topics.subject(topics.AUDIT)

    def __init__(self, producer: KafkaProducer, codec: Codec, *, register: Callable[[str, str], int],
                 clock: Callable[[], float] = time.time) -> None:
        self._producer, self._codec, self._register, self._clock = producer, codec, register, clock
        self._schema_id: int | None = None
        # Told of every event published (the audit ledger listens); a failure there is the caller's to report.
        # In the caller's transaction when it passes one (a desk action and its entry commit together).
        self.on_record: Callable[[dict[str, Any], sa.Connection | None], None] = lambda event, conn: None

    def prepare(self) -> int:
        """Register the contract once; call it outside any transaction on the registry's database."""
        if self._schema_id is None:
            schema = contract("vn.gsp.control.AuditEvent")
            schema_id = self._register(self.subject, json.dumps(schema, ensure_ascii=False))
            self._codec.add(schema_id, schema)
            self._schema_id = schema_id
        return self._schema_id

    def ready(self, by: str) -> str:
        """Who is acting, checked, with the contract registered: call it before the action's transaction
        (on SQLite the registry may share the desk's database, which the transaction locks)."""
        actor = (by or "").strip()
        if not actor or len(actor) > 128:
            raise UserError("say who is acting (by): a user name of at most 128 characters")
        self.prepare()
        return actor

    def record(self, *, actor: str, action: str, subject: str, details: dict[str, str],
               event_id: str | None = None, conn: sa.Connection | None = None) -> dict[str, Any]:
        schema_id = self.prepare()
        event = {"event_id": event_id or str(uuid.uuid4()), "at": now_ms(self._clock), "actor": actor, "action": action,
                 "subject": subject, "details": details}
        self.on_record(event, conn)  # first: the ledger holds the change even when the broker refuses the event
        deliver(self._producer, topics.AUDIT, subject.encode(), self._codec.encode(schema_id, event))
        return event
