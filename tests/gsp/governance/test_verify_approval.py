"""A verification approval is an ordinary subscription in mode verify: requested by a consumer, decided by the
registry's owner, published to the workers, but never shared as records; what may be verified is checked when it
is requested. On a real control plane (the session's broker, SQLite)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka import KafkaConsumer

from gsp.errors import UserError
from gsp.governance.acl import Operation, acl_bindings
from gsp.governance.control import ControlPlane
from gsp.governance.identity import Role
from schemas import topics
from schemas.codec import Codec, contract
from schemas.envelope import Verdict
from streams.book import SubscriptionBook
from streams.share import Subscription
from tests.credentials import Cast, approved

REGISTRY = "population.citizen"
ASK = {"purpose": "Xác thực người tham gia bảo hiểm", "legal_basis": "Nghị định 13/2023/NĐ-CP"}
THREE = ["personal_id", "full_name", "birth_date"]


@pytest.fixture
def cast(control: ControlPlane) -> Cast:
    return Cast.register(control.identities, owned=REGISTRY)


def ask(control: ControlPlane, cast: Cast, **request: Any) -> dict[str, Any]:
    consumer = control.identities.authenticate(cast.token(Role.CONSUMER))
    values = {"dataset": REGISTRY, "fields": [*THREE, "phone"], "mode": "verify", **ASK, **request}
    return control.subscriptions.request(consumer, **values)


def test_an_approved_verify_subscription_reaches_the_workers_with_its_own_topics_and_contracts(
        control: ControlPlane, cast: Cast, bootstrap: str) -> None:
    event = approved(control, cast, fields=[*THREE, "phone", "province_code"], dataset=REGISTRY, mode="verify")
    slug = event["agency"]
    requests_topic, replies_topic = topics.verify_requests(slug), topics.verify_replies(slug)
    assert (event["mode"], event["topic"], event["row_filter"], event["verdicts"]) == ("verify", replies_topic, {}, [])
    assert event["fields"] == [*THREE, "phone", "province_code"]
    # Both contracts are registered under the agency's topics, the reply's id is the event's.
    assert control.schema_id(topics.subject(replies_topic)) == event["schema_id"]
    assert json.loads(event["schema"]) == contract("vn.gsp.verify.VerificationReply")
    assert json.loads(control.registry.get_version(topics.subject(requests_topic), "latest").schema) == \
        contract("vn.gsp.verify.VerificationRequest")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        described = {t: len(consumer.partitions_for_topic(t) or ()) for t in (requests_topic, replies_topic)}
    finally:
        consumer.close()
    assert described == {requests_topic: 4, replies_topic: 4}  # as a share topic: GSP_PARTITIONS
    shown = control.subscriptions.show(control.identities.authenticate(cast.token(Role.CONSUMER)),
                                       event["subscription_id"])
    assert (shown["mode"], shown["topic"], shown["requests_topic"], shown["state"]) == (
        "verify", replies_topic, requests_topic, "active")


def test_a_verify_subscription_is_never_shared_as_records(control: ControlPlane, cast: Cast) -> None:
    verifying = approved(control, cast, fields=THREE, dataset=REGISTRY, mode="verify")
    streaming = approved(control, Cast.register(control.identities), fields=["msisdn"])
    codec = Codec()
    schema_id = control.schema_id(topics.subject(topics.SUBSCRIPTIONS))
    codec.add(schema_id, contract("vn.gsp.control.Subscription"))
    book = SubscriptionBook(codec)
    for event in (verifying, streaming):
        book.apply(event["subscription_id"].encode(), codec.encode(schema_id, event))

    assert [s.subscription_id for s in book.for_dataset(REGISTRY)] == []
    assert [s.subscription_id for s in book.for_dataset("telecom.subscriber")] == [streaming["subscription_id"]]
    assert [s.subscription_id for s in book.verifying(verifying["agency"])] == [verifying["subscription_id"]]
    assert book.verifying(streaming["agency"]) == []
    assert Subscription.from_event({k: v for k, v in streaming.items() if k != "mode"}).mode == "stream"


@pytest.mark.parametrize(("request_", "refusal"), [
    ({"dataset": "telecom.subscriber"}, "mode verify checks identity details against the registry (population.citizen), "
                                        "not telecom.subscriber"),
    ({"fields": ["personal_id", "full_name"]}, "a verify subscription always lists personal_id, full_name, birth_date; "
                                               "add birth_date"),
    ({"fields": [*THREE, "sex"]}, "field 'sex' cannot be verified against population.citizen; verifiable: personal_id, "
                                  "full_name, birth_date, phone, province_code"),
    ({"fields": [*THREE, "msisdn"]}, "field 'msisdn' cannot be verified"),
    ({"row_filter": {"phone": ["0912345678"]}}, "a verify subscription takes no row filter"),
    ({"verdicts": [Verdict.MISMATCH]}, "a verify subscription takes no verdicts"),
    ({"backfill": True}, "a verify subscription takes no backfill"),
    ({"mode": "search"}, "unknown mode 'search'; stream (records delivered) or verify (identity details checked)"),
])
def test_what_may_be_verified_is_checked_when_it_is_requested(control: ControlPlane, cast: Cast,
                                                               request_: dict[str, Any], refusal: str) -> None:
    with pytest.raises(UserError) as refused:
        ask(control, cast, **request_)
    assert str(refused.value).startswith(refusal)


def test_the_registry_cannot_be_streamed_and_the_default_verdict_is_no_verdict(control: ControlPlane, cast: Cast) -> None:
    with pytest.raises(UserError, match="cannot be shared"):
        ask(control, cast, mode="stream")
    asked = ask(control, cast, verdicts=[Verdict.MATCHED], fields=[*THREE, "phone", "phone"])  # the CLI's default
    assert asked["versions"][-1]["verdicts"] == [] and asked["versions"][-1]["fields"] == [*THREE, "phone"]
    assert asked["versions"][-1]["mode"] == "verify"


def test_an_agency_may_write_its_request_topic_and_read_its_replies_topic_only(control: ControlPlane, cast: Cast) -> None:
    event = approved(control, cast, fields=THREE, dataset=REGISTRY, mode="verify")
    slug = event["agency"]
    bindings = acl_bindings(control.subscriptions.visible(control.identities.authenticate(cast.token(Role.ADMIN))))
    mine = {(b.resource_name, b.operation) for b in bindings if b.principal == f"User:{slug}"}
    assert mine == {(topics.verify_replies(slug), Operation.READ), (topics.verify_replies(slug), Operation.DESCRIBE),
                    (topics.verify_requests(slug), Operation.WRITE), (topics.verify_requests(slug), Operation.DESCRIBE),
                    (f"{slug}.", Operation.READ)}


def test_a_change_keeps_its_mode_and_a_new_subscription_streams(control: ControlPlane, cast: Cast) -> None:
    event = approved(control, cast, fields=THREE, dataset=REGISTRY, mode="verify")
    consumer = control.identities.authenticate(cast.token(Role.CONSUMER))
    changed = control.subscriptions.request(consumer, dataset=REGISTRY, fields=[*THREE, "province_code"], **ASK)
    assert changed["subscription_id"] == event["subscription_id"]
    assert [(v["version"], v["mode"], v["state"]) for v in changed["versions"]] == [
        (1, "verify", "active"), (2, "verify", "requested")]
    streaming = control.subscriptions.request(consumer, dataset="telecom.subscriber", fields=["msisdn"], **ASK)
    assert streaming["mode"] == "stream" and streaming["topic"].startswith("share.")
