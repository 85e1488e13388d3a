"""Subscription requests and the data owner's decisions, version by version.

    subs.request(consumer, dataset="telecom.subscriber", fields=[...], purpose="...", legal_basis="...")
    subs.approve(owner, "bo-y-te-bhxh:telecom.subscriber", 1)       # -> active: published to the data plane
    subs.revoke(owner, "bo-y-te-bhxh:telecom.subscriber", reason="…")

Each version goes through::

    requested ──approve──> approved ──(valid from reached)──> active ──suspend──> suspended ──resume──> active
        │                                                       │ └──(a newer version becomes active)──> superseded
        └──refuse (reason)──> refused          revoke (reason) or valid until reached: revoked, expired

A consumer agency requests; only the dataset's declared owner decides, within
``answer_days`` working days (`gsp.governance.deadline`). A change to an active subscription
is a new version that needs approval while the old one keeps running. An agency may hold
several subscriptions to one dataset, one per ``name`` (a slug for the purpose). Only the
active version reaches the data plane (`ControlPlane.stage_event` / `stage_withdrawal`, the
outbox); a state change and its outbox row are committed in one transaction, then published.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gsp.desks.base import NotOpen
from gsp.errors import NotFound, UserError
from gsp.governance.deadline import WorkingCalendar, overdue
from gsp.governance.identity import Audit, Forbidden, Identity, Role
from schemas import topics
from schemas.datasets import Role as DatasetRole
from schemas.datasets import declared
from schemas.envelope import Verdict
from streams import share as sharing
from streams.verify import MODES, REQUIRED, STREAM, VERIFY, verifiable_fields

if TYPE_CHECKING:
    from gsp.governance.control import ControlPlane

__all__ = ["OverdueRequests", "State", "Subscriptions", "subscription_id"]


class State(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


_ENDING = {State.SUSPENDED: "suspend", State.REVOKED: "revoke", State.EXPIRED: "expire"}
_OPEN = (State.REQUESTED, State.APPROVED, State.ACTIVE, State.SUSPENDED)
_DELIVERING = (State.ACTIVE,)
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
DEFAULT_NAME = "main"

_metadata = sa.MetaData()
_versions = sa.Table(
    "subscription_versions", _metadata,
    sa.Column("subscription_id", sa.String(240), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("agency", sa.String(200), nullable=False),      # X-Road id of the consumer
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("request", sa.Text, nullable=False),            # JSON: fields, row_filter, verdicts, purpose, ...
    sa.Column("requested_by", sa.String(240), nullable=False),
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("due_at", sa.BigInteger, nullable=False),
    sa.Column("decided_by", sa.String(240)),
    sa.Column("decided_at", sa.BigInteger),
    sa.Column("reason", sa.Text),                             # of the decision (refusal: required)
    sa.Column("ended_by", sa.String(240)),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("end_reason", sa.Text),                         # of a suspension, revocation or expiry
    sa.Column("valid_from", sa.BigInteger),                   # set on approval: the request's, or the decision's time
)


def subscription_id(agency_slug: str, dataset: str, name: str = DEFAULT_NAME) -> str:
    return f"{agency_slug}:{dataset}" + ("" if name == DEFAULT_NAME else f":{name}")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else _at(ms).isoformat().replace("+00:00", "Z")


def _verifiable(dataset: str, fields: list[str], *, row_filter: Mapping[str, list[str]], verdicts: list[str] | None,
                backfill: bool) -> list[str]:
    """The fields of a verify request, checked: the registry's, among what may be verified, the three always."""
    registry = declared()[dataset]
    if registry.role is not DatasetRole.REGISTRY:
        names = ", ".join(d.name for d in declared().values() if d.role is DatasetRole.REGISTRY)
        raise UserError(f"mode verify checks identity details against the registry ({names}), not {dataset}")
    if row_filter:
        raise UserError("a verify subscription takes no row filter: it receives no rows, it verifies what it sends")
    if verdicts not in (None, [], [Verdict.MATCHED]):
        raise UserError("a verify subscription takes no verdicts: every request gets its own")
    if backfill:
        raise UserError("a verify subscription takes no backfill: it receives no records")
    verifiable = verifiable_fields(registry, [d for d in declared().values() if d.linked])
    if unknown := [f for f in fields if f not in verifiable]:
        raise UserError(f"field {unknown[0]!r} cannot be verified against {dataset}; verifiable: {', '.join(verifiable)}")
    if missing := [f for f in REQUIRED if f not in fields]:
        raise UserError(f"a verify subscription always lists {', '.join(REQUIRED)}; add {', '.join(missing)}")
    return list(dict.fromkeys(fields))


def _reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise UserError(f"{what} needs a written reason")
    return text


class Subscriptions:
    def __init__(self, engine: sa.Engine, control: ControlPlane, *, calendar: WorkingCalendar | None = None,
                 answer_days: int = 2, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._control = control
        self._calendar = calendar or WorkingCalendar()
        self._answer_days = answer_days
        self._clock = clock
        # Told of each version the moment it is published active (the control plane's back-fill listens).
        self.on_activate: Callable[[Mapping[str, Any]], None] = lambda event: None
        self.audit: Audit = lambda actor, action, subject, details: None   # told of every state change
        _metadata.create_all(engine)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # a consumer asks

    def request(self, who: Identity, *, dataset: str, fields: list[str], purpose: str, legal_basis: str,
                row_filter: Mapping[str, list[str]] | None = None, verdicts: list[str] | None = None,
                name: str = DEFAULT_NAME, valid_from: datetime | None = None, valid_until: datetime | None = None,
                backfill: bool = False, mode: str | None = None, consent: bool = False) -> dict[str, Any]:
        """A new subscription, or a new version of one of ``who``'s agency: state requested. ``mode`` verify: the
        agency receives no records but may verify identity details it holds against the registry (`streams.verify`);
        None: stream for a new subscription, the latest version's mode for a change."""
        if not _NAME.match(name):
            raise UserError(f"name {name!r} must be a short lower-case slug, such as {DEFAULT_NAME} or tax-audit")
        if dataset not in declared():
            raise UserError(f"unknown dataset {dataset!r}; known: {', '.join(declared())}")
        if mode is None:
            earlier = self._rows(subscription_id(who.agency_slug, dataset, name))
            mode = earlier[-1]["mode"] if earlier else STREAM
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; {STREAM} (records delivered) or {VERIFY} (identity details checked)")
        row_filter = {k: list(v) for k, v in (row_filter or {}).items()}
        if mode == VERIFY:
            fields = _verifiable(dataset, fields, row_filter=row_filter, verdicts=verdicts, backfill=backfill)
            row_filter, verdicts = {}, []
        else:
            verdicts = list(verdicts or [Verdict.MATCHED])
            try:
                sharing.check(dataset, fields, row_filter)
            except sharing.ShareError as exc:
                raise UserError(str(exc)) from None
        if unknown := sorted(set(verdicts) - set(Verdict)):
            raise UserError(f"unknown verdict {unknown[0]!r}; known: {', '.join(Verdict)}")
        purpose, legal_basis = _reason(purpose, "a request's purpose"), _reason(legal_basis, "a request's legal basis")
        if consent and (mode != STREAM or not declared()[dataset].linked):
            raise UserError("consent as the legal basis needs records matched to a person: a linked dataset, "
                            "delivered as records")
        now = self._now()
        for moment, label in ((valid_from, "valid_from"), (valid_until, "valid_until")):
            if moment is not None and moment.tzinfo is None:
                raise UserError(f"{label} needs a time zone, such as 2027-01-01T00:00:00+07:00")
        if valid_until is not None and valid_until <= max(valid_from or now, now):
            raise UserError("valid_until must be after valid_from and in the future")
        sid = subscription_id(who.agency_slug, dataset, name)
        versions = self._rows(sid)
        if pending := [v for v in versions if v["state"] in (State.REQUESTED, State.APPROVED)]:
            raise NotOpen(f"subscription {sid} version {pending[-1]['version']} is still {pending[-1]['state']}; "
                          "wait for the owner's decision")
        body = {"fields": list(fields), "row_filter": row_filter, "verdicts": verdicts, "purpose": purpose,
                "legal_basis": legal_basis, "valid_from": None if valid_from is None else _ms(valid_from),
                "valid_until": None if valid_until is None else _ms(valid_until), "backfill": backfill, "mode": mode,
                "consent": consent}
        version = max((v["version"] for v in versions), default=0) + 1
        due = self._calendar.due(now, self._answer_days)
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(_versions).values(
                    subscription_id=sid, version=version, agency=who.agency, dataset=dataset, name=name,
                    state=State.REQUESTED, request=json.dumps(body, ensure_ascii=False), requested_by=who.who,
                    requested_at=_ms(now), due_at=_ms(due)))
        except sa.exc.IntegrityError:
            raise NotOpen(f"subscription {sid} version {version} was requested meanwhile") from None
        self._told(who.who, "request", sid, version, purpose=purpose, legal_basis=legal_basis,
                   fields=",".join(fields), **({"mode": mode} if mode != STREAM else {}))
        return self.show(who, sid)

    # the owner decides

    def approve(self, who: Identity, sid: str, version: int, *, reason: str | None = None) -> dict[str, Any]:
        row = self._decidable(who, sid, version)
        now = self._now()
        valid_from = row["request"]["valid_from"] or _ms(now)
        with self._engine.begin() as conn:
            self._claim(conn, sid, version, state=State.APPROVED, decided_by=who.who, decided_at=_ms(now),
                        reason=(reason or "").strip() or None, valid_from=valid_from)
        self._told(who.who, "approve", sid, version, reason=(reason or "").strip())
        self.tick()
        return self.show(who, sid)

    def refuse(self, who: Identity, sid: str, version: int, *, reason: str | None) -> dict[str, Any]:
        text = _reason(reason, "a refusal")
        self._decidable(who, sid, version)
        with self._engine.begin() as conn:
            self._claim(conn, sid, version, state=State.REFUSED, decided_by=who.who, decided_at=_ms(self._now()),
                        reason=text)
        self._told(who.who, "refuse", sid, version, reason=text)
        return self.show(who, sid)

    def suspend(self, who: Identity, sid: str, *, reason: str | None) -> dict[str, Any]:
        return self._end(who, sid, State.SUSPENDED, _reason(reason, "a suspension"), from_states=(State.ACTIVE,))

    def resume(self, who: Identity, sid: str) -> dict[str, Any]:
        version = self._current(sid, (State.SUSPENDED,), "suspended")
        who.require(Role.OWNER, version["dataset"])
        with self._engine.begin() as conn:
            self._set(conn, sid, version["version"], state=State.APPROVED, ended_by=None, ended_at=None,
                      end_reason=None)
        self._told(who.who, "resume", sid, version["version"])
        self.tick()
        return self.show(who, sid)

    def revoke(self, who: Identity, sid: str, *, reason: str | None) -> dict[str, Any]:
        """By the dataset's owner, or by the consuming agency ending its own subscription."""
        return self._end(who, sid, State.REVOKED, _reason(reason, "a revocation"), from_states=_OPEN,
                         consumer_may=True)

    def agency_by_slug(self, slug: str) -> dict[str, Any]:
        return self._control.identities.agency_by_slug(slug)

    def rekey(self, who: Identity, agency: str) -> dict[str, Any]:
        """Rotate ``agency``'s pseudonym secret and republish its delivering subscriptions with the new one: from
        then on its event ids, source and person keys are new (prefixed with the new version)."""
        version, _ = self._control.identities.rotate_key(agency, by=who.who)
        with self._engine.connect() as conn:
            rows = [_row_json(r) for r in conn.execute(sa.select(_versions).where(
                _versions.c.agency == agency, _versions.c.state == State.ACTIVE))]
        for row in rows:
            event = self._event(row)
            with self._engine.begin() as conn:
                self._control.stage_event(conn, event)
            self._control.publish_staged(row["subscription_id"])
        return {"agency": agency, "key_version": version, "republished": [r["subscription_id"] for r in rows]}

    def tick(self) -> int:
        """Activate approved versions whose period began, expire those whose period ended; how many changed."""
        now = _ms(self._now())
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_versions).where(_versions.c.state.in_(_OPEN[1:]))
                                .order_by(_versions.c.subscription_id, _versions.c.version)).all()
        changed = 0
        for row in map(_row_json, rows):
            until = row["request"]["valid_until"]
            if until is not None and until <= now:
                self._transition(row, State.EXPIRED, by="gsp", reason="the approved period ended")
                changed += 1
            elif row["state"] == State.APPROVED and (row["valid_from_ms"] or 0) <= now:
                self._activate(row)
                changed += 1
        return changed

    # reading

    def visible(self, who: Identity, *, overdue_only: bool = False, dataset: str | None = None) -> list[dict[str, Any]]:
        """The subscriptions ``who`` may see: all (admin, ops), its datasets' (owner), its agency's (consumer)."""
        with self._engine.connect() as conn:
            query = sa.select(_versions).order_by(_versions.c.subscription_id, _versions.c.version)
            if dataset is not None:
                query = query.where(_versions.c.dataset == dataset)
            rows = [_row_json(r) for r in conn.execute(query)]
        by_id: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if self._visible(who, row):
                by_id.setdefault(row["subscription_id"], []).append(row)
        out = [self._summary(versions) for versions in by_id.values()]
        return [s for s in out if s["overdue"]] if overdue_only else out

    def show(self, who: Identity, sid: str) -> dict[str, Any]:
        versions = [v for v in self._rows(sid) if self._visible(who, v)]
        if not versions:
            raise NotFound(f"no subscription {sid!r}")
        return self._summary(versions)

    def terms(self, sid: str, version: int) -> dict[str, Any]:
        """What a version was approved for, as the audit ledger records it with each delivery under it:
        its purpose, legal basis and agency (empty for a version the database does not hold)."""
        row = next((v for v in self._rows(sid) if v["version"] == version), None)
        if row is None:
            return {}
        return {"purpose": row["request"]["purpose"], "legal_basis": row["request"]["legal_basis"],
                "agency_id": row["agency"], "decided_by": row["decided_by"]}

    def consent_based(self, sid: str) -> bool:
        """Whether any version of ``sid`` has consent as its legal basis (NotFound for an unknown subscription)."""
        versions = self._rows(sid)
        if not versions:
            raise NotFound(f"no subscription {sid!r}")
        return any(v["request"].get("consent") for v in versions)

    def known(self, sid: str) -> bool:
        """Whether ``sid`` was ever requested (every subscription since owners decide was)."""
        with self._engine.connect() as conn:
            return conn.execute(sa.select(_versions.c.version).where(_versions.c.subscription_id == sid)
                                .limit(1)).first() is not None

    def state_counts(self) -> dict[tuple[str, str], int]:
        """(dataset, state) -> subscription versions in that state, every declared dataset and state (for the metric)."""
        counts = {(dataset, str(state)): 0 for dataset in declared() for state in State}
        with self._engine.connect() as conn:
            for dataset, state, n in conn.execute(sa.select(_versions.c.dataset, _versions.c.state, sa.func.count())
                                                  .group_by(_versions.c.dataset, _versions.c.state)):
                counts[(dataset, str(state))] = int(n)
        return counts

    def overdue_counts(self) -> dict[str, int]:
        """Dataset -> requests still waiting for their owner past the deadline (for the metric)."""
        now = self._now()
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_versions.c.dataset, _versions.c.due_at).where(
                _versions.c.state == State.REQUESTED)).all()
        counts = dict.fromkeys(declared(), 0)
        for dataset, due_at in rows:
            counts[dataset] = counts.get(dataset, 0) + overdue(_at(due_at), now)
        return counts

    # inside

    def _visible(self, who: Identity, row: Mapping[str, Any]) -> bool:
        return bool(who.roles & {Role.ADMIN, Role.OPS}) or who.can(Role.OWNER, row["dataset"]) or (
            Role.CONSUMER in who.roles and row["agency"] == who.agency)

    def _summary(self, versions: list[dict[str, Any]]) -> dict[str, Any]:
        now = self._now()
        latest = versions[-1]
        active = next((v["version"] for v in versions if v["state"] == State.ACTIVE), None)
        waiting = [v for v in versions if v["state"] == State.REQUESTED]
        for v in versions:
            v.pop("request", None)
            v["overdue"] = v["state"] == State.REQUESTED and overdue(_at(v["due_at_ms"]), now)
            v["working_days_left"] = (round(self._calendar.working_days_left(now, _at(v["due_at_ms"])), 2)
                                      if v["state"] == State.REQUESTED else None)
        # What the agency is getting (a delivering or suspended version) before what it asked last.
        state = next((v["state"] for v in reversed(versions) if v["state"] in (State.ACTIVE, State.SUSPENDED)),
                     latest["state"])
        slug = latest["subscription_id"].split(":")[0]
        # A verify subscription receives on its replies topic what it asks on its requests topic.
        asks = {"requests_topic": topics.verify_requests(slug)} if latest["mode"] == VERIFY else {}
        return {"subscription_id": latest["subscription_id"], "agency": latest["agency"],
                "agency_slug": slug, "dataset": latest["dataset"],
                "name": latest["name"], "mode": latest["mode"], "state": state, "latest_version": latest["version"],
                "latest_state": latest["state"], "active_version": active,
                "topic": topics.verify_replies(slug) if asks else self._control.share_topic(slug, latest["dataset"],
                                                                                            latest["name"]),
                **asks, "overdue": any(v["overdue"] for v in waiting), "versions": versions}

    def _rows(self, sid: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [_row_json(r) for r in conn.execute(sa.select(_versions).where(
                _versions.c.subscription_id == sid).order_by(_versions.c.version))]

    def _decidable(self, who: Identity, sid: str, version: int) -> dict[str, Any]:
        row = next((v for v in self._rows(sid) if v["version"] == version), None)
        if row is None:
            raise NotFound(f"no subscription {sid!r} version {version}")
        who.require(Role.OWNER, row["dataset"])
        if row["state"] != State.REQUESTED:
            raise NotOpen(f"subscription {sid} version {version} is {row['state']}, not waiting for a decision")
        return row

    def _current(self, sid: str, states: Iterable[State], what: str) -> dict[str, Any]:
        rows = self._rows(sid)
        if not rows:
            raise NotFound(f"no subscription {sid!r}")
        found = [v for v in rows if v["state"] in tuple(states)]
        if not found:
            raise NotOpen(f"subscription {sid} has no {what} version")
        return found[-1]

    def _end(self, who: Identity, sid: str, state: State, reason: str, *, from_states: tuple[State, ...],
             consumer_may: bool = False) -> dict[str, Any]:
        rows = self._rows(sid)
        if not rows or not self._visible(who, rows[0]):
            raise NotFound(f"no subscription {sid!r}")
        own = consumer_may and Role.CONSUMER in who.roles and rows[0]["agency"] == who.agency
        if not own and not who.can(Role.OWNER, rows[0]["dataset"]):
            raise Forbidden(f"{who.agency} (key {who.key_id}) is not owner of dataset {rows[0]['dataset']}")
        ending = [v for v in rows if v["state"] in from_states]
        if not ending:
            raise NotOpen(f"subscription {sid} has no version that is {' or '.join(from_states)}")
        for row in ending:
            self._transition(row, state, by=who.who, reason=reason)
        return self.show(who, sid)

    def _transition(self, row: Mapping[str, Any], state: State, *, by: str, reason: str) -> None:
        """End one version (suspended, revoked, expired); a delivering one is withdrawn from the data plane."""
        sid = row["subscription_id"]
        with self._engine.begin() as conn:
            if not self._moved(conn, sid, row["version"], row["state"], state=state, ended_by=by,
                               ended_at=_ms(self._now()), end_reason=reason):
                return  # ended meanwhile (the ticker and a request, or two control planes): told once
            delivering = row["state"] in _DELIVERING
            if delivering:
                self._control.stage_withdrawal(conn, sid)
        if delivering:
            self._control.publish_staged(sid)
        self._told(by, _ENDING[state], sid, row["version"], reason=reason)

    def _event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The Subscription event of a version, with its agency's current pseudonym secret."""
        return self._control.prepare_event(
            row["subscription_id"], agency=row["agency"], dataset=row["dataset"], name=row["name"],
            version=row["version"], valid_from=row["valid_from_ms"], mode=row["mode"],
            consent=bool(row["request"].get("consent", False)), **{k: row["request"][k] for k in (
                "fields", "row_filter", "verdicts", "valid_until", "backfill")})

    def _activate(self, row: Mapping[str, Any]) -> None:
        sid = row["subscription_id"]
        event = self._event(row)
        with self._engine.begin() as conn:
            # Claimed first: the ticker and an approval's own tick may both see this version approved, and a
            # second activation would publish it again and run its back-fill twice.
            if not self._moved(conn, sid, row["version"], State.APPROVED, state=State.ACTIVE):
                return
            conn.execute(sa.update(_versions).where(_versions.c.subscription_id == sid,
                                                    _versions.c.version != row["version"],
                                                    _versions.c.state.in_((State.ACTIVE, State.SUSPENDED)))
                         .values(state=State.SUPERSEDED, ended_at=_ms(self._now()), ended_by="gsp",
                                 end_reason=f"version {row['version']} took over"))
            self._control.stage_event(conn, event)
        self._control.publish_staged(sid)
        self._told("gsp", "activate", sid, row["version"], topic=event["topic"])
        self.on_activate(event)

    def _told(self, actor: str, action: str, sid: str, version: int, **details: str) -> None:
        self.audit(actor, f"subscription.{action}", f"subscription/{sid}", {"version": str(version), **details})

    @staticmethod
    def _claim(conn: sa.Connection, sid: str, version: int, **values: Any) -> None:
        """Decide a version still waiting for its decision; NotOpen when another decision got there first."""
        decided = conn.execute(sa.update(_versions).where(
            _versions.c.subscription_id == sid, _versions.c.version == version,
            _versions.c.state == State.REQUESTED).values(**values))
        if decided.rowcount != 1:
            raise NotOpen(f"subscription {sid} version {version} was decided meanwhile")

    @staticmethod
    def _moved(conn: sa.Connection, sid: str, version: int, was: str, **values: Any) -> bool:
        """Change a version that is still in state ``was``; False when another change got there first."""
        return conn.execute(sa.update(_versions).where(
            _versions.c.subscription_id == sid, _versions.c.version == version,
            _versions.c.state == was).values(**values)).rowcount == 1

    @staticmethod
    def _set(conn: sa.Connection, sid: str, version: int, **values: Any) -> None:
        conn.execute(sa.update(_versions).where(_versions.c.subscription_id == sid, _versions.c.version == version)
                     .values(**values))


def _row_json(row: Any) -> dict[str, Any]:
    request = json.loads(row.request)
    return {
        "subscription_id": row.subscription_id, "version": row.version, "agency": row.agency,
        "dataset": row.dataset, "name": row.name, "state": row.state, "request": request,
        **{k: request[k] for k in ("fields", "row_filter", "verdicts", "purpose", "legal_basis", "backfill")},
        "mode": request.get("mode", STREAM),  # a request stored before verification existed streams
        "valid_from": _iso(row.valid_from if row.valid_from is not None else request["valid_from"]),
        "valid_until": _iso(request["valid_until"]), "valid_from_ms": row.valid_from,
        "requested_by": row.requested_by, "requested_at": _iso(row.requested_at), "due_at": _iso(row.due_at),
        "due_at_ms": row.due_at, "decided_by": row.decided_by, "decided_at": _iso(row.decided_at),
        "reason": row.reason, "ended_by": row.ended_by, "ended_at": _iso(row.ended_at), "end_reason": row.end_reason,
    }


class OverdueRequests(Collector):
    """gsp_subscription_requests_overdue{dataset}: requests waiting for their owner past the deadline, read at scrape."""

    def __init__(self, subscriptions: Subscriptions) -> None:
        self._subscriptions = subscriptions

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("gsp_subscription_requests_overdue",
                                   "Subscription requests still waiting for the data owner's answer past their deadline",
                                   labels=["dataset"])
        for dataset, n in sorted(self._subscriptions.overdue_counts().items()):
            family.add_metric([dataset], n)
        yield family
