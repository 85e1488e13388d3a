"""Consent over HTTP, for the citizen-facing portal.

    POST /api/consents   {"personal_id", "subscription_id", "given": true|false, "reference"?}
                         -> the consent as recorded, once the broker acknowledged it: from then on a
                         withdrawn person's records no longer reach that subscription
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gsp.governance.consent import Consents
from gsp.http.routes import Body, Call, Route, in_thread

__all__ = ["consent_routes"]


class ConsentChange(Body):
    personal_id: str = Field(description="12-digit personal id of the person who consents")
    subscription_id: str = Field(description="a subscription whose legal basis is consent")
    given: bool = Field(description="true: consent given; false: withdrawn")
    reference: str | None = Field(default=None, description="the consent's own reference, such as a form number")


def consent_routes(consents: Consents) -> list[Route]:
    async def record(call: Call) -> dict[str, Any]:
        body: ConsentChange = call.body
        return await in_thread(consents.record, call.identity, personal_id=body.personal_id,
                               subscription_id=body.subscription_id, given=body.given, reference=body.reference)

    return [Route("POST", "/api/consents", record, summary="Record a person's consent to a subscription, or its "
                  "withdrawal", tag="audit", body=ConsentChange, responds="the consent as recorded")]
