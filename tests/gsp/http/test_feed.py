"""The pull feed over HTTP (gsp/http/feed.py): a real control plane on the session's broker, an approved subscription
whose share topic holds events written with the registry's schema, paged through with small limits; cursors that
were not issued for the subscription, another agency, no credential and a limit out of bounds are refused; the CLI
pulls the same records."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from gsp.cli import main
from gsp.governance.control import ControlPlane
from gsp.governance.identity import Role
from gsp.http.app import ApiServer, build_app
from gsp.http.client import ApiClient
from gsp.http.feed import Feed
from schemas.codec import Codec
from schemas.envelope import header
from tests.credentials import Cast, approved
from tests.gsp.http.test_access import Answer, bearer, send

PARTITIONS = 4  # the control fixture's


@dataclass(frozen=True)
class Plane:
    url: str
    metrics: CollectorRegistry
    feed: Feed


@pytest.fixture
def plane(control: ControlPlane, bootstrap: str) -> Iterator[Plane]:
    metrics = CollectorRegistry()
    feed = Feed(bootstrap, Codec(resolve=lambda i: control.registry.schema_by_id(i).schema), key=b"k" * 32,
                metrics=metrics)
    server = ApiServer(build_app(control, metrics, feed=feed))
    server.start()
    yield Plane(server.url, metrics, feed)
    server.stop()


@pytest.fixture
def people(control: ControlPlane) -> Cast:
    return Cast.register(control.identities)


def shared(control: ControlPlane, bootstrap: str, subscription: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` events on the subscription's share topic, spread over its partitions, written with its schema id."""
    codec = Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)
    events = [{"header": header("telecom.viettel", f"sub-{n}", "1", 1_767_225_600_000 + n),
               "msisdn": f"09{n:08d}", "carrier": "Viettel", "person_key": None} for n in range(count)]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for n, event in enumerate(events):
            producer.send(subscription["topic"], key=f"sub-{n}".encode(), partition=n % PARTITIONS,
                          value=codec.encode(subscription["schema_id"], event))
        producer.flush(timeout=30)
    finally:
        producer.close()
    return events


def records_path(sid: str, **params: Any) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"/api/subscriptions/{urllib.parse.quote(sid, safe='')}/records" + (f"?{query}" if query else "")


def page(plane: Plane, people: Cast, sid: str, **params: Any) -> dict[str, Any]:
    answer = send(plane.url, "GET", records_path(sid, **params), authorization=bearer(people.token(Role.CONSUMER)))
    assert answer.status == 200, str(answer)
    return answer.json()  # type: ignore[no-any-return]


def refused(answer: Answer, status: int) -> str:
    assert answer.status == status, str(answer)
    assert answer.message and "\n" not in answer.message and "Traceback" not in answer.text, str(answer)
    return answer.message


def sample(metrics: CollectorRegistry, name: str, agency: str) -> float:
    return metrics.get_sample_value(name, {"agency": agency}) or 0.0


def test_paging_serves_every_event_once_in_order_per_partition(control: ControlPlane, bootstrap: str, plane: Plane,
                                                                people: Cast) -> None:
    subscription = approved(control, people, fields=["msisdn", "carrier"])
    sid = subscription["subscription_id"]
    events = shared(control, bootstrap, subscription, 23)

    served: list[dict[str, Any]] = []
    cursor, pages, more = None, 0, True
    while more:
        pages += 1
        assert pages <= 20, "the feed never said it was done"
        started = time.monotonic()
        answer = page(plane, people, sid, cursor=cursor, limit=4)
        assert time.monotonic() - started < 1.0, "a page with its own consumer took a second"
        assert len(answer["records"]) <= 4
        served += answer["records"]
        cursor, more = answer["next_cursor"], answer["more"]

    assert sorted(r["event"]["header"]["event_id"] for r in served) == sorted(e["header"]["event_id"] for e in events)
    [fifth] = [r["event"] for r in served if r["event"]["header"]["source_key"] == "sub-5"]
    assert fifth["header"].items() >= events[5]["header"].items()  # and the header's defaults
    assert {k: v for k, v in fifth.items() if k != "header"} == {k: v for k, v in events[5].items() if k != "header"}
    for partition in range(PARTITIONS):
        offsets = [r["offset"] for r in served if r["partition"] == partition]
        assert offsets == sorted(offsets) == list(range(len(offsets))), partition
        keys = [r["event"]["header"]["source_key"] for r in served if r["partition"] == partition]
        assert keys == [f"sub-{n}" for n in range(partition, 23, PARTITIONS)]
    # Past the end: an empty page answers the same cursor, and says there is no more.
    again = page(plane, people, sid, cursor=cursor, limit=4)
    assert again == {"subscription_id": sid, "records": [], "next_cursor": cursor, "more": False}
    slug = subscription["agency"]
    assert sample(plane.metrics, "gsp_feed_records_total", slug) == 23
    assert sample(plane.metrics, "gsp_feed_pages_total", slug) == pages + 1


def test_a_saved_cursor_resumes_after_the_records_already_read(control: ControlPlane, bootstrap: str, plane: Plane,
                                                               people: Cast) -> None:
    subscription = approved(control, people, fields=["msisdn", "carrier"])
    sid = subscription["subscription_id"]
    first = shared(control, bootstrap, subscription, 6)
    whole = page(plane, people, sid, limit=1000)
    assert len(whole["records"]) == 6 and whole["more"] is False

    later = shared(control, bootstrap, subscription, 10)[6:]  # the same six again (a replay), then four new
    resumed = page(plane, people, sid, cursor=whole["next_cursor"], limit=1000)

    assert sorted(r["event"]["header"]["source_key"] for r in resumed["records"]) == \
        sorted([e["header"]["source_key"] for e in first] + [e["header"]["source_key"] for e in later])
    for partition in range(PARTITIONS):
        before = [r["offset"] for r in whole["records"] if r["partition"] == partition]
        after = [r["offset"] for r in resumed["records"] if r["partition"] == partition]
        start = before[-1] + 1 if before else 0
        assert after == list(range(start, start + len(after))), partition


def test_no_cursor_reads_from_the_beginning_and_an_empty_topic_is_an_empty_last_page(
        control: ControlPlane, plane: Plane, people: Cast) -> None:
    sid = approved(control, people, fields=["msisdn"])["subscription_id"]

    first = page(plane, people, sid)
    assert first["records"] == [] and first["more"] is False
    assert page(plane, people, sid, cursor=first["next_cursor"]) == first


def tampered(cursor: str) -> str:
    payload, mac = cursor.split(".")
    content = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    content["o"] = {"0": 0, "1": 0, "2": 0, "3": 0}
    return base64.urlsafe_b64encode(json.dumps(content).encode()).rstrip(b"=").decode() + "." + mac


def test_a_garbage_tampered_or_another_subscriptions_cursor_is_a_400(control: ControlPlane, bootstrap: str,
                                                                     plane: Plane, people: Cast) -> None:
    subscription = approved(control, people, fields=["msisdn", "carrier"])
    sid = subscription["subscription_id"]
    shared(control, bootstrap, subscription, 5)
    other = approved(control, people, fields=["msisdn"], name="second")["subscription_id"]
    theirs = page(plane, people, other)["next_cursor"]
    ours = page(plane, people, sid, limit=2)["next_cursor"]
    consumer = bearer(people.token(Role.CONSUMER))

    for cursor in ("garbage", "!!!.???", "eyJ2IjoxfQ", ours + "x", ours.replace(".", ".A"), tampered(ours), theirs,
                   "é.é", ours.split(".")[0] + "." + theirs.split(".")[1]):
        message = refused(send(plane.url, "GET", records_path(sid, cursor=cursor), authorization=consumer), 400)
        assert message.startswith("cursor: "), (cursor, message)
    assert "another" in refused(send(plane.url, "GET", records_path(sid, cursor=theirs), authorization=consumer), 400)
    # The cursor of its own subscription is taken.
    assert send(plane.url, "GET", records_path(other, cursor=theirs), authorization=consumer).status == 200


def test_only_the_subscribing_agency_reads_and_a_subscription_not_delivering_is_a_409(
        control: ControlPlane, plane: Plane, people: Cast) -> None:
    sid = approved(control, people, fields=["msisdn"])["subscription_id"]
    stranger = Cast.register(control.identities)
    path = records_path(sid)

    assert "only its agency" in refused(send(plane.url, "GET", path,
                                             authorization=bearer(stranger.token(Role.CONSUMER))), 403)
    assert refused(send(plane.url, "GET", path), 401)
    for role in (Role.ADMIN, Role.OWNER, Role.OPS, Role.PORTAL, Role.STEWARD):
        assert "needs the role consumer" in refused(send(plane.url, "GET", path,
                                                         authorization=bearer(people.token(role))), 403)
    assert refused(send(plane.url, "GET", records_path(sid + "x"),
                        authorization=bearer(people.token(Role.CONSUMER))), 404)

    consumer = control.identities.authenticate(people.token(Role.CONSUMER))
    owner = control.identities.authenticate(people.token(Role.OWNER))
    waiting = control.subscriptions.request(consumer, dataset="telecom.subscriber", fields=["msisdn"], purpose="p",
                                            legal_basis="b", name="waiting")["subscription_id"]
    assert refused(send(plane.url, "GET", records_path(waiting), authorization=bearer(people.token(Role.CONSUMER))),
                   409) == f"subscription {waiting} is requested: records are read while it is approved or active"
    control.subscriptions.suspend(owner, sid, reason="under investigation")
    assert "is suspended" in refused(send(plane.url, "GET", path, authorization=bearer(people.token(Role.CONSUMER))),
                                     409)


@pytest.mark.parametrize(("limit", "message"), [("0", "limit: must be from 1 to 1000, not 0"),
                                                 ("1001", "limit: must be from 1 to 1000, not 1001"),
                                                 ("-3", "limit: must be from 1 to 1000, not -3"),
                                                 ("ten", "limit: must be a whole number, not 'ten'")])
def test_a_limit_out_of_bounds_is_a_400_with_one_line(control: ControlPlane, plane: Plane, people: Cast,
                                                      limit: str, message: str) -> None:
    sid = approved(control, people, fields=["msisdn"])["subscription_id"]
    answer = send(plane.url, "GET", records_path(sid, limit=limit), authorization=bearer(people.token(Role.CONSUMER)))
    assert refused(answer, 400) == message


def test_the_openapi_document_lists_the_route_with_its_query_parameters(plane: Plane, people: Cast) -> None:
    document = send(plane.url, "GET", "/openapi.json", authorization=bearer(people.token(Role.CONSUMER))).json()
    operation = document["paths"]["/api/subscriptions/{subscription_id}/records"]["get"]

    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"subscription_id", "cursor", "limit"}
    assert parameters["cursor"]["in"] == parameters["limit"]["in"] == "query"
    assert parameters["limit"]["schema"]["type"] == "integer"
    assert operation["x-gsp-roles"] == ["consumer"]


def test_without_a_feed_the_route_answers_503_after_checking_the_caller(control: ControlPlane, people: Cast) -> None:
    sid = approved(control, people, fields=["msisdn"])["subscription_id"]
    server = ApiServer(build_app(control, CollectorRegistry()))
    server.start()
    try:
        consumer = bearer(people.token(Role.CONSUMER))
        assert refused(send(server.url, "GET", records_path(sid), authorization=consumer), 503)
        assert refused(send(server.url, "GET", records_path(sid + "x"), authorization=consumer), 404)
    finally:
        server.stop()


def test_the_cli_pulls_the_records_as_json_lines_and_resumes_from_its_cursor_file(
        control: ControlPlane, bootstrap: str, plane: Plane, people: Cast, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    subscription = approved(control, people, fields=["msisdn", "carrier"])
    sid = subscription["subscription_id"]
    events = shared(control, bootstrap, subscription, 7)
    monkeypatch.setenv("GSP_API_URL", plane.url)
    monkeypatch.setenv("GSP_TOKEN", people.token(Role.CONSUMER))
    monkeypatch.setenv("GSP_HOME", str(tmp_path / "home"))
    cursor_file = tmp_path / "feed.cursor"

    assert main(["subscription", "pull", sid, "--limit", "3", "--cursor-file", str(cursor_file)]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["event"]["header"]["event_id"] for r in lines) == sorted(e["header"]["event_id"] for e in events)
    saved = cursor_file.read_text().strip()
    assert err.splitlines()[-1] == f"next cursor: {saved}"

    shared(control, bootstrap, subscription, 9)  # the first seven again, and two new
    assert main(["subscription", "pull", sid, "--cursor-file", str(cursor_file)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 9 and err.splitlines() == [f"next cursor: {cursor_file.read_text().strip()}"]

    # The same records through the client the demo uses.
    api = ApiClient(plane.url, token=people.token(Role.CONSUMER))
    first = api.get(f"/api/subscriptions/{urllib.parse.quote(sid, safe='')}/records?limit=1000")
    assert len(first["records"]) == 16 and first["more"] is False

    assert main(["subscription", "pull", sid, "--cursor", "garbage"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "gsp: error: cursor: not a cursor this feed issued\n"


def test_pull_follow_prints_new_records_as_they_come_until_ctrl_c(control: ControlPlane, bootstrap: str, plane: Plane,
                                                                  people: Cast, tmp_path: Path) -> None:
    subscription = approved(control, people, fields=["msisdn", "carrier"])
    shared(control, bootstrap, subscription, 2)
    cursor_file = tmp_path / "feed.cursor"
    env = {**os.environ, "GSP_API_URL": plane.url, "GSP_TOKEN": people.token(Role.CONSUMER),
           "GSP_HOME": str(tmp_path / "home")}
    follower = subprocess.Popen([sys.executable, "-m", "gsp", "subscription", "pull", subscription["subscription_id"],
                                 "--follow", "--interval", "0.2", "--cursor-file", str(cursor_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(60, follower.kill)  # a hung follower ends the reads below with EOF
    watchdog.start()
    try:
        assert follower.stdout is not None
        first = [json.loads(follower.stdout.readline()) for _ in range(2)]
        shared(control, bootstrap, subscription, 3)  # the two again, and one new: all three come
        later = [json.loads(follower.stdout.readline()) for _ in range(3)]
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    finally:
        watchdog.cancel()
        follower.kill()
        follower.wait(timeout=30)

    assert follower.returncode == 0 and out == "", err
    assert sorted(r["event"]["header"]["source_key"] for r in first) == ["sub-0", "sub-1"]
    assert sorted(r["event"]["header"]["source_key"] for r in later) == ["sub-0", "sub-1", "sub-2"]
    saved = cursor_file.read_text().strip()
    assert err.splitlines()[-1] == f"next cursor: {saved}" and "Traceback" not in err
