"""Consent: a person gives or withdraws consent to one subscription whose legal basis is consent.

Recorded through the API (the citizen portal, role portal) or fed to ``gsp.consent`` by a source
connector; either way the compacted topic is what workers read (`streams.consent`). Through the
API a change is stored, entered in the audit ledger and published in one transaction that commits
only after the broker acknowledged it: "acknowledged" means the withdrawal is on the topic, and the
workers' barrier (`streams.consent.ConsentBook.barrier`) holds every later record of that person
back from the subscription. Back-fill reads the consents on record here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer

from gsp.desks.base import deliver, upsert
from gsp.errors import UserError
from gsp.governance.identity import Identity
from gsp.governance.ledger import CONTROL, Entry, Ledger
from gsp.governance.subscriptions import Subscriptions
from schemas import topics
from schemas.codec import Codec, contract

__all__ = ["Consents", "consent_key"]

_PERSONAL_ID = re.compile(r"^\d{12}$")
_metadata = sa.MetaData()
_consents = sa.Table(
    "consents", _metadata,
    sa.Column("subscription_id", sa.String(240), primary_key=True),
    sa.Column("personal_id", sa.String(12), primary_key=True),
    sa.Column("given", sa.Boolean, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("recorded_by", sa.String(240), nullable=False),
    sa.Column("reference", sa.String(200)),
)


def consent_key(subscription_id: str, personal_id: str) -> bytes:
    return f"{subscription_id}|{personal_id}".encode()


class Consents:
    def __init__(self, engine: sa.Engine, subscriptions: Subscriptions, ledger: Ledger, *, producer: KafkaProducer,
                 codec: Codec, register: Callable[[str, str], int], clock: Callable[[], float] = time.time) -> None:
        self._engine, self._subscriptions, self._ledger = engine, subscriptions, ledger
        self._producer, self._codec, self._register, self._clock = producer, codec, register, clock
        self._schema_id: int | None = None
        _metadata.create_all(engine)

    def _schema(self) -> int:
        if self._schema_id is None:
            schema = contract("vn.gsp.control.Consent")
            self._schema_id = self._register(topics.subject(topics.CONSENT), json.dumps(schema, ensure_ascii=False))
            self._codec.add(self._schema_id, schema)
        return self._schema_id

    def record(self, who: Identity, *, personal_id: str, subscription_id: str, given: bool,
               reference: str | None = None) -> dict[str, Any]:
        """Give or withdraw; returns the consent as recorded, once the broker acknowledged it."""
        if not _PERSONAL_ID.match(personal_id or ""):
            raise UserError("personal_id must be a 12-digit personal id")
        if not self._subscriptions.consent_based(subscription_id):
            raise UserError(f"subscription {subscription_id} does not rest on consent: nothing to give or withdraw")
        schema_id = self._schema()  # outside the transaction: on SQLite the registry may share the database
        event: dict[str, Any] = {"personal_id": personal_id, "subscription_id": subscription_id, "given": given,
                 "at": int(self._clock() * 1000), "recorded_by": who.who, "reference": (reference or "").strip() or None}
        with self._engine.begin() as conn:
            conn.execute(upsert(conn, _consents).values(**event).on_conflict_do_update(
                index_elements=["subscription_id", "personal_id"],
                set_={k: event[k] for k in ("given", "at", "recorded_by", "reference")}))
            self._ledger.append(CONTROL, [Entry(
                kind="consent.give" if given else "consent.withdraw", actor=who.who, at=event["at"],
                subscription_id=subscription_id,
                body={"subject": f"subscription/{subscription_id}", "reference": event["reference"],
                      "person_ref": self._ledger.person_ref(personal_id)})], conn=conn)
            deliver(self._producer, topics.CONSENT, consent_key(subscription_id, personal_id),
                    self._codec.encode(schema_id, event))
        return {k: v for k, v in event.items()}

    def republish(self) -> int:
        """Every consent on record, given or withdrawn, on ``gsp.consent`` again (the broker lost the topic);
        how many. Unavailable if the broker does not acknowledge one: the caller tries again later."""
        schema_id = self._schema()
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(_consents))]
        for event in rows:
            deliver(self._producer, topics.CONSENT, consent_key(event["subscription_id"], event["personal_id"]),
                    self._codec.encode(schema_id, event))
        return len(rows)

    def given_for(self, subscription_id: str) -> set[str]:
        """The people whose consent to ``subscription_id`` is on record (for back-fill)."""
        with self._engine.connect() as conn:
            return {r.personal_id for r in conn.execute(sa.select(_consents.c.personal_id).where(
                _consents.c.subscription_id == subscription_id, _consents.c.given.is_(True)))}

    def of(self, personal_id: str) -> list[dict[str, Any]]:
        """A person's consents, for the person (the portal)."""
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(_consents).where(
                _consents.c.personal_id == personal_id).order_by(_consents.c.subscription_id))]
