"""The control plane's running services, shared by `gsp serve` and `gsp demo`.

The control plane (catalog, registry, subscriptions), its HTTP API, the
quarantine desk and the match review desk with their indexers, and the
quality recorder, all on one broker and one database. Every background loop
runs under a :class:`~gsp.runtime.supervised.Supervisor`; ``/health`` shows the
loops and whether the broker answers (``kafka``), as whoever watches it
(`gsp serve`) reports with :meth:`ControlServices.broker_lost` and
:meth:`ControlServices.broker_back`.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from connectors.cluster import ClusterStore
from gsp.desks.quality import QualityRecorder
from gsp.desks.quarantine import AuditLog, QuarantineDesk, QuarantineIndexer
from gsp.desks.review import ReviewDesk, ReviewIndexer
from gsp.desks.review_registry import RegistryLookup
from gsp.errors import UserError
from gsp.governance.backfill import Backfill
from gsp.governance.connectors import ConnectorRecords
from gsp.governance.consent import Consents
from gsp.governance.control import ControlPlane, PublishFailed
from gsp.governance.deadline import WorkingCalendar
from gsp.governance.ledger import CONTROL, Ledger, governance_entry, ledger_key
from gsp.governance.ledger_writer import LedgerWriter
from gsp.governance.lineage import Lineage, header_reader
from gsp.governance.metrics import OpenItems, SubscriptionRequests
from gsp.governance.subscriptions import OverdueRequests
from gsp.governance.verification import VerificationGateway
from gsp.http.app import ApiServer, build_app
from gsp.http.connect import ConnectCluster, ConnectOffsets
from gsp.http.feed import Feed
from gsp.runtime.credentials import ensure_admin, worker_token
from gsp.runtime.supervised import LoopState, Supervisor
from schemas import topics
from schemas.codec import Codec
from schemas.datasets import declared
from schemas.registry import RegistryClient, RegistryUnavailable
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config

__all__ = ["ControlServices"]

log = logging.getLogger("gsp.control")


class ControlServices:
    def __init__(self, settings: Settings, *, bootstrap: str, engine: sa.Engine, metrics: CollectorRegistry,
                 host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._settings = settings
        self._bootstrap = bootstrap
        self._engine = engine
        self._metrics = metrics
        self._host, self._port = host, port
        self._supervisor = Supervisor(metrics)
        self.kafka = LoopState()  # the broker, as `gsp serve` watches it: up until it says otherwise
        self.kafka.mark(up=True)
        external = RegistryClient(settings.schema_registry_url, cafile=settings.tls_ca) if settings.schema_registry_url else None
        try:
            self.control = ControlPlane(engine, bootstrap=bootstrap, partitions=settings.partitions,
                                        replication_factor=settings.replication_factor, external_registry=external,
                                        calendar=WorkingCalendar.from_settings(settings),
                                        answer_days=settings.answer_days)
            self.control.start()
        except sa.exc.DBAPIError as exc:
            raise UserError(f"control-plane database unreachable: {str(exc.orig).splitlines()[0]}") from None
        except (RegistryUnavailable, PublishFailed) as exc:
            raise UserError(str(exc)) from None
        self.codec = Codec(resolve=external.schema_by_id if external else (lambda i: self.control.registry.schema_by_id(i).schema))
        # Not idempotent: its producer id would be unknown to a restarted embedded broker, a fatal error that
        # leaves the producer refusing every later send; what it publishes is keyed and replay-safe anyway.
        self._producer = KafkaProducer(**{**kafka_producer_config(settings, bootstrap), "enable_idempotence": False})
        # The heads' witness has a producer of its own: a send to gsp.ledger.heads left unanswered (seen once on
        # a loaded machine, 120 s) must not hold every other flush of the shared producer.
        self._witness_producer = KafkaProducer(**{**kafka_producer_config(settings, bootstrap),
                                                  "enable_idempotence": False})
        audit = AuditLog(self._producer, self.codec, register=self.control.register)
        self.ledger = Ledger(engine, ledger_key(settings.home, settings.ledger_key))
        self.ledger.on_heads = self._witness

        def entered(event: dict[str, Any], conn: sa.Connection | None) -> None:
            """Every AuditEvent into the ledger too: a desk action's in its own transaction."""
            self.ledger.append(CONTROL, [governance_entry(event)], conn=conn)

        audit.on_record = entered

        def told(actor: str, action: str, subject: str, details: dict[str, str]) -> None:
            """Governance changes on gsp.audit; the change stands if the broker does not take the entry (logged)."""
            try:
                audit.record(actor=actor, action=action, subject=subject, details=details)
            except Exception:
                log.exception("audit entry not published", extra={"action": action, "subject": subject})

        self.control.identities.audit = self.control.subscriptions.audit = told
        settings.home.mkdir(parents=True, exist_ok=True)
        # Made (None: already there) before anything answers, so the first request can use it.
        self.admin_token_file = ensure_admin(self.control.identities, settings.home)
        # The workers read the control plane's own registry with a credential of their own.
        self.worker_token = None if settings.schema_registry_url else worker_token(self.control.identities,
                                                                                settings.home)
        self.desk = QuarantineDesk(engine, producer=self._producer, codec=self.codec, schema_id_of=self.control.schema_id,
                                   audit=audit)
        self.review = ReviewDesk(engine, producer=self._producer, codec=self.codec, schema_id_of=self.control.schema_id,
                                 audit=audit, registry=RegistryLookup(bootstrap, self.codec,
                                                                      consumer_config=kafka_consumer_config(settings, bootstrap)))
        metrics.register(OverdueRequests(self.control.subscriptions))
        metrics.register(SubscriptionRequests(self.control.subscriptions))
        metrics.register(OpenItems(quarantine=self.desk.counts, review=self.review.counts))
        self.consents = Consents(engine, self.control.subscriptions, self.ledger, producer=self._producer,
                                 codec=self.codec, register=self.control.register)
        self.backfill = Backfill(bootstrap, self.codec, self._producer, declared(), ledger=self.ledger,
                                 terms=self.control.subscriptions.terms, consents=self.consents.given_for)
        self.control.subscriptions.on_activate = self.backfill.submit
        self.lineage = Lineage(self.ledger, read_header=header_reader(bootstrap, self.codec))
        # Verification batches go to the workers over Kafka; their replies come back to this process's dispatcher.
        self.verification = VerificationGateway(bootstrap, self._producer, self.codec, schema_id_of=self.control.schema_id)
        # The connector cluster's configs and statuses, for Kafka Connect's REST API; started before the API serves.
        producer_config = kafka_producer_config(settings, bootstrap)
        self.connector_records = ConnectorRecords(engine)  # what a new embedded broker gets back
        self.connect = ConnectCluster(
            ClusterStore(bootstrap, producer_config=producer_config,
                         consumer_config=kafka_consumer_config(settings, bootstrap)),
            ConnectOffsets(bootstrap, producer_config=producer_config), self.connector_records)
        self.api = ApiServer(build_app(self.control, metrics, desk=self.desk, review=self.review, lineage=self.lineage,
                                       verification=self.verification, consents=self.consents,
                                       checks={"kafka": self._kafka_health, "ledger_writer": self._ledger_health,
                                               "background": self._supervisor.health,
                                               "connect_cluster": self.connect.store.health},
                                       public_metrics=settings.public_metrics,
                                       feed=Feed(bootstrap, self.codec, key=ledger_key(settings.home, settings.ledger_key),
                                                 metrics=metrics, consumer_config=kafka_consumer_config(settings, bootstrap)),
                                       connect=self.connect),
                             host=host, port=port, ssl_context=ssl_context)
        self.recorder: QualityRecorder | None = None

    def _witness(self, heads: list[dict[str, Any]]) -> None:
        """The heads a checkpoint stored, on gsp.ledger.heads too: deleting one from the database then shows."""
        try:
            for head in heads:
                self._witness_producer.send(topics.LEDGER_HEADS, key=head["chain"].encode(),
                                    value=json.dumps(head).encode()).get(timeout=30)
        except KafkaError as exc:  # the heads are stored; the witness misses these until the next checkpoint
            log.error("ledger heads not witnessed", extra={"error": str(exc)[:300]})

    def _ledger_health(self) -> dict[str, Any]:
        """The writer's own view (its last pass); whether its thread runs is in ``background``."""
        writer = getattr(self, "ledger_writer", None)
        return {"up": None, "state": "not started"} if writer is None else writer.health()

    def _kafka_health(self) -> dict[str, Any]:
        state = self.kafka.as_dict()
        return {"up": state["up"], "restarts": state["restarts"], "error": None if state["up"] else state["last_error"],
                "since": state["since"]}

    def broker_lost(self, reason: str) -> None:
        """The broker stopped answering: /health says so (with the reason) until :meth:`broker_back`."""
        if self.kafka.up:
            self.kafka.mark(up=False, error=ConnectionError(reason))
        self.connect.store.suspend()  # read again on a broker with the topics made right, in rebuild or broker_back

    def broker_back(self, *, restarted: bool) -> None:
        """The broker answers again (``restarted``: a new embedded one, after :meth:`rebuild`): /health ok."""
        if restarted:
            self.kafka.restarts += 1
        else:  # the same broker, topics and all: read them again where rebuild did not
            self.connect.store.reload()
        self.kafka.mark(up=True)

    def rebuild(self) -> None:
        """Make the topics and publish again everything the data plane reads from the control plane: subscriptions
        (with their pseudonym keys), consents, review decisions and the connectors' configs and target states;
        the ledger writer forgets the old offsets of ``gsp.ledger``. The schemas live in the database. A broker
        failure here raises: the caller retries."""
        self.ledger_writer.forget_offsets()
        subscriptions = self.control.republish()
        consents = self.consents.republish()
        decisions = self.review.republish()
        try:
            self.connect.store.reload()  # the old broker's positions are past the new topics' ends
            connectors = self.connector_records.republish(self.connect.store)
        except BaseException:
            self.connect.store.suspend()  # not reading while the caller replaces the broker again
            raise
        log.warning("control-plane state published again on the new broker",
                    extra={"subscriptions": subscriptions, "consents": consents, "review_decisions": decisions,
                           "connectors": connectors})

    @property
    def registry_url(self) -> str:
        """The registry workers use: the configured one, or the control plane's own."""
        return self._settings.schema_registry_url or self.api.url

    def start(self) -> None:
        self.verification.start()
        self.connect.store.start()
        # A broker that lost gsp.connect.configs (the embedded one, after this process died) gets them back.
        reconciled = self.connector_records.reconcile(self.connect.store)
        if any(reconciled.values()):
            log.warning("connector cluster brought level with the database", extra=reconciled)
        try:
            self.api.start()
        except BaseException:  # the port is taken, say: nothing started here may outlive the error
            self.connect.store.close()
            self.verification.close()
            raise
        consumer_config = kafka_consumer_config(self._settings, self._bootstrap)
        indexer = QuarantineIndexer(self._bootstrap, self._engine, self.codec, consumer_config=consumer_config)
        reviews = ReviewIndexer(self._bootstrap, self._engine, self.codec, consumer_config=consumer_config)
        self.recorder = QualityRecorder(self._bootstrap, self._engine, self.codec, consumer_config=consumer_config)
        self.ledger_writer = LedgerWriter(self._bootstrap, self.ledger, self.codec, self.control.subscriptions.terms,
                                          registry=self._metrics, consumer_config=consumer_config,
                                          head_interval_s=self._settings.ledger_head_interval_s,
                                          retention_days=self._settings.audit_retention_days)
        self._closers = [indexer.close, reviews.close, self.recorder.close, self.ledger_writer.close]
        if self._settings.embedded:  # a new embedded broker is empty: the tips' offsets are of the last one
            self.ledger_writer.forget_offsets()
        for name, loop in (("subscription-periods", self._tick), ("backfill", self.backfill.run),
                           ("quarantine-indexer", indexer.run), ("review-indexer", reviews.run),
                           ("quality-recorder", self.recorder.run), ("ledger-writer", self.ledger_writer.run)):
            self._supervisor.start(name, loop)

    def _tick(self, stop: threading.Event) -> None:
        """Start and end subscriptions as their approved periods say, every second, until stopped; a database
        or broker failure raises, for the supervisor to retry with back-off."""
        while not stop.wait(1.0):
            self.control.subscriptions.tick()

    def stop(self) -> None:
        self._supervisor.stop()
        for close in getattr(self, "_closers", []):
            close()
        self.api.stop()
        self.connect.store.close()
        self.verification.close()
        self._producer.close()
        self._witness_producer.close()
        self.control.close()
