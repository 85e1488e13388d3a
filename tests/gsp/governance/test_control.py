import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka.errors import KafkaTimeoutError

from gsp.errors import UserError
from gsp.governance.control import ControlPlane, PublishFailed
from schemas.codec import Codec
from schemas.registry import RegistryClient
from streams.book import SubscriptionBook
from tests.topics import read_topic


@pytest.fixture
def control(bootstrap: str, tmp_path: Path) -> ControlPlane:
    plane = ControlPlane(sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}"), bootstrap=bootstrap, partitions=4)
    plane.start()
    yield plane
    plane.close()


def test_unknown_subscription_field_is_refused_with_the_known_fields(control: ControlPlane) -> None:
    with pytest.raises(UserError, match=r"unknown field 'cccd' for dataset telecom\.subscriber; shareable fields: msisdn"):
        control.create_subscription(agency="so-y-te", dataset="telecom.subscriber", fields=["msisdn", "cccd"])
    with pytest.raises(UserError, match="unknown dataset"):
        control.create_subscription(agency="so-y-te", dataset="telecom.nope", fields=["msisdn"])
    with pytest.raises(UserError, match="lower-case slug"):
        control.create_subscription(agency="Sở Y tế", dataset="telecom.subscriber", fields=["msisdn"])


def test_subscription_reaches_the_data_plane_as_an_event_and_a_deletion_as_a_tombstone(control: ControlPlane, bootstrap: str) -> None:
    agency = f"agency-{uuid.uuid4().hex[:6]}"
    event = control.create_subscription(agency=agency, dataset="telecom.subscriber", fields=["msisdn", "personal_id"],
                                        row_filter={"carrier": ["Viettel"]})
    assert event["topic"] == f"share.{agency}.subscriber.v1"
    control.delete_subscription(event["subscription_id"])

    book = SubscriptionBook(Codec(resolve=lambda i: control.registry.schema_by_id(i).schema))
    states = []
    for message in read_topic(bootstrap, "gsp.subscriptions"):
        book.apply(message.key, message.value)
        states.append([s.fields for s in book.for_dataset("telecom.subscriber") if s.agency == agency])
    assert [("msisdn", "personal_id")] in states and states[-1] == []
    assert control.list_subscriptions() == []


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
            event = plane.create_subscription(agency=f"ext-{uuid.uuid4().hex[:6]}", dataset="telecom.subscriber", fields=["msisdn"])
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
    agency = f"agency-{uuid.uuid4().hex[:6]}"
    with pytest.raises(PublishFailed, match=f"subscription {agency}:telecom.subscriber .* is stored"):
        refused.create_subscription(agency=agency, dataset="telecom.subscriber", fields=["msisdn"])
    assert [s["agency"] for s in refused.list_subscriptions()] == [agency]
    assert published(bootstrap, f"{agency}:telecom.subscriber") == []

    restarted = ControlPlane(engine, bootstrap=bootstrap, partitions=4)
    restarted.start()
    try:
        [value] = published(bootstrap, f"{agency}:telecom.subscriber")
        book = SubscriptionBook(Codec(resolve=lambda i: restarted.registry.schema_by_id(i).schema))
        book.apply(f"{agency}:telecom.subscriber".encode(), value)
        assert [s.fields for s in book.for_dataset("telecom.subscriber") if s.agency == agency] == [("msisdn",)]
        assert restarted.publish_pending() == 0
    finally:
        restarted.close()


def test_a_deletion_the_broker_did_not_acknowledge_stays_listed_until_its_tombstone_is_published(
        control: ControlPlane, bootstrap: str, tmp_path: Path) -> None:
    event = control.create_subscription(agency=f"agency-{uuid.uuid4().hex[:6]}", dataset="telecom.subscriber",
                                         fields=["msisdn"])
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    refused = ControlPlane(engine, bootstrap=bootstrap, partitions=4, producer=RefusingProducer())  # type: ignore[arg-type]
    refused.start()
    with pytest.raises(PublishFailed, match="deletion"):
        refused.delete_subscription(event["subscription_id"])
    assert [s["subscription_id"] for s in refused.list_subscriptions()] == [event["subscription_id"]]
    assert published(bootstrap, event["subscription_id"])[-1] is not None

    restarted = ControlPlane(engine, bootstrap=bootstrap, partitions=4)
    restarted.start()
    try:
        assert published(bootstrap, event["subscription_id"])[-1] is None
        assert restarted.list_subscriptions() == []
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
    assert plane.list_subscriptions() == [{"subscription_id": "old:telecom.subscriber"}]
    plane.close()
