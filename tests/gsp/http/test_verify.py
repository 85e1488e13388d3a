"""POST /api/verifications on a real control plane (the session's broker, SQLite): who may ask, what is refused
(403, 413, 400, 422), the batch carried to the workers over Kafka in chunks and answered in order, and how a
missing worker (504) or a dead reply dispatcher (503, /health) shows. A responder on the broker answers as the
workers do (`streams.verifying.Verifications`); tests/gsp/runtime/test_verify_serve.py runs the real worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from gsp.governance.control import ControlPlane
from gsp.governance.identity import Role
from gsp.governance.verification import VerificationGateway
from gsp.http.app import ApiServer, build_app
from gsp.runtime.embedded import free_port
from schemas import topics
from schemas.codec import Codec
from schemas.datasets import dataset
from streams.clean import name_key
from streams.share import Subscription
from streams.verify import MAX_BATCH, Verifier
from streams.verifying import Verifications
from tests.credentials import Cast, approved
from tests.gsp.http.test_access import bearer, send

CITIZEN, SUBSCRIBER = dataset("population.citizen"), dataset("telecom.subscriber")
FIELDS = ["personal_id", "full_name", "birth_date", "phone"]
REGISTRY = {f"0010990001{i:02d}": {"full_name": name, "birth_date": f"199{i}-0{i + 1}-1{i}", "phone": f"09123456{i:02d}",
                                   "province_code": "01", "name_key": name_key(name), "status": "ALIVE"}
            for i, name in enumerate(["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung"])}


def codec_of(control: ControlPlane) -> Codec:
    return Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)


class Responder:
    """Answers gsp.verify.requests as a worker does, until stopped; what it read is kept."""

    def __init__(self, control: ControlPlane, bootstrap: str) -> None:
        codec = codec_of(control)

        def verifying(slug: str) -> list[Subscription]:
            return [Subscription.from_event(e) for e in control.published_subscriptions()
                    if e["agency"] == slug and e.get("mode") == "verify"]

        self.verifications = Verifications(Verifier(CITIZEN, [SUBSCRIBER]), codec, subscriptions=verifying,
                                           lookup=REGISTRY.get,
                                           reply_schema_id=control.schema_id(topics.subject(topics.VERIFY_REPLIES)))
        self.codec = codec
        self.read: list[dict[str, Any]] = []
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(topics.VERIFY_REQUESTS, p)
               for p in sorted(self._consumer.partitions_for_topic(topics.VERIFY_REQUESTS) or [])]
        self._consumer.assign(tps)
        self._consumer.seek_to_end(*tps)
        for tp in tps:
            self._consumer.position(tp)
        self._producer = KafkaProducer(bootstrap_servers=bootstrap)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for messages in self._consumer.poll(timeout_ms=100).values():
                for m in messages:
                    self.read.append(self.codec.decode(m.value)[1])
                    reply = self.verifications.handle(m.topic, m.key, m.value)
                    if reply is not None:
                        self._producer.send(reply.topic, key=reply.key, value=self.verifications.encode(reply))
            self._producer.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()
        self._producer.close()


@pytest.fixture
def gateway(control: ControlPlane, bootstrap: str) -> Iterator[VerificationGateway]:
    """Batches in chunks of 3, and a short wait, so chunking and a missing worker show quickly."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    found = VerificationGateway(bootstrap, producer, codec_of(control), schema_id_of=control.schema_id, timeout_s=3.0,
                                chunk=3)
    found.start()
    assert found.wait_running(30)
    yield found
    found.close()
    producer.close()


@pytest.fixture
def served(control: ControlPlane, gateway: VerificationGateway) -> Iterator[str]:
    server = ApiServer(build_app(control, CollectorRegistry(), verification=gateway))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def cast(control: ControlPlane) -> Cast:
    """The consumer agency, and the owner of the registry (C06)."""
    return Cast.register(control.identities, owned="population.citizen")


@pytest.fixture
def responder(control: ControlPlane, bootstrap: str) -> Iterator[Responder]:
    found = Responder(control, bootstrap)
    yield found
    found.close()


def verify_approved(control: ControlPlane, cast: Cast, **request: Any) -> dict[str, Any]:
    return approved(control, cast, fields=FIELDS, dataset="population.citizen", mode="verify", **request)


def people(*values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, (personal_id, entry) in enumerate(REGISTRY.items()):
        out.append({"request_id": f"r{i}", "personal_id": personal_id, "full_name": entry["full_name"],
                    "birth_date": entry["birth_date"]})
    return [*out, *values]


def test_an_approved_agency_gets_a_verdict_and_a_mask_per_request_in_order(
        control: ControlPlane, cast: Cast, served: str, responder: Responder) -> None:
    event = verify_approved(control, cast)
    assert (event["mode"], event["topic"]) == ("verify", f"verify.{event['agency']}.replies.v1")
    requests = people({"request_id": "mismatch", "personal_id": "001099000100", "full_name": "Nguyễn Văn Ân",
                       "birth_date": "1990-01-10", "phone": "0912345600"},
                      {"request_id": "unknown", "personal_id": "001099000199", "full_name": "Ai Đó", "birth_date": "2000"},
                      {"request_id": "not-approved", "personal_id": "001099000100", "full_name": "A", "birth_date": "B",
                       "province_code": "01"},
                      "garbage",
                      {"request_id": "phone", "personal_id": "001099000101", "full_name": "Trần Thị Bình",
                       "birth_date": "1991-02-11", "phone": "+84 912 345 601"})
    answer = send(served, "POST", "/api/verifications", authorization=bearer(cast.token(Role.CONSUMER)),
                  body={"requests": requests})

    assert answer.status == 200, str(answer)
    expected = Verifier(CITIZEN, [SUBSCRIBER]).verify(requests, FIELDS, REGISTRY.get)
    assert answer.json() == {"subscription": event["subscription_id"], "answers": expected}
    assert [a.get("verdict") for a in expected] == ["MATCHED"] * 4 + ["MISMATCH", "NOT_FOUND", None, None, "MATCHED"]
    assert expected[4]["mask"] == {"personal_id": True, "full_name": False, "birth_date": True, "phone": True}
    # The 7 valid requests went to the workers in chunks of 3, naming the caller's agency; the invalid ones did not.
    assert sorted(len(m["requests"]) for m in responder.read) == [1, 3, 3]  # spread over partitions
    assert {(m["agency"], m["subscription_id"]) for m in responder.read} == {(event["agency"], event["subscription_id"])}


def test_the_body_cannot_name_the_agency_and_the_batch_is_bounded(control: ControlPlane, cast: Cast,
                                                                  served: str) -> None:
    verify_approved(control, cast)
    consumer = bearer(cast.token(Role.CONSUMER))
    posing = send(served, "POST", "/api/verifications", authorization=consumer,
                  body={"agency": "bo-tai-chinh-thue", "requests": people()})
    assert posing.status == 400 and posing.message.startswith("agency: Extra inputs are not permitted"), str(posing)
    assert send(served, "POST", "/api/verifications", authorization=consumer, body={}).status == 400
    too_many = send(served, "POST", "/api/verifications", authorization=consumer,
                    body={"requests": [{"request_id": "x"}] * (MAX_BATCH + 1)})
    assert too_many.status == 413 and too_many.message == "10,001 requests; at most 10,000 per call", str(too_many)
    too_big = send(served, "POST", "/api/verifications", authorization=consumer,  # over the API's 4 MiB a body
                   body={"requests": [{"request_id": "x" * 1000}] * 5000})
    assert too_big.status == 413, str(too_big)
    # Only invalid requests: answered at once, the workers are not asked (none runs here).
    invalid = send(served, "POST", "/api/verifications", authorization=consumer,
                   body={"requests": [{"request_id": "x"}, {"personal_id": "001099000100"}]})
    assert invalid.status == 200 and [a["error"] for a in invalid.json()["answers"]] == [
        "personal_id, full_name, birth_date: required", "request_id: a non-empty string is required"], str(invalid)


def test_an_agency_without_an_active_verify_subscription_is_refused(control: ControlPlane, cast: Cast,
                                                                     served: str) -> None:
    consumer = bearer(cast.token(Role.CONSUMER))
    nothing = send(served, "POST", "/api/verifications", authorization=consumer, body={"requests": people()})
    assert nothing.status == 403 and "holds no active verify subscription" in nothing.message, str(nothing)
    assert "needs the role" not in nothing.message  # the role is right; the approval is missing
    # A stream subscription is no approval to verify; another agency's verify subscription neither.
    stream = Cast.register(control.identities)
    approved(control, stream, fields=["msisdn"])
    refused = send(served, "POST", "/api/verifications", authorization=bearer(stream.token(Role.CONSUMER)),
                   body={"requests": people()})
    assert refused.status == 403, str(refused)
    event = verify_approved(control, cast)
    other = send(served, "POST", "/api/verifications", authorization=bearer(stream.token(Role.CONSUMER)),
                 body={"subscription": event["subscription_id"], "requests": people()})
    assert other.status == 403 and event["subscription_id"] in other.message, str(other)
    # Suspended by the owner: refused at once.
    owner = control.identities.authenticate(cast.token(Role.OWNER))
    control.subscriptions.suspend(owner, event["subscription_id"], reason="kiểm tra")
    suspended = send(served, "POST", "/api/verifications", authorization=consumer, body={"requests": people()})
    assert suspended.status == 403, str(suspended)
    for role in (Role.OWNER, Role.ADMIN, Role.STEWARD):
        answer = send(served, "POST", "/api/verifications", authorization=bearer(cast.token(role)),
                      body={"requests": people()})
        assert answer.status == 403 and "needs the role consumer" in answer.message, (role, str(answer))


def test_two_verify_subscriptions_must_be_named(control: ControlPlane, cast: Cast, served: str,
                                                responder: Responder) -> None:
    first = verify_approved(control, cast)
    second = verify_approved(control, cast, name="audit")
    consumer = bearer(cast.token(Role.CONSUMER))
    unnamed = send(served, "POST", "/api/verifications", authorization=consumer, body={"requests": people()})
    assert unnamed.status == 422 and first["subscription_id"] in unnamed.message, str(unnamed)
    named = send(served, "POST", "/api/verifications", authorization=consumer,
                 body={"subscription": second["subscription_id"], "requests": people()})
    assert named.status == 200 and named.json()["subscription"] == second["subscription_id"], str(named)
    assert responder.read[-1]["subscription_id"] == second["subscription_id"]


def test_no_worker_is_a_504_within_the_timeout(control: ControlPlane, cast: Cast, served: str) -> None:
    verify_approved(control, cast)
    started = time.monotonic()
    answer = send(served, "POST", "/api/verifications", authorization=bearer(cast.token(Role.CONSUMER)),
                  body={"requests": people()})
    assert answer.status == 504 and answer.message.startswith("no stream worker answered within 3 s"), str(answer)
    assert time.monotonic() - started < 10


def test_a_dispatcher_that_cannot_read_replies_is_a_503_and_health_says_so(control: ControlPlane, cast: Cast,
                                                                           bootstrap: str) -> None:
    verify_approved(control, cast)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    dead = VerificationGateway(f"127.0.0.1:{free_port()}", producer, codec_of(control), schema_id_of=control.schema_id)
    dead.start()
    server = ApiServer(build_app(control, CollectorRegistry(), verification=dead))
    server.start()
    try:
        health: dict[str, Any] = {}
        for _ in range(100):  # the dispatcher gives up on a broker that is not there, and is started again
            health = send(server.url, "GET", "/health").json()
            if health["verification"]["replies"] == "down":
                break
            time.sleep(0.2)
        assert health["status"] == "degraded" and health["verification"]["replies"] == "down", health
        assert health["verification"]["error"]
        answer = send(server.url, "POST", "/api/verifications", authorization=bearer(cast.token(Role.CONSUMER)),
                      body={"requests": people()})
        assert answer.status == 503 and "/health" in answer.message, str(answer)
    finally:
        server.stop()
        dead.close()
        producer.close()


def test_a_reading_dispatcher_is_healthy(control: ControlPlane, served: str) -> None:
    health = send(served, "GET", "/health").json()
    assert health["status"] == "ok" and health["verification"]["replies"] == "reading", health
