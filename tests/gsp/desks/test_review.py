"""The stewards' match review on the embedded broker, SQLite and PostgreSQL.

The session broker is shared: every proposal here has a source system of its
own, and assertions look only at this test's item ids and keys.
"""

import contextlib
import csv
import functools
import io
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from connectors.runner import event_id
from gsp.desks.base import NotOpen, Unavailable
from gsp.desks.review import ReviewDesk, ReviewIndexer, review_decisions
from gsp.errors import NotFound, UserError
from gsp.governance.identity import ALL, Grant, Issued, Role
from gsp.http.review import review_routes
from schemas import topics
from tests import desks
from tests.credentials import PLATFORM, Cast
from tests.desks import call, msisdn
from tests.topics import read_topic

SUBSCRIBERS = "telecom.subscriber"
REVIEW, MATCH, DECISIONS = "review.telecom.subscriber.v1", "match.telecom.subscriber.v1", "gsp.review.decisions"
LEVELS = {"given_name": "exact", "family_name": "folded", "birth_date": "day_month_swapped"}


@dataclass
class Plane(desks.Plane):
    desk: ReviewDesk
    indexer: ReviewIndexer
    group: str

    def new_desk(self, **changes: Any) -> ReviewDesk:
        return ReviewDesk(self.engine, **{"producer": self.producer, "codec": self.codec, "schema_id_of": self.schema_id,
                                          "audit": self.audit, **changes})

    def possible(self, key: str, personal_id: str | None, *, version: str = "1:1", probability: float | None = 0.93,
                 levels: dict[str, str] | None = None, verdict: str = "POSSIBLE") -> bytes:
        """What the worker writes when it proposes ``personal_id`` for the subscriber ``key``: POSSIBLE from its
        search, MISMATCH for the record of the subscriber's own id."""
        header = {"event_id": event_id(self.system, key, version), "source_system": self.system, "source_key": key,
                  "source_version": version, "ingested_at": 1}
        subscriber = {"header": header, "msisdn": key, "carrier": "Viettel", "subscriber_name": "Lê Thị Thu",
                      "id_number": "001085099999", "birth_date": "1985-02-03", "address": None, "updated_at": 1}
        return self.codec.encode(self.schema_id(f"{REVIEW}-value"), {
            "header": header, "dataset": SUBSCRIBERS, "source_key": key, "verdict": verdict, "personal_id": personal_id,
            "agreeing_fields": ["subscriber_name"], "disagreeing_fields": ["id_number"], "score": 7.25,
            "record": self.codec.encode(self.schema_id("clean.telecom.subscriber.v1-value"), subscriber),
            "method": "search", "probability": probability, "levels": LEVELS if levels is None else levels})

    def propose(self, key: str, personal_id: str | None, **kwargs: Any) -> str:
        """Publish a proposal to the review topic; the item's id."""
        value = self.possible(key, personal_id, **kwargs)
        self.send(REVIEW, key.encode(), value)
        return str(self.codec.decode(value)[1]["header"]["event_id"])

    def index(self, *item_ids: str) -> None:
        """Run the indexer until every given item is in the database."""
        deadline = time.monotonic() + 60
        while not all(self.indexed(i) for i in item_ids):
            assert time.monotonic() < deadline, "the indexer did not pick up the proposals"
            self.indexer.run_once(timeout_ms=200)

    def indexed(self, item_id: str) -> bool:
        try:
            self.desk.show(item_id)
        except NotFound:
            return False
        return True

    def restart(self) -> None:
        """A new desk and indexer (same consumer group) on the same database, as after a control-plane restart."""
        self.indexer.close()
        self.desk = self.new_desk()
        self.indexer = ReviewIndexer(self.bootstrap, self.engine, self.codec, group=self.group)


def personal_id() -> str:
    return "001" + "".join(random.choices("0123456789", k=9))


def running_plane(bootstrap: str, engine: sa.Engine) -> contextlib.AbstractContextManager[Plane]:
    return desks.running_plane(Plane, ReviewDesk, ReviewIndexer, bootstrap, engine)


@pytest.fixture(params=["sqlite", "postgresql"])
def plane(request: pytest.FixtureRequest, bootstrap: str) -> Iterator[Plane]:
    with running_plane(bootstrap, request.getfixturevalue(f"{request.param}_engine")) as p:
        yield p


def events(plane: Plane, topic: str, key: str) -> list[dict[str, Any]]:
    """Every event of ``topic`` under ``key``, decoded, oldest first."""
    return [plane.codec.decode(m.value)[1] for m in read_topic(plane.bootstrap, topic) if m.key == key.encode()]


def test_show_puts_the_subscribers_record_next_to_the_proposed_pair_and_list_filters(plane: Plane) -> None:
    key, other_key, pid = msisdn(), msisdn(), personal_id()
    item_id = plane.propose(key, pid, probability=0.875)
    other = plane.propose(other_key, personal_id(), probability=None, levels={})
    plane.index(item_id, other)

    shown = plane.desk.show(item_id)
    assert (shown["personal_id"], shown["probability"], shown["levels"], shown["score"]) == (pid, 0.875, LEVELS, 7.25)
    assert (shown["status"], shown["source_key"], shown["dataset"]) == ("open", key, SUBSCRIBERS)
    assert shown["record"]["format"] == "avro" and shown["record"]["value"]["msisdn"] == key
    assert shown["record"]["value"]["id_number"] == "001085099999"
    assert (shown["agreeing_fields"], shown["disagreeing_fields"]) == (["subscriber_name"], ["id_number"])
    assert plane.desk.show(other)["probability"] is None and plane.desk.show(other)["levels"] == {}

    listed = {i["item_id"]: i for i in plane.desk.list(dataset=SUBSCRIBERS, limit=1000)}
    assert {item_id, other} <= set(listed) and "record" not in listed[item_id] and listed[item_id]["levels"] == LEVELS
    assert not {item_id, other} & {i["item_id"] for i in plane.desk.list(status="accepted", limit=1000)}
    assert not {item_id, other} & {i["item_id"] for i in plane.desk.list(dataset="population.citizen", limit=1000)}
    before = plane.desk.counts()[SUBSCRIBERS]
    plane.desk.reject(other, by="lan", reason="different person")
    assert plane.desk.counts()[SUBSCRIBERS] == before - 1
    assert other in {i["item_id"] for i in plane.desk.list(status="rejected")} and other in {
        i["item_id"] for i in plane.desk.list(status=None, limit=1000)}
    with pytest.raises(UserError, match="unknown status"):
        plane.desk.list(status="closed")
    with pytest.raises(NotFound, match="no review item 'nope'"):
        plane.desk.show("nope")


def test_accept_publishes_the_decision_a_matched_result_and_an_audit_event_then_closes_the_item(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    item_id = plane.propose(key, pid)
    plane.index(item_id)
    proposal = plane.codec.decode(plane.possible(key, pid))[1]

    accepted = plane.desk.accept(item_id, by="lan", reason="same person, day and month swapped")

    assert (accepted["status"], accepted["decided_by"], accepted["also_closed"]) == ("accepted", "lan", [])
    [decision] = events(plane, DECISIONS, topics.decision_key(SUBSCRIBERS, key, pid))
    assert (decision["decision"], decision["decided_by"], decision["reason"]) == \
        ("ACCEPTED", "lan", "same person, day and month swapped")
    assert (decision["personal_id"], decision["probability"], decision["levels"]) == (pid, 0.93, LEVELS)
    assert decision["decided_at"] == accepted["decided_at"] and decision["header"]["source_key"] == f"{SUBSCRIBERS}|{key}|{pid}"
    [result] = events(plane, MATCH, key)
    assert (result["verdict"], result["method"], result["personal_id"]) == ("MATCHED", "review", pid)
    assert result["header"]["event_id"] == accepted["match_event_id"] != item_id
    assert {k: result["header"][k] for k in ("source_system", "source_key", "source_version")} == \
        {k: proposal["header"][k] for k in ("source_system", "source_key", "source_version")}
    assert result["record"] == proposal["record"] and (result["probability"], result["levels"]) == (0.93, LEVELS)
    assert (result["score"], result["agreeing_fields"]) == (7.25, ["subscriber_name"])
    [audit] = events(plane, "gsp.audit", f"review/{item_id}")
    assert (audit["action"], audit["actor"], audit["details"]["decision"]) == ("review.accept", "lan", "ACCEPTED")
    assert audit["details"]["match_event_id"] == accepted["match_event_id"] and pid not in audit["details"].values()
    assert plane.desk.show(item_id)["status"] == "accepted" and item_id not in {i["item_id"] for i in plane.desk.list(limit=1000)}


def test_reject_needs_a_reason_and_a_name_and_publishes_no_match_without_a_personal_id(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    item_id = plane.propose(key, pid)
    plane.index(item_id)
    with pytest.raises(UserError, match="reason is required"):
        plane.desk.reject(item_id, by="lan", reason="  ")
    with pytest.raises(UserError, match="who is acting"):
        plane.desk.reject(item_id, by="", reason="different birth year")
    with pytest.raises(UserError, match="who is acting"):
        plane.desk.accept(item_id, by=" ")
    assert plane.desk.show(item_id)["status"] == "open" and events(plane, DECISIONS, f"{SUBSCRIBERS}|{key}|{pid}") == []

    rejected = plane.desk.reject(item_id, by="minh", reason="different birth year")

    assert (rejected["status"], rejected["reason"]) == ("rejected", "different birth year")
    [decision] = events(plane, DECISIONS, f"{SUBSCRIBERS}|{key}|{pid}")
    assert (decision["decision"], decision["decided_by"], decision["personal_id"]) == ("REJECTED", "minh", pid)
    [result] = events(plane, MATCH, key)
    assert (result["verdict"], result["method"], result["personal_id"]) == ("NO_MATCH", "review", None)
    assert result["header"]["event_id"] == rejected["match_event_id"]
    [audit] = events(plane, "gsp.audit", f"review/{item_id}")
    assert (audit["action"], audit["actor"], audit["details"]["reason"]) == ("review.reject", "minh", "different birth year")


def test_a_mismatch_of_the_subscribers_own_id_is_reviewed_and_a_reject_keeps_it_a_mismatch(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    rejected = plane.propose(key, pid, verdict="MISMATCH")
    accepted = plane.propose(key, pid, verdict="MISMATCH", version="2:2")
    plane.index(rejected, accepted)
    assert plane.desk.show(rejected)["verdict"] == "MISMATCH"
    # Both items are one pair: one decision closes both; another item of the pair shows the other verdict.
    decided = plane.desk.reject(rejected, by="minh", reason="the id was lent to a relative")
    assert (decided["match_verdict"], decided["also_closed"]) == ("MISMATCH", [accepted])
    results = {r["header"]["source_version"]: r for r in events(plane, MATCH, key)}
    assert {(r["verdict"], r["personal_id"], r["method"]) for r in results.values()} == {("MISMATCH", pid, "review")}

    other_key = msisdn()
    item_id = plane.propose(other_key, pid, verdict="MISMATCH")
    plane.index(item_id)
    assert plane.desk.accept(item_id, by="lan", reason="name typed without diacritics")["match_verdict"] == "MATCHED"
    [result] = events(plane, MATCH, other_key)
    assert (result["verdict"], result["personal_id"], result["method"]) == ("MATCHED", pid, "review")


def test_events_that_propose_no_pair_are_skipped_and_indexing_goes_on(plane: Plane) -> None:
    key = msisdn()
    no_match = plane.possible(key, None, verdict="NO_MATCH")
    plane.send(REVIEW, key.encode(), no_match)
    plane.send(REVIEW, key.encode(), b"\x00\x00\x00\x00\x01 not a match result")
    item_id = plane.propose(key, personal_id(), version="2:2")  # behind both, in the same partition
    plane.index(item_id)
    assert not plane.indexed(str(plane.codec.decode(no_match)[1]["header"]["event_id"]))
    assert [i["item_id"] for i in plane.desk.list(status=None, limit=1000) if i["source_key"] == key] == [item_id]


def test_a_second_decision_is_refused_and_publishes_nothing(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    item_id = plane.propose(key, pid)
    plane.index(item_id)
    plane.desk.reject(item_id, by="minh", reason="different birth year")
    with pytest.raises(NotOpen, match=f"review item {item_id} is already rejected by minh: different birth year"):
        plane.desk.accept(item_id, by="lan")
    with pytest.raises(NotOpen):
        plane.desk.reject(item_id, by="lan", reason="again")
    assert len(events(plane, DECISIONS, f"{SUBSCRIBERS}|{key}|{pid}")) == 1 and len(events(plane, MATCH, key)) == 1
    with pytest.raises(NotFound):
        plane.desk.accept("no-such-item", by="lan")


def test_nothing_closes_unless_the_broker_acknowledged(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    item_id = plane.propose(key, pid)
    plane.index(item_id)
    closed = KafkaProducer(bootstrap_servers=plane.bootstrap)
    closed.close()
    with pytest.raises(Unavailable, match="left open"):
        plane.new_desk(producer=closed).accept(item_id, by="lan")
    assert plane.desk.show(item_id)["status"] == "open"
    with plane.engine.connect() as conn:
        assert conn.execute(sa.select(review_decisions).where(review_decisions.c.source_key == key)).first() is None
    plane.desk.accept(item_id, by="lan")  # the same item can still be decided
    assert plane.desk.show(item_id)["status"] == "accepted"


def test_a_replay_of_the_review_topic_never_reopens_a_decided_item(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    value = plane.possible(key, pid)
    plane.send(REVIEW, key.encode(), value)
    item_id = str(plane.codec.decode(value)[1]["header"]["event_id"])
    plane.index(item_id)
    plane.desk.accept(item_id, by="lan", reason="checked by phone")

    # At-least-once: the same event again, then a marker in the same partition (same key), and the whole topic
    # read again by a new consumer group.
    plane.send(REVIEW, key.encode(), value)
    marker = plane.propose(key, personal_id(), version="2:2")
    plane.index(marker)
    plane.indexer.close()
    plane.indexer = ReviewIndexer(plane.bootstrap, plane.engine, plane.codec, group=f"{plane.group}-replay")
    plane.index(plane.propose(key, personal_id(), version="3:3"))  # behind everything of this key, in one partition

    item = plane.desk.show(item_id)
    assert (item["status"], item["decided_by"], item["reason"]) == ("accepted", "lan", "checked by phone")
    assert plane.desk.show(marker)["status"] == "open"


def test_a_new_proposal_of_a_decided_pair_is_stored_closed_and_not_asked_again(plane: Plane) -> None:
    key, pid, other_pid = msisdn(), personal_id(), personal_id()
    first = plane.propose(key, pid)
    plane.index(first)
    plane.desk.reject(first, by="minh", reason="twin sister")

    # The worker proposed the pair again before it saw the decision; and another registry record for the subscriber.
    again = plane.propose(key, pid, version="2:2", probability=0.91)
    other = plane.propose(key, other_pid, version="3:3")
    plane.index(again, other)

    repeated = plane.desk.show(again)
    assert (repeated["status"], repeated["decided_by"], repeated["reason"]) == ("rejected", "minh", "twin sister")
    open_ids = {i["item_id"] for i in plane.desk.list(dataset=SUBSCRIBERS, limit=1000)}
    assert again not in open_ids and other in open_ids
    with pytest.raises(NotOpen, match="already rejected by minh"):
        plane.desk.accept(again, by="lan")


def test_one_decision_closes_every_open_proposal_of_the_pair(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    first = plane.propose(key, pid)
    second = plane.propose(key, pid, version="2:2")  # proposed twice before anyone decided
    plane.index(first, second)

    accepted = plane.desk.accept(first, by="lan")

    assert accepted["also_closed"] == [second]
    assert (plane.desk.show(second)["status"], plane.desk.show(second)["decided_by"]) == ("accepted", "lan")
    results = events(plane, MATCH, key)
    assert sorted(r["header"]["source_version"] for r in results) == ["1:1", "2:2"]
    assert {r["verdict"] for r in results} == {"MATCHED"} and {r["personal_id"] for r in results} == {pid}
    assert plane.desk.show(second)["match_event_id"] in {r["header"]["event_id"] for r in results}
    assert len(events(plane, DECISIONS, f"{SUBSCRIBERS}|{key}|{pid}")) == 1


def test_decisions_survive_a_restart_of_the_desk_and_the_indexer(plane: Plane) -> None:
    key, pid = msisdn(), personal_id()
    item_id = plane.propose(key, pid)
    plane.index(item_id)
    plane.desk.reject(item_id, by="minh", reason="different birth year")

    plane.restart()
    again = plane.propose(key, pid, version="3:3")
    plane.index(again)

    assert plane.desk.show(again)["status"] == "rejected"
    with pytest.raises(NotOpen):
        plane.desk.accept(item_id, by="lan")
    out = io.StringIO()
    assert plane.desk.export(out) == 1 and f"{SUBSCRIBERS},{key},{pid},REJECTED," in out.getvalue()


def test_export_writes_every_decision_with_a_column_per_comparison_level(plane: Plane, tmp_path: Path) -> None:
    accepted_key, rejected_key, pid, other_pid = msisdn(), msisdn(), personal_id(), personal_id()
    accepted = plane.propose(accepted_key, pid, probability=0.5, levels={"given_name": "exact", "birth_date": "exact"})
    rejected = plane.propose(rejected_key, other_pid, probability=None, levels={"ward": "else"})
    plane.index(accepted, rejected)
    seconds = iter([1_700_000_000.0, 1_700_000_001.5])
    desk = plane.new_desk(clock=lambda: next(seconds))
    desk.reject(rejected, by="minh", reason="moved away")
    desk.accept(accepted, by="lan")

    assert desk.export(tmp_path / "decisions.csv") == 2
    assert list(csv.reader(io.StringIO((tmp_path / "decisions.csv").read_text(encoding="utf-8")))) == [
        ["dataset", "source_key", "personal_id", "decision", "probability", "decided_by", "decided_at",
         "level.birth_date", "level.given_name", "level.ward"],
        [SUBSCRIBERS, rejected_key, other_pid, "REJECTED", "", "minh", "1700000000000", "", "", "else"],
        [SUBSCRIBERS, accepted_key, pid, "ACCEPTED", "0.5", "lan", "1700000001500", "exact", "exact", ""],
    ]
    out = io.StringIO()
    assert desk.export(out) == 2 and out.getvalue() == (tmp_path / "decisions.csv").read_text(encoding="utf-8")


def serving(plane: Plane) -> contextlib.AbstractContextManager[str]:
    """The review desk's routes behind the authorisation matrix; call them with a `tests.credentials.Cast`'s."""
    return desks.serving(plane, review_routes(plane.desk))


def stewards(plane: Plane) -> tuple[Issued, Issued]:
    """Two stewards of every dataset, so a test tells who decided what: the cast's, and another."""
    cast = Cast.register(plane.control.identities)
    return cast.issued[Role.STEWARD], plane.control.identities.issue(PLATFORM, grants=[Grant(Role.STEWARD, (ALL,))],
                                                                      label="test second steward")


def who(issued: Issued) -> str:
    """How the desk names a decision taken with this credential."""
    return f"{issued.agency}#{issued.key_id}"


def test_the_http_api_lists_shows_decides_and_exports_with_clear_errors(bootstrap: str, sqlite_engine: sa.Engine) -> None:
    with running_plane(bootstrap, sqlite_engine) as plane, serving(plane) as url:
        key, pid = msisdn(), personal_id()
        item_id, other = plane.propose(key, pid), plane.propose(msisdn(), personal_id())
        plane.index(item_id, other)
        lan, minh = stewards(plane)
        steward = functools.partial(call, headers={"Authorization": f"Bearer {lan.token}"})
        base = url + "/api/review"
        status, listed = steward(f"{base}?dataset={SUBSCRIBERS}")
        assert status == 200 and {item_id, other} <= {i["item_id"] for i in listed}
        status, counts = steward(f"{base}/counts")
        assert status == 200 and counts[SUBSCRIBERS] >= 2
        status, shown = steward(f"{base}/{item_id}")
        assert status == 200 and shown["record"]["value"]["msisdn"] == key and shown["levels"] == LEVELS
        assert steward(f"{base}/nope")[0] == 404 and steward(f"{base}/nope/accept", "POST", b"{}")[0] == 404
        assert steward(f"{base}?status=closed")[0] == 422 and steward(f"{base}?limit=x")[0] == 400
        assert steward(f"{base}/{item_id}/accept", "POST", b"not json")[0] == 400
        assert steward(f"{base}/{item_id}/accept", "POST", b"[]")[0] == 400
        # Who decides is the credential, never a name in the body.
        status, error = steward(f"{base}/{item_id}/accept", "POST", b'{"by": "lan"}')
        assert status == 400 and error["error"].startswith("by: ")
        status, error = steward(f"{base}/{other}/reject", "POST", b"{}")
        assert status == 422 and error == {"error": "a reason is required to reject a proposed match"}
        status, accepted = steward(f"{base}/{item_id}/accept", "POST", b"{}")
        assert status == 200 and (accepted["status"], accepted["reason"], accepted["decided_by"]) == \
            ("accepted", "", who(lan))
        status, error = steward(f"{base}/{item_id}/reject", "POST", b'{"reason": "second thoughts"}')
        assert status == 409 and f"already accepted by {who(lan)}" in error["error"]
        status, rejected = call(f"{base}/{other}/reject", "POST", b'{"reason": "different ward"}',
                                headers={"Authorization": f"Bearer {minh.token}"})
        assert status == 200 and (rejected["status"], rejected["decided_by"]) == ("rejected", who(minh))
        assert item_id in {i["item_id"] for i in steward(f"{base}?status=all&limit=1000")[1]}
        assert {i["item_id"] for i in steward(f"{base}?status=accepted")[1]} == {item_id}
        status, text = steward(f"{base}/decisions.csv")
        assert status == 200 and text.splitlines()[0].startswith("dataset,source_key,personal_id,decision,")
        assert len(text.splitlines()) == 3 and f"{SUBSCRIBERS},{key},{pid},ACCEPTED,0.93,{who(lan)}," in text
