"""Verification without data over HTTP, mounted by the control-plane API.

    POST /api/verifications    a consumer agency approved for verification:
                               {"subscription"?: "<its verify subscription's id>", "requests": [
                                   {"request_id": "r1", "personal_id": "…", "full_name": "…", "birth_date": "…",
                                    "phone"?: "…", ...}, ...]}      (up to 10,000)
                               -> {"subscription": "<id>", "answers": [
                                   {"request_id": "r1", "verdict": "MATCHED", "mask": {"personal_id": true, ...}}
                                   | {"request_id": "r2", "error": "phone: not a field of this approval; ..."}, ...]}

Answered synchronously, one answer per request in order; nothing but a verdict and a per-field
agree/disagree mask (`streams.verify`). The agency is the caller's credential's, never one the body
names; it must hold an active verify subscription (403 otherwise; ``subscription`` may be left out
when it holds exactly one). A request that cannot be verified gets an error answer of its own and
the rest of the batch is answered. The workers hold the registry, so the batch goes to them over
Kafka (`gsp.governance.verification`): 503 when the control plane cannot reach them now, 504 when
none answers within the gateway's timeout (30 s); 413 for more than 10,000 requests.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from gsp.errors import UserError
from gsp.governance.control import ControlPlane
from gsp.governance.identity import Forbidden, Identity
from gsp.governance.ledger import CONTROL, Ledger
from gsp.governance.ledger_writer import fact_entry
from gsp.governance.verification import VerificationGateway, VerificationUnavailable
from gsp.http.routes import Body, Call, Route, in_thread
from streams.ledger import verification_fact
from streams.share import Subscription
from streams.verify import MAX_BATCH, VERIFY, error_answer, invalid

__all__ = ["BatchTooLarge", "VerificationBatch", "verification_routes"]


class VerificationBatch(Body):
    """Identity details an agency holds, to be verified against the registry."""

    subscription: str | None = Field(default=None, description="the agency's verify subscription to ask under, such "
                                     "as bo-y-te-bhxh:population.citizen; may be left out when it holds exactly one")
    requests: list[Any] = Field(description=f"up to {MAX_BATCH:,} objects: request_id, personal_id, full_name, "
                                            "birth_date, and any other field the approval lists (all strings)")


class BatchTooLarge(UserError):
    http_status = 413


def verification_routes(control: ControlPlane, gateway: VerificationGateway | None,
                        ledger: Ledger | None = None) -> list[Route]:
    """``gateway``: how batches reach the workers; None (a control plane without a broker) answers 503. ``ledger``:
    where the requests answered here (invalid for the approval: they never reach the workers) are recorded."""

    async def verify(call: Call) -> dict[str, Any]:
        body: VerificationBatch = call.body
        if len(body.requests) > MAX_BATCH:
            raise BatchTooLarge(f"{len(body.requests):,} requests; at most {MAX_BATCH:,} per call")
        subscription = await in_thread(_verify_subscription, control, call.identity, body.subscription)
        if gateway is None:
            raise VerificationUnavailable("verification is not served by this control plane")
        checked = [(request, invalid(request, subscription["fields"])) for request in body.requests]
        valid = [request for request, problem in checked if problem is None]
        answered = iter(await gateway.verify(call.identity.agency_slug, subscription["subscription_id"], valid)
                        if valid else [])
        answers = [error_answer(request, problem) if problem else next(answered) for request, problem in checked]
        refused = [(request, answer) for (request, problem), answer in zip(checked, answers, strict=True) if problem]
        if ledger is not None and refused:  # the workers record what they answered; these were answered here
            await in_thread(_record, control, ledger, subscription, call.identity.who, refused)
        return {"subscription": subscription["subscription_id"], "answers": answers}

    return [Route("POST", "/api/verifications", verify, tag="verification",
                  summary="Verify identity details against the registry: a verdict and an agree/disagree mask each",
                  body=VerificationBatch,
                  responds="{subscription, answers: [{request_id, verdict, mask} or {request_id, error}]}, one "
                           "answer per request, in order")]


def _record(control: ControlPlane, ledger: Ledger, subscription: dict[str, Any], who: str,
            refused: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Requests refused before the rules (a field not approved, a value not a string) still say who asked about
    whom: one verification entry, as a worker would report it."""
    sub = Subscription.from_event(subscription)
    _, fact = verification_fact(sub, "http", [r if isinstance(r, dict) else {} for r, _ in refused],
                                [a for _, a in refused], at_ms=int(time.time() * 1000), actor=who)
    terms = control.subscriptions.terms(sub.subscription_id, sub.version)
    ledger.append(CONTROL, [fact_entry(ledger, fact, terms, source=None)])


def _verify_subscription(control: ControlPlane, who: Identity, named: str | None) -> dict[str, Any]:
    """The caller's agency's active verify subscription (the one named, else its only one); Forbidden without one."""
    now_ms = int(time.time() * 1000)
    held = [e for e in control.published_subscriptions()
            if e["agency"] == who.agency_slug and e.get("mode") == VERIFY
            and (e.get("valid_until") is None or now_ms < e["valid_until"])]
    if named is not None:
        found = next((e for e in held if e["subscription_id"] == named), None)
        if found is None:
            raise Forbidden(f"{who.agency} holds no active verify subscription {named!r}")
        return found
    if not held:
        raise Forbidden(f"{who.agency} holds no active verify subscription: request one of the registry with "
                        "mode verify (gsp subscription request --mode verify ...)")
    if len(held) > 1:
        raise UserError(f"{who.agency} holds {len(held)} verify subscriptions; name one in subscription: "
                        + ", ".join(e["subscription_id"] for e in held))
    return held[0]
