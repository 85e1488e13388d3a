"""Agencies' subscriptions over HTTP, mounted by the control-plane API.

    POST   /api/subscriptions                     {"agency": "so-y-te", "dataset": "telecom.subscriber",
                                                   "fields": ["msisdn"], "row_filter": {"carrier": ["Viettel"]}}
    GET    /api/subscriptions
    DELETE /api/subscriptions/{subscription_id}

A subscription is stored before it is published; 503 when the broker did not
acknowledge (the subscription stays stored and is published on the next start).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gsp.governance.control import ControlPlane
from gsp.http.routes import Body, Call, Route, in_thread
from schemas.envelope import Verdict

__all__ = ["SubscriptionRequest", "subscription_routes"]


class SubscriptionRequest(Body):
    """What an agency may receive of a dataset; the control plane checks the names against the catalog."""

    agency: str = Field(description="the agency's slug, such as so-y-te")
    dataset: str = Field(description="a dataset of the catalog, such as telecom.subscriber")
    fields: list[str] = Field(min_length=1, description="the shareable fields the agency receives")
    row_filter: dict[str, list[str]] = Field(default_factory=dict,
                                             description="field -> the values a record must hold to be shared")
    verdicts: list[str] = Field(default_factory=lambda: [Verdict.MATCHED.value],
                                description="identity verdicts a record must carry to be shared")


def subscription_routes(control: ControlPlane) -> list[Route]:
    async def create(call: Call) -> dict[str, Any]:
        request: SubscriptionRequest = call.body
        return await in_thread(control.create_subscription, **request.model_dump())

    async def list_(call: Call) -> list[dict[str, Any]]:
        return await in_thread(control.list_subscriptions)

    async def delete(call: Call) -> dict[str, str]:
        await in_thread(control.delete_subscription, call.path["subscription_id"])
        return {"deleted": call.path["subscription_id"]}

    return [
        Route("POST", "/api/subscriptions", create, summary="Approve, store and publish a subscription",
              tag="subscriptions", body=SubscriptionRequest, status=201,
              responds="the published Subscription event, with its share topic and schema id"),
        Route("GET", "/api/subscriptions", list_, summary="Every current subscription", tag="subscriptions",
              responds="the Subscription events, by subscription id"),
        Route("DELETE", "/api/subscriptions/{subscription_id}", delete, summary="End a subscription",
              tag="subscriptions", responds='{"deleted": subscription_id}'),
    ]
