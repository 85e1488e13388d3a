"""The control plane's state and actions: schemas on start, and agencies' subscriptions.

Subscriptions live in the control plane's database and reach the data plane
only as events on the compacted ``gsp.subscriptions`` topic: the planes share
no database. The table is also the outbox: a subscription (or its deletion) is
stored first, unpublished, then published, then marked published; whatever a
broker failure left unpublished is published again on :meth:`ControlPlane.start`.
So the data plane never holds a subscription the control plane does not list.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.errors import KafkaError

from gsp.errors import GspError, NotFound, UserError
from gsp.governance.catalog import DATASETS, platform_topics, subject_schemas
from gsp.governance.registry import RegistryError, RegistryStore
from gsp.governance.topology import ensure_topics
from schemas import topics
from schemas.codec import Codec, contract
from schemas.envelope import Verdict
from schemas.registry import RegistryClient, RegistryRequestFailed
from streams import share as sharing

__all__ = ["ControlPlane", "PublishFailed"]

_metadata = sa.MetaData()
_subscriptions = sa.Table(
    "subscriptions", _metadata,
    sa.Column("subscription_id", sa.String(200), primary_key=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("event", sa.Text, nullable=False),  # the published Subscription event as JSON
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    # False while the row's state (the event, or the tombstone when deleted) is not yet acknowledged by the broker.
    sa.Column("published", sa.Boolean, nullable=False, default=False),
)
# Stored but not published: a deletion is in force only once its tombstone is, so until then it is still listed.
_LISTED = sa.or_(_subscriptions.c.deleted.is_(False), _subscriptions.c.published.is_(False))


class PublishFailed(GspError):
    """The broker did not acknowledge a subscription change; it is stored and is published on the next start."""


class ControlPlane:
    def __init__(self, engine: sa.Engine, *, bootstrap: str, partitions: int, replication_factor: int = 1,
                 external_registry: RegistryClient | None = None, producer: KafkaProducer | None = None) -> None:
        """``producer``: what publishes subscriptions (default: one made on :meth:`start`, acks=all)."""
        self._engine = engine
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._replication = replication_factor
        # With GSP_SCHEMA_REGISTRY_URL set, contracts are registered there too, because that is where workers look.
        self._external = external_registry
        self.registry = RegistryStore(engine)
        _metadata.create_all(engine)
        _add_published_column(engine)
        self._codec = Codec()
        self._producer = producer
        self._owns_producer = producer is None

    @property
    def engine(self) -> sa.Engine:
        """The control-plane database, which the desks and the quality recorder of `gsp serve` write to as well."""
        return self._engine

    def start(self) -> None:
        """Create the platform's topics, register its schemas and publish what was stored unpublished (idempotent)."""
        ensure_topics(self._bootstrap, platform_topics(self._partitions), replication_factor=self._replication)
        for subject, schema in subject_schemas().items():
            self._register(subject, json.dumps(schema, ensure_ascii=False))
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=0)
        self.publish_pending()

    def close(self) -> None:
        if self._producer is not None and self._owns_producer:
            self._producer.close()
        self._engine.dispose()

    def publish_pending(self) -> int:
        """Publish every subscription and deletion stored but not acknowledged; how many there were."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_subscriptions).where(_subscriptions.c.published.is_(False))
                                .order_by(_subscriptions.c.subscription_id)).all()
        for row in rows:
            self._publish(row.subscription_id, None if row.deleted else json.loads(row.event),
                          version=row.version, deleted=row.deleted)
        return len(rows)

    def create_subscription(self, *, agency: str, dataset: str, fields: list[str],
                            row_filter: dict[str, list[str]] | None = None,
                            verdicts: list[str] | None = None) -> dict[str, Any]:
        """Approve a subscription and publish it; refused with a clear reason if it cannot be honoured."""
        row_filter = row_filter or {}
        verdicts = verdicts or [Verdict.MATCHED]
        if not topics.valid_slug(agency):
            raise UserError(f"agency {agency!r} must be a lower-case slug such as bo-cong-an")
        if dataset not in DATASETS:
            raise UserError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
        try:
            sharing.check(dataset, fields, row_filter)
        except sharing.ShareError as exc:
            raise UserError(str(exc)) from None
        unknown = set(verdicts) - set(Verdict)
        if unknown:
            raise UserError(f"unknown verdict {sorted(unknown)[0]!r}")
        subscription_id = f"{agency}:{dataset}"
        topic = topics.share(agency, dataset)
        header = contract("vn.gsp.common.EventHeader")
        schema = sharing.projected_schema(dataset, agency, fields, header)
        try:
            schema_id = self._register(topics.subject(topic), json.dumps(schema, ensure_ascii=False))
        except (RegistryError, RegistryRequestFailed) as exc:
            raise UserError(f"the changed subscription breaks {agency}'s contract: {exc}") from None
        ensure_topics(self._bootstrap, {topic: (self._partitions, {})}, replication_factor=self._replication)
        previous = self._row(subscription_id)
        event: dict[str, Any] = {
            "subscription_id": subscription_id, "agency": agency, "dataset": dataset, "fields": list(fields),
            "row_filter": row_filter, "verdicts": verdicts, "topic": topic, "schema_id": schema_id,
            "schema": json.dumps(schema, ensure_ascii=False), "version": (previous["version"] + 1) if previous else 1,
            "created_at": int(time.time() * 1000),
        }
        with self._engine.begin() as conn:
            conn.execute(sa.delete(_subscriptions).where(_subscriptions.c.subscription_id == subscription_id))
            conn.execute(sa.insert(_subscriptions).values(
                subscription_id=subscription_id, agency=agency, dataset=dataset,
                event=json.dumps(event, ensure_ascii=False), version=event["version"], deleted=False,
                published=False))
        self._publish(subscription_id, event, version=event["version"], deleted=False)
        return event

    def list_subscriptions(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_subscriptions.c.event).where(_LISTED)
                                .order_by(_subscriptions.c.subscription_id))
            return [json.loads(r.event) for r in rows]

    def delete_subscription(self, subscription_id: str) -> None:
        """Store the deletion, then publish its tombstone; a deletion not yet acknowledged may be asked for again."""
        row = self._row(subscription_id)
        if row is None:
            raise NotFound(f"no subscription {subscription_id!r}")
        with self._engine.begin() as conn:
            conn.execute(sa.update(_subscriptions).where(_subscriptions.c.subscription_id == subscription_id)
                         .values(deleted=True, published=False))
        self._publish(subscription_id, None, version=row["version"], deleted=True)

    def register(self, subject: str, schema: str) -> int:
        """Register a schema in the registry the workers use (and in the control plane's own)."""
        return self._register(subject, schema)

    def _register(self, subject: str, schema: str) -> int:
        local = self.registry.register(subject, schema)
        return self._external.register(subject, schema) if self._external is not None else local

    def schema_id(self, subject: str) -> int:
        """Id of a subject's latest schema, in the registry the workers use."""
        if self._external is not None:
            return self._external.latest(subject)[0]
        return self.registry.get_version(subject, "latest").id

    def _row(self, subscription_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_subscriptions).where(
                _subscriptions.c.subscription_id == subscription_id, _LISTED)).first()
        return dict(row._mapping) if row else None

    def _publish(self, subscription_id: str, event: dict[str, Any] | None, *, version: int, deleted: bool) -> None:
        """Publish a stored row's state (``None``: its tombstone) and mark that very state published."""
        assert self._producer is not None, "start() first"
        value = None
        if event is not None:
            schema_id = self.schema_id(topics.subject(topics.SUBSCRIPTIONS))
            if not self._codec.knows(schema_id):
                self._codec.add(schema_id, contract("vn.gsp.control.Subscription"))
            value = self._codec.encode(schema_id, event)
        try:
            self._producer.send(topics.SUBSCRIPTIONS, key=subscription_id.encode(), value=value).get(timeout=30)
        except KafkaError as exc:
            what = "deletion" if deleted else f"version {version}"
            raise PublishFailed(f"subscription {subscription_id} ({what}) is stored but the broker did not acknowledge "
                                f"it; it is published when the control plane next starts: {exc}") from None
        # Only the state just published: a newer change stored meanwhile stays pending for its own publish.
        with self._engine.begin() as conn:
            conn.execute(sa.update(_subscriptions).where(
                _subscriptions.c.subscription_id == subscription_id, _subscriptions.c.version == version,
                _subscriptions.c.deleted.is_(deleted)).values(published=True))


def _add_published_column(engine: sa.Engine) -> None:
    """Databases made before the outbox lack ``published``; their rows were published before being stored."""
    if "published" in {c["name"] for c in sa.inspect(engine).get_columns("subscriptions")}:
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE subscriptions ADD COLUMN published BOOLEAN NOT NULL DEFAULT TRUE")
