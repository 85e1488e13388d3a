import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka.errors import KafkaTimeoutError

from gsp.errors import UserError
from gsp.governance.control import ControlPlane, PublishFailed
from gsp.governance.identity import Role, agency_slug
from schemas.codec import Codec
from schemas.registry import RegistryClient
from streams.book import SubscriptionBook
from tests.credentials import Cast, approved
from tests.topics import read_topic


@pytest.fixture
def control(bootstrap: str, tmp_path: Path) -> ControlPlane:
    plane = ControlPlane(sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}"), bootstrap=bootstrap, partitions=4)
    plane.start()
    yield plane
    plane.close()


def test_unknown_subscription_field_is_refused_with_the_known_fields(control: ControlPlane) -> None:
    cast = Cast.register(control.identities)
    consumer = control.identities.authenticate(cast.token(Role.CONSUMER))
    ask = {"purpose": "kiểm thử", "legal_basis": "Luật Căn cước 2023"}
    with pytest.raises(UserError, match=r"unknown field 'cccd' for dataset telecom\.subscriber; shareable fields: msisdn"):
        control.subscriptions.request(consumer, dataset="telecom.subscriber", fields=["msisdn", "cccd"], **ask)
    with pytest.raises(UserError, match="unknown dataset"):
        control.subscriptions.request(consumer, dataset="telecom.nope", fields=["msisdn"], **ask)
    with pytest.raises(UserError, match="slug"):
        control.subscriptions.request(consumer, dataset="telecom.subscriber", fields=["msisdn"], name="Thuế", **ask)


def test_subscription_reaches_the_data_plane_as_an_event_and_a_revocation_as_a_tombstone(
        control: ControlPlane, bootstrap: str) -> None:
    cast = Cast.register(control.identities)
    event = approved(control, cast, fields=["msisdn", "personal_id"], row_filter={"carrier": ["Viettel"]})
    slug = agency_slug(cast.consumer_agency)
    assert event["topic"] == f"share.{slug}.subscriber.v1" and event["agency_id"] == cast.consumer_agency
    owner = control.identities.authenticate(cast.token(Role.OWNER))
    control.subscriptions.revoke(owner, event["subscription_id"], reason="hết thời hạn thỏa thuận")

    book = SubscriptionBook(Codec(resolve=lambda i: control.registry.schema_by_id(i).schema))
    states = []
    for message in read_topic(bootstrap, "gsp.subscriptions"):
        book.apply(message.key, message.value)
        states.append([s.fields for s in book.for_dataset("telecom.subscriber") if s.agency == slug])
    assert [("msisdn", "personal_id")] in states and states[-1] == []
    assert control.published_subscriptions() == []


def test_with_an_external_registry_contracts_and_subscriptions_are_registered_there(
        bootstrap: str, tmp_path: Path, serve_registry: Any) -> None:
    external_engine = sa.create_engine(f"sqlite:///{tmp_path / 'external.db'}")
    with serve_registry(external_engine) as url:
        external = RegistryClient(url)
        # The external registry already holds other schemas, so its ids differ from the control plane's own.
        external.register("unrelated-value", {"type": "record", "name": "U", "fields": []})
        plane = ControlPlane(sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}"), bootstrap=bootstrap,
                             partitions=4, external_registry=external)
        plane.start()
        try:
            assert plane.schema_id("raw.telecom.subscriber.v1-value") == external.latest("raw.telecom.subscriber.v1-value")[0]
            assert plane.schema_id("raw.telecom.subscriber.v1-value") != plane.registry.get_version("raw.telecom.subscriber.v1-value", "latest").id
            event = approved(plane, Cast.register(plane.identities), fields=["msisdn"])
            assert event["schema_id"] == external.latest(event["topic"] + "-value")[0]
        finally:
            plane.close()


class RefusingProducer:
    """A producer whose broker never acknowledges: every send fails as a timed-out one does."""

    def send(self, topic: str, *, key: bytes, value: bytes | None) -> Any:
        raise KafkaTimeoutError(f"no acknowledgement for {topic}")

    def close(self) -> None:
        pass


def published(bootstrap: str, subscription_id: str) -> list[bytes | None]:
    return [m.value for m in read_topic(bootstrap, "gsp.subscriptions") if m.key == subscription_id.encode()]


def test_a_subscription_is_stored_before_it_is_published_and_published_on_the_next_start(
        bootstrap: str, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    refused = ControlPlane(engine, bootstrap=bootstrap, partitions=4, producer=RefusingProducer())  # type: ignore[arg-type]
    refused.start()
    cast = Cast.register(refused.identities)
    sid = f"{agency_slug(cast.consumer_agency)}:telecom.subscriber"
    with pytest.raises(PublishFailed, match=f"subscription {sid} .* is stored"):
        approved(refused, cast, fields=["msisdn"])
    assert [s["subscription_id"] for s in refused.published_subscriptions()] == [sid]
    assert published(bootstrap, sid) == []

    restarted = ControlPlane(engine, bootstrap=bootstrap, partitions=4)
    restarted.start()
    try:
        [value] = published(bootstrap, sid)
        book = SubscriptionBook(Codec(resolve=lambda i: restarted.registry.schema_by_id(i).schema))
        book.apply(sid.encode(), value)
        assert [s.fields for s in book.for_dataset("telecom.subscriber")] == [("msisdn",)]
        assert restarted.publish_pending() == 0
    finally:
        restarted.close()


def test_a_revocation_the_broker_did_not_acknowledge_stays_listed_until_its_tombstone_is_published(
        control: ControlPlane, bootstrap: str, tmp_path: Path) -> None:
    cast = Cast.register(control.identities)
    event = approved(control, cast, fields=["msisdn"])
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    refused = ControlPlane(engine, bootstrap=bootstrap, partitions=4, producer=RefusingProducer())  # type: ignore[arg-type]
    refused.start()
    owner = refused.identities.authenticate(cast.token(Role.OWNER))
    with pytest.raises(PublishFailed, match="deletion"):
        refused.subscriptions.revoke(owner, event["subscription_id"], reason="vi phạm mục đích sử dụng")
    assert [s["subscription_id"] for s in refused.published_subscriptions()] == [event["subscription_id"]]
    assert published(bootstrap, event["subscription_id"])[-1] is not None

    restarted = ControlPlane(engine, bootstrap=bootstrap, partitions=4)
    restarted.start()
    try:
        assert published(bootstrap, event["subscription_id"])[-1] is None
        assert restarted.published_subscriptions() == []
        assert restarted.subscriptions.show(owner, event["subscription_id"])["state"] == "revoked"
    finally:
        restarted.close()


def test_a_database_made_before_the_outbox_gains_its_published_column_as_published(
        bootstrap: str, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE subscriptions (subscription_id VARCHAR(200) PRIMARY KEY, agency VARCHAR(64) "
                             "NOT NULL, dataset VARCHAR(128) NOT NULL, event TEXT NOT NULL, version INTEGER NOT NULL, "
                             "deleted BOOLEAN NOT NULL)")
        conn.exec_driver_sql("INSERT INTO subscriptions VALUES ('old:telecom.subscriber', 'old', 'telecom.subscriber', "
                             "'{\"subscription_id\": \"old:telecom.subscriber\"}', 1, 0)")
    plane = ControlPlane(engine, bootstrap=bootstrap, partitions=4, producer=RefusingProducer())  # type: ignore[arg-type]
    plane.start()  # nothing pending, so the refusing producer is never asked
    assert plane.published_subscriptions() == [{"subscription_id": "old:telecom.subscriber"}]
    plane.close()


def test_a_subscription_granted_before_owners_decided_is_withdrawn_on_start(bootstrap: str, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    sid = f"old-{uuid.uuid4().hex[:6]}:telecom.subscriber"
    plane = ControlPlane(engine, bootstrap=bootstrap, partitions=4)
    with engine.begin() as conn:  # as an older release stored and published it
        conn.exec_driver_sql("INSERT INTO subscriptions VALUES (?, 'old', 'telecom.subscriber', ?, 1, 0, 1)",
                             (sid, json.dumps({"subscription_id": sid, "agency": "old", "dataset": "telecom.subscriber"})))
    plane.start()
    try:
        assert plane.published_subscriptions() == []
        assert published(bootstrap, sid) == [None]
    finally:
        plane.close()


def test_a_worker_ignores_garbage_on_the_subscriptions_topic_and_applies_what_follows(
        control: ControlPlane, bootstrap: str) -> None:
    cast = Cast.register(control.identities)
    event = approved(control, cast, fields=["msisdn"])
    sid = event["subscription_id"]
    [value] = published(bootstrap, sid)
    codec = Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)
    schema_id = control.schema_id("gsp.subscriptions-value")
    other = control.schema_id("gsp.audit-value")
    book = SubscriptionBook(codec)
    bad_key = codec.encode(schema_id, {**event, "pseudonym_key": "not hex"})
    foreign = codec.encode(other, {"event_id": "x", "at": 1, "actor": "a", "action": "b", "subject": "c", "details": {}})
    for garbage in (b"", b"\x00\x00\x00\x00\x07junk", foreign, bad_key):
        book.apply(sid.encode(), value)
        book.apply(sid.encode(), garbage)   # fail closed: nothing is shared under an unreadable event
        assert book.for_dataset("telecom.subscriber") == []
    book.apply(sid.encode(), value)
    assert [s.subscription_id for s in book.for_dataset("telecom.subscriber")] == [sid]
