"""Subscription requests and decisions, on a real control plane (the session's broker) with SQLite and PostgreSQL,
under a frozen clock: who may decide, what reaches the data plane, versions, periods and the answer deadline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gsp.desks.base import NotOpen
from gsp.errors import NotFound, UserError
from gsp.governance.control import ControlPlane
from gsp.governance.deadline import WorkingCalendar
from gsp.governance.identity import Forbidden, Grant, Identity, Role
from tests.credentials import Cast

SUBSCRIBER = "telecom.subscriber"
ASK = {"purpose": "Chi trả trợ cấp đúng người", "legal_basis": "Luật Bảo hiểm xã hội 2024"}
# Friday 4 December 2026, 15:00 in Hà Nội.
FRIDAY = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY)


@pytest.fixture
def plane(registry_engine: sa.Engine, bootstrap: str, clock: Clock) -> Iterator[ControlPlane]:
    """A control plane on each database, whose owners have 2 working days and 7 December 2026 off."""
    control = ControlPlane(registry_engine, bootstrap=bootstrap, partitions=4, clock=clock, answer_days=2,
                           calendar=WorkingCalendar(holidays=frozenset({datetime(2026, 12, 7).date()})))
    control.start()
    yield control
    control.close()


@pytest.fixture
def cast(plane: ControlPlane) -> Cast:
    return Cast.register(plane.identities)


def who(plane: ControlPlane, cast: Cast, role: Role) -> Identity:
    return plane.identities.authenticate(cast.token(role))


def published(plane: ControlPlane, sid: str) -> dict | None:
    return next((e for e in plane.published_subscriptions() if e["subscription_id"] == sid), None)


def test_a_request_waits_for_the_owner_who_alone_decides(plane: ControlPlane, cast: Cast) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    asked = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn", "verdict"], **ASK)
    sid = asked["subscription_id"]
    assert asked["state"] == "requested" and asked["active_version"] is None and published(plane, sid) is None
    [version] = asked["versions"]
    assert version["requested_by"] == consumer.who and version["purpose"] == ASK["purpose"]

    # Neither the consumer, nor a steward, nor an admin, nor the owner of another dataset may decide.
    plane.identities.register_agency("VN/GOV/bo-cong-an/c06", name="Cục C06, Bộ Công an")
    citizen_owner = plane.identities.authenticate(plane.identities.issue(
        "VN/GOV/bo-cong-an/c06", grants=[Grant(Role.OWNER, ("population.citizen",))]).token)
    for somebody in (consumer, who(plane, cast, Role.STEWARD), who(plane, cast, Role.ADMIN), citizen_owner):
        with pytest.raises(Forbidden, match=r"is not owner of dataset telecom\.subscriber"):
            plane.subscriptions.approve(somebody, sid, 1)
    with pytest.raises(UserError, match="a refusal needs a written reason"):
        plane.subscriptions.refuse(owner, sid, 1, reason="  ")

    decided = plane.subscriptions.approve(owner, sid, 1, reason="đủ căn cứ")
    assert decided["state"] == "active" and decided["active_version"] == 1
    assert decided["versions"][0]["decided_by"] == owner.who
    event = published(plane, sid)
    assert event is not None and event["fields"] == ["msisdn", "verdict"] and event["agency_id"] == cast.consumer_agency
    with pytest.raises(NotOpen, match="is active, not waiting"):
        plane.subscriptions.approve(owner, sid, 1)


def test_a_refused_request_is_never_published_and_keeps_its_reason(plane: ControlPlane, cast: Cast) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], **ASK)["subscription_id"]
    refused = plane.subscriptions.refuse(owner, sid, 1, reason="mục đích không cần số điện thoại")
    assert refused["state"] == "refused" and refused["versions"][0]["reason"] == "mục đích không cần số điện thoại"
    assert published(plane, sid) is None
    assert plane.subscriptions.tick() == 0 and published(plane, sid) is None


def test_each_party_sees_only_its_own(plane: ControlPlane, cast: Cast) -> None:
    plane.subscriptions.request(who(plane, cast, Role.CONSUMER), dataset=SUBSCRIBER, fields=["msisdn"], **ASK)
    other = Cast.register(plane.identities, owned="population.citizen")
    other_consumer = who(plane, other, Role.CONSUMER)
    assert plane.subscriptions.visible(other_consumer) == []
    assert plane.subscriptions.visible(who(plane, other, Role.OWNER)) == []   # owns population.citizen only
    for role in (Role.CONSUMER, Role.OWNER, Role.ADMIN, Role.OPS):
        assert [s["agency"] for s in plane.subscriptions.visible(who(plane, cast, role))] == [cast.consumer_agency]
    sid = plane.subscriptions.visible(who(plane, cast, Role.ADMIN))[0]["subscription_id"]
    with pytest.raises(NotFound):
        plane.subscriptions.show(other_consumer, sid)
    with pytest.raises(NotFound):
        plane.subscriptions.revoke(other_consumer, sid, reason="không phải của tôi")


def test_a_change_is_a_new_version_while_the_old_one_keeps_running(plane: ControlPlane, cast: Cast) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], **ASK)["subscription_id"]
    plane.subscriptions.approve(owner, sid, 1)
    changed = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn", "carrier"], **ASK)
    assert [v["state"] for v in changed["versions"]] == ["active", "requested"]
    assert published(plane, sid)["version"] == 1 and published(plane, sid)["fields"] == ["msisdn"]
    with pytest.raises(NotOpen, match="version 2 is still requested"):
        plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["carrier"], **ASK)

    after = plane.subscriptions.approve(owner, sid, 2)
    assert [v["state"] for v in after["versions"]] == ["superseded", "active"] and after["active_version"] == 2
    assert published(plane, sid)["version"] == 2 and published(plane, sid)["fields"] == ["msisdn", "carrier"]


def test_an_agency_may_hold_several_subscriptions_to_one_dataset(plane: ControlPlane, cast: Cast) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    ids = [plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=fields, name=name, **ASK)["subscription_id"]
           for name, fields in (("main", ["msisdn"]), ("audit", ["carrier", "verdict"]))]
    for sid in ids:
        plane.subscriptions.approve(owner, sid, 1)
    topics = {published(plane, sid)["topic"] for sid in ids}
    slug = consumer.agency_slug
    assert topics == {f"share.{slug}.subscriber.v1", f"share.{slug}.subscriber-audit.v1"}


def test_suspend_and_resume_withdraw_and_republish(plane: ControlPlane, cast: Cast) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], **ASK)["subscription_id"]
    plane.subscriptions.approve(owner, sid, 1)
    with pytest.raises(UserError, match="a suspension needs a written reason"):
        plane.subscriptions.suspend(owner, sid, reason=None)
    with pytest.raises(Forbidden):
        plane.subscriptions.suspend(consumer, sid, reason="tạm dừng")
    assert plane.subscriptions.suspend(owner, sid, reason="đang thanh tra")["state"] == "suspended"
    assert published(plane, sid) is None
    assert plane.subscriptions.resume(owner, sid)["state"] == "active"
    assert published(plane, sid) is not None
    ended = plane.subscriptions.revoke(consumer, sid, reason="không còn nhu cầu")   # a consumer may end its own
    assert ended["state"] == "revoked" and ended["versions"][0]["ended_by"] == consumer.who
    assert published(plane, sid) is None


def test_the_approved_period_starts_and_ends_delivery(plane: ControlPlane, cast: Cast, clock: Clock) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    start, end = FRIDAY + timedelta(days=10), FRIDAY + timedelta(days=40)
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], valid_from=start,
                                      valid_until=end, **ASK)["subscription_id"]
    assert plane.subscriptions.approve(owner, sid, 1)["state"] == "approved"
    assert published(plane, sid) is None

    clock.now = start
    assert plane.subscriptions.tick() == 1
    event = published(plane, sid)
    assert event is not None and event["valid_from"] == int(start.timestamp() * 1000)
    assert event["valid_until"] == int(end.timestamp() * 1000) and event["backfill"] is False

    clock.now = end
    assert plane.subscriptions.tick() == 1
    assert plane.subscriptions.show(owner, sid)["state"] == "expired" and published(plane, sid) is None
    with pytest.raises(UserError, match="valid_until must be after"):
        plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], valid_until=end, **ASK)


def test_the_answer_deadline_counts_working_days_only(plane: ControlPlane, cast: Cast, clock: Clock) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    asked = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], **ASK)
    # Friday afternoon; Monday 7 is a holiday: Tuesday 8 and Wednesday 9 count, due at the end of Wednesday (UTC+7).
    assert asked["versions"][0]["due_at"] == "2026-12-09T17:00:00Z"
    clock.now = datetime(2026, 12, 9, 16, 59, tzinfo=UTC)
    assert plane.subscriptions.visible(owner, overdue_only=True) == []
    assert plane.subscriptions.overdue_counts()[SUBSCRIBER] == 0
    clock.now = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)
    [late] = plane.subscriptions.visible(owner, overdue_only=True)
    assert late["subscription_id"] == asked["subscription_id"] and late["versions"][0]["overdue"]
    assert plane.subscriptions.overdue_counts()[SUBSCRIBER] == 1
    plane.subscriptions.approve(owner, asked["subscription_id"], 1)
    assert plane.subscriptions.overdue_counts()[SUBSCRIBER] == 0


def test_every_decision_is_told_to_the_audit_log_attributed_to_its_credential(plane: ControlPlane, cast: Cast) -> None:
    told: list[tuple[str, str, str, dict[str, str]]] = []
    plane.subscriptions.audit = lambda *entry: told.append(entry)
    plane.identities.audit = lambda *entry: told.append(entry)
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], **ASK)["subscription_id"]
    plane.subscriptions.approve(owner, sid, 1)
    plane.subscriptions.revoke(owner, sid, reason="hết nhu cầu")
    plane.identities.revoke(consumer.key_id, by=owner.who)

    assert [(actor, action) for actor, action, _, _ in told] == [
        (consumer.who, "subscription.request"), (owner.who, "subscription.approve"),
        ("gsp", "agency.rotate-key"),   # the agency's first pseudonym secret, made when it is first shared with
        ("gsp", "subscription.activate"),
        (owner.who, "subscription.revoke"), (owner.who, "credential.revoke")]
    assert told[0][2] == f"subscription/{sid}" and told[0][3]["legal_basis"] == ASK["legal_basis"]
    assert told[4][3] == {"version": "1", "reason": "hết nhu cầu"}
    assert not any(cast.token(Role.CONSUMER).split("_", 2)[2] in str(entry) for entry in told)


def test_two_owners_deciding_at_once_make_one_decision(plane: ControlPlane, cast: Cast,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], **ASK)["subscription_id"]
    seen = plane.subscriptions._decidable(owner, sid, 1)
    # Both read the version as waiting before either wrote: the second write must not overwrite the first.
    monkeypatch.setattr(plane.subscriptions, "_decidable", lambda *args: seen)
    plane.subscriptions.refuse(owner, sid, 1, reason="trùng mục đích")
    with pytest.raises(NotOpen, match="decided meanwhile"):
        plane.subscriptions.approve(owner, sid, 1)
    assert plane.subscriptions.show(owner, sid)["state"] == "refused" and published(plane, sid) is None


def test_rotating_an_agencys_secret_republishes_its_subscriptions_with_new_pseudonyms(plane: ControlPlane,
                                                                                      cast: Cast) -> None:
    consumer, owner, admin = (who(plane, cast, r) for r in (Role.CONSUMER, Role.OWNER, Role.ADMIN))
    sid = plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["carrier"], **ASK)["subscription_id"]
    plane.subscriptions.approve(owner, sid, 1)
    before = published(plane, sid)
    assert before is not None and before["key_version"] == 1 and len(bytes.fromhex(before["pseudonym_key"])) == 32
    other = Cast.register(plane.identities)
    other_sid = plane.subscriptions.request(who(plane, other, Role.CONSUMER), dataset=SUBSCRIBER, fields=["carrier"],
                                            **ASK)["subscription_id"]
    plane.subscriptions.approve(who(plane, other, Role.OWNER), other_sid, 1)
    assert published(plane, other_sid)["pseudonym_key"] != before["pseudonym_key"]   # each agency its own secret

    rotated = plane.subscriptions.rekey(admin, cast.consumer_agency)
    after = published(plane, sid)
    assert rotated == {"agency": cast.consumer_agency, "key_version": 2, "republished": [sid]}
    assert after["key_version"] == 2 and after["pseudonym_key"] != before["pseudonym_key"]
    assert after["version"] == before["version"] and after["fields"] == before["fields"]
    assert published(plane, other_sid)["key_version"] == 1   # another agency's secret is untouched


def test_tickers_racing_activate_a_version_once(plane: ControlPlane, cast: Cast, clock: Clock) -> None:
    """The ticker thread and an approval's own tick (or two control planes) may both read a version as approved:
    it is published and back-filled once, and its activation told once."""
    consumer, owner = who(plane, cast, Role.CONSUMER), who(plane, cast, Role.OWNER)
    start = FRIDAY + timedelta(days=10)
    sids = [plane.subscriptions.request(consumer, dataset=SUBSCRIBER, fields=["msisdn"], valid_from=start,
                                        name=f"p{n}", **ASK)["subscription_id"] for n in range(4)]
    for sid in sids:
        plane.subscriptions.approve(owner, sid, 1)
    activated: list[str] = []
    told: list[str] = []
    plane.subscriptions.on_activate = lambda event: activated.append(event["subscription_id"])
    plane.subscriptions.audit = lambda actor, action, subject, details: told.append(action)
    clock.now = start
    barrier = threading.Barrier(6)

    def tick() -> None:
        barrier.wait(timeout=10)
        plane.subscriptions.tick()

    threads = [threading.Thread(target=tick) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(activated) == sorted(sids)
    assert told.count("subscription.activate") == len(sids)
    assert all(plane.subscriptions.show(owner, sid)["state"] == "active" and published(plane, sid) for sid in sids)
