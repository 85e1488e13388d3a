import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gsp.governance.control import ControlPlane
from gsp.errors import UserError
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
    with pytest.raises(UserError, match="unknown field 'cccd' for dataset telecom.subscriber; shareable fields: msisdn"):
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
