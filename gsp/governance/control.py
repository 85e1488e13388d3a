"""The control plane's state and actions: schemas on start, agencies and their credentials
(`gsp.governance.identity`), subscription requests and decisions (`gsp.governance.subscriptions`),
and what of them the data plane must hold.

Subscriptions live in the control plane's database and reach the data plane
only as events on the compacted ``gsp.subscriptions`` topic: the planes share
no database. The table is also the outbox: a subscription (or its deletion) is
stored first, unpublished, then published, then marked published; whatever a
broker failure left unpublished is published again on :meth:`ControlPlane.start`.
So the data plane never holds a subscription the control plane does not list.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.errors import KafkaError

from gsp.errors import GspError, UserError
from gsp.governance.catalog import platform_topics, subject_schemas
from gsp.governance.deadline import WorkingCalendar
from gsp.governance.identity import IdentityStore, agency_slug
from gsp.governance.registry import RegistryError, RegistryStore
from gsp.governance.subscriptions import Subscriptions
from gsp.governance.topology import ensure_topics
from schemas import topics
from schemas.codec import Codec, contract
from schemas.registry import RegistryClient, RegistryRequestFailed
from streams import share as sharing
from streams.verify import STREAM, VERIFY

__all__ = ["ControlPlane", "PublishFailed"]

log = logging.getLogger("gsp.control")

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
                 external_registry: RegistryClient | None = None, producer: KafkaProducer | None = None,
                 calendar: WorkingCalendar | None = None, answer_days: int = 2,
                 clock: Callable[[], float] = time.time) -> None:
        """``producer``: what publishes subscriptions (default: one made on :meth:`start`, acks=all);
        ``calendar`` and ``answer_days``: the owners' answer deadline; ``clock``: now, in seconds (tests freeze it)."""
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
        self.identities = IdentityStore(engine, clock=lambda: int(clock() * 1000))
        self.subscriptions = Subscriptions(engine, self, calendar=calendar, answer_days=answer_days, clock=clock)
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
            # Not idempotent: a restarted embedded broker does not know its producer id, which kafka-python
            # treats as fatal; a subscription event published twice is the same compacted state.
            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=0,
                                           enable_idempotence=False)
        self.publish_pending()
        self._withdraw_unapproved()

    def republish(self) -> int:
        """After the broker lost its topics (the in-memory embedded broker was restarted): the platform's topics
        and every active subscription's topics made again, and every subscription the data plane must hold
        published again from the database, through the outbox (what fails stays pending for the next start).
        The schemas need nothing: the registry lives in the database. How many subscriptions were published."""
        ensure_topics(self._bootstrap, platform_topics(self._partitions), replication_factor=self._replication)
        wanted: dict[str, tuple[int, dict[str, str]]] = {topic: (self._partitions, {}) for event in self.published_subscriptions()
                  for topic in self._topics_of(event)}
        ensure_topics(self._bootstrap, wanted, replication_factor=self._replication)
        with self._engine.begin() as conn:
            conn.execute(sa.update(_subscriptions).where(_subscriptions.c.deleted.is_(False)).values(published=False))
        return self.publish_pending()

    def _topics_of(self, event: dict[str, Any]) -> list[str]:
        """The topics a subscription's event delivers on (a verify subscription's requests topic too)."""
        return list(self._verify_topics(event["agency"])[2]) if event.get("mode") == VERIFY else [event["topic"]]

    def _withdraw_unapproved(self) -> None:
        """Subscriptions made before owners decided (a database from an older release) have no approved version:
        they are withdrawn from the data plane, and their agencies must request them."""
        for event in self.published_subscriptions():
            sid = event["subscription_id"]
            if self.subscriptions.known(sid):
                continue
            log.warning("subscription withdrawn: granted before owners approved subscriptions; its agency must "
                        "request it", extra={"subscription": sid})
            with self._engine.begin() as conn:
                self.stage_withdrawal(conn, sid)
            try:
                self.publish_staged(sid)
            except PublishFailed as exc:  # stays staged: withdrawn on the next start
                log.error(str(exc), extra={"subscription": sid})

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

    def share_topic(self, agency_slug: str, dataset: str, name: str) -> str:
        """The topic a subscription's records are delivered on."""
        return topics.share(agency_slug, dataset, name=name)

    def prepare_event(self, subscription_id: str, *, agency: str, dataset: str, name: str, version: int,
                      fields: list[str], row_filter: dict[str, list[str]], verdicts: list[str], valid_from: int,
                      valid_until: int | None, backfill: bool, mode: str = STREAM,
                      consent: bool = False) -> dict[str, Any]:
        """The Subscription event of an approved version: its projected contract registered, its topic made.

        A verify subscription's topic is the agency's replies topic; its requests topic is made too, and both
        contracts are registered under them, so an agency's Confluent-style clients find them."""
        slug = agency_slug(agency)
        if mode == VERIFY:
            topic, schema, made = self._verify_topics(slug)
        else:
            topic = self.share_topic(slug, dataset, name)
            schema = sharing.projected_schema(dataset, slug, fields, contract("vn.gsp.common.EventHeader"))
            made = {topic: schema}
        try:
            schema_id = {t: self._register(topics.subject(t), json.dumps(s, ensure_ascii=False))
                         for t, s in made.items()}[topic]
        except (RegistryError, RegistryRequestFailed) as exc:
            raise UserError(f"the changed subscription breaks the contract of {topic}: {exc}") from None
        ensure_topics(self._bootstrap, {t: (self._partitions, {}) for t in made}, replication_factor=self._replication)
        key_version, key = self.identities.pseudonym_key(agency)
        return {"subscription_id": subscription_id, "agency": slug, "agency_id": agency, "dataset": dataset,
                "pseudonym_key": key, "key_version": key_version,
                "fields": list(fields), "row_filter": row_filter, "verdicts": verdicts, "topic": topic,
                "schema_id": schema_id, "schema": json.dumps(schema, ensure_ascii=False), "version": version,
                "created_at": int(time.time() * 1000), "valid_from": valid_from, "valid_until": valid_until,
                "backfill": backfill, "mode": mode, "consent": consent}

    def _verify_topics(self, slug: str) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
        """(replies topic, its contract, every topic of the agency's verification -> its contract)."""
        replies, reply = topics.verify_replies(slug), contract("vn.gsp.verify.VerificationReply")
        return replies, reply, {topics.verify_requests(slug): contract("vn.gsp.verify.VerificationRequest"),
                                replies: reply}

    def stage_event(self, conn: sa.Connection, event: dict[str, Any]) -> None:
        """Store ``event`` as what the data plane must hold for its subscription, unpublished (the outbox),
        in the caller's transaction; `publish_staged` publishes it."""
        sid = event["subscription_id"]
        conn.execute(sa.delete(_subscriptions).where(_subscriptions.c.subscription_id == sid))
        conn.execute(sa.insert(_subscriptions).values(
            subscription_id=sid, agency=event["agency"], dataset=event["dataset"],
            event=json.dumps(event, ensure_ascii=False), version=event["version"], deleted=False, published=False))

    def stage_withdrawal(self, conn: sa.Connection, subscription_id: str) -> None:
        """Store that the data plane must drop a subscription (its tombstone), in the caller's transaction."""
        conn.execute(sa.update(_subscriptions).where(_subscriptions.c.subscription_id == subscription_id)
                     .values(deleted=True, published=False))

    def publish_staged(self, subscription_id: str) -> None:
        """Publish what was staged for a subscription; PublishFailed (it stays staged) when the broker does not ack."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_subscriptions).where(
                _subscriptions.c.subscription_id == subscription_id, _subscriptions.c.published.is_(False))).first()
        if row is not None:
            self._publish(subscription_id, None if row.deleted else json.loads(row.event), version=row.version,
                          deleted=row.deleted)

    def published_subscriptions(self) -> list[dict[str, Any]]:
        """The Subscription events the data plane holds (or is about to): one active version per subscription."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_subscriptions.c.event).where(_LISTED)
                                .order_by(_subscriptions.c.subscription_id))
            return [json.loads(r.event) for r in rows]

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
