"""Subscription requests and decisions over HTTP, mounted by the control-plane API.

    GET  /api/subscriptions[?overdue=true&dataset=]        what the caller may see (consumer: its own;
                                                          owner: its datasets'; admin, ops: all)
    POST /api/subscriptions                               a consumer requests: {"dataset", "fields", "purpose",
                                                          "legal_basis", "row_filter"?, "verdicts"?, "name"?,
                                                          "valid_from"?, "valid_until"?, "backfill"?, "mode"?}
                                                          (mode verify: of the registry, to verify identity
                                                          details with POST /api/verifications, see verify.py)
    GET  /api/subscriptions/{id}                          one subscription with every version
    POST /api/subscriptions/{id}/versions                 a change: a new version, the old one keeps running
    POST /api/subscriptions/{id}/versions/{v}/approve     the owner: {"reason"?}
    POST /api/subscriptions/{id}/versions/{v}/refuse      the owner: {"reason"} (required)
    POST /api/subscriptions/{id}/suspend | /resume        the owner: {"reason"} to suspend
    POST /api/subscriptions/{id}/revoke                   the owner, or the consumer ending its own: {"reason"}

Every action is attributed to the caller's credential. 403 for a role that may not act on
this dataset, 409 for a version not waiting for that decision, 422 a request that cannot be
honoured, 503 when the broker did not acknowledge (the change is stored and published on the
next start).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from gsp.errors import UserError
from gsp.governance.identity import Forbidden
from gsp.governance.subscriptions import DEFAULT_NAME, Subscriptions
from gsp.http.routes import Body, Call, Query, Route, in_thread
from schemas.envelope import Verdict
from streams.verify import STREAM

__all__ = ["Change", "Reason", "SubscriptionRequest", "subscription_routes"]


class Change(Body):
    """What an agency asks to receive of a dataset, why, and for how long."""

    fields: list[str] = Field(min_length=1, description="the shareable fields the agency receives")
    purpose: str = Field(description="what the data is for, in plain words")
    legal_basis: str = Field(description="the law or decree article relied on, or consent")
    row_filter: dict[str, list[str]] = Field(default_factory=dict,
                                             description="field -> the values a record must hold to be shared")
    verdicts: list[str] = Field(default_factory=lambda: [Verdict.MATCHED.value],
                                description="identity verdicts a record must carry to be shared")
    valid_from: str | None = Field(default=None, description="ISO 8601 with a zone; default: when approved")
    valid_until: str | None = Field(default=None, description="ISO 8601 with a zone; default: until revoked")
    backfill: bool = Field(default=False, description="also records ingested before valid_from")
    mode: str | None = Field(default=None, description=f"{STREAM}: receive the approved fields of the dataset's records; "
                                                       "verify (the registry only): receive nothing, verify identity "
                                                       "details the agency holds, field by field; default: stream for "
                                                       "a new subscription, its current mode for a change")
    consent: bool = Field(default=False, description="the legal basis is each person's consent: a person's records "
                                                     "are shared only while their consent is on record")


class SubscriptionRequest(Change):
    dataset: str = Field(description="a dataset of the catalog, such as telecom.subscriber")
    name: str = Field(default=DEFAULT_NAME, description="a slug telling this agency's subscriptions to one "
                                                         "dataset apart, one per purpose")


class Reason(Body):
    reason: str | None = Field(default=None, description="why; required to refuse, suspend or revoke")


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{name} {text!r} is not an ISO 8601 time such as 2027-01-01T00:00:00+07:00") from None


def _change(body: Change) -> dict[str, Any]:
    values = body.model_dump(exclude={"dataset", "name"})
    values["valid_from"] = _moment(body.valid_from, "valid_from")
    values["valid_until"] = _moment(body.valid_until, "valid_until")
    return values


def subscription_routes(subscriptions: Subscriptions) -> list[Route]:
    async def list_(call: Call) -> list[dict[str, Any]]:
        return await in_thread(subscriptions.visible, call.identity, overdue_only=call.query["overdue"],
                               dataset=call.query["dataset"] or None)

    async def request(call: Call) -> dict[str, Any]:
        body: SubscriptionRequest = call.body
        return await in_thread(subscriptions.request, call.identity, dataset=body.dataset, name=body.name,
                               **_change(body))

    async def show(call: Call) -> dict[str, Any]:
        return await in_thread(subscriptions.show, call.identity, call.path["subscription_id"])

    async def change(call: Call) -> dict[str, Any]:
        current = await in_thread(subscriptions.show, call.identity, call.path["subscription_id"])
        if current["agency"] != call.identity.agency:
            raise Forbidden(f"only {current['agency']} may change its subscription")
        return await in_thread(subscriptions.request, call.identity, dataset=current["dataset"],
                               name=current["name"], **_change(call.body))

    def decision(action: str) -> Any:
        async def decide(call: Call) -> dict[str, Any]:
            try:
                version = int(call.path["version"])
            except ValueError:
                raise UserError(f"version {call.path['version']!r} is not a number") from None
            return await in_thread(getattr(subscriptions, action), call.identity, call.path["subscription_id"],
                                   version, reason=call.body.reason)
        return decide

    def ending(action: str) -> Any:
        async def end(call: Call) -> dict[str, Any]:
            if action == "resume":
                return await in_thread(subscriptions.resume, call.identity, call.path["subscription_id"])
            return await in_thread(getattr(subscriptions, action), call.identity, call.path["subscription_id"],
                                   reason=call.body.reason)
        return end

    async def rekey(call: Call) -> dict[str, Any]:
        agency = await in_thread(subscriptions.agency_by_slug, call.path["slug"])
        return await in_thread(subscriptions.rekey, call.identity, agency["agency"])

    tag = "subscriptions"
    one = "/api/subscriptions/{subscription_id}"
    shows = "the subscription with every version and its state"
    return [
        Route("GET", "/api/subscriptions", list_, summary="Subscriptions the caller may see", tag=tag,
              responds="per subscription: id, agency, dataset, state, active version, topic, overdue, versions",
              query=(Query("overdue", "only those with a request past its answer deadline", kind="boolean",
                           default=False), Query("dataset", "only this dataset"))),
        Route("POST", "/api/subscriptions", request, summary="Request a subscription from the catalog", tag=tag,
              body=SubscriptionRequest, status=201, responds=shows),
        Route("GET", one, show, summary="One subscription", tag=tag, responds=shows),
        Route("POST", one + "/versions", change, summary="Request a change (a new version)", tag=tag, body=Change,
              status=201, responds=shows),
        Route("POST", one + "/versions/{version}/approve", decision("approve"), summary="Approve a version",
              tag=tag, body=Reason, responds=shows),
        Route("POST", one + "/versions/{version}/refuse", decision("refuse"),
              summary="Refuse a version, with a reason", tag=tag, body=Reason, responds=shows),
        Route("POST", one + "/suspend", ending("suspend"), summary="Suspend delivery, with a reason", tag=tag,
              body=Reason, responds=shows),
        Route("POST", one + "/resume", ending("resume"), summary="Resume a suspended subscription", tag=tag,
              body=Reason, responds=shows),
        Route("POST", one + "/revoke", ending("revoke"), summary="Revoke, with a reason", tag=tag, body=Reason,
              responds=shows),
        Route("POST", "/api/agencies/{slug}/rotate-key", rekey, tag="identity",
              summary="Rotate an agency's pseudonym secret and republish its active subscriptions with it",
              responds="{agency, key_version, republished: [subscription ids]}"),
    ]
