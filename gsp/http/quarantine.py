"""The stewards' quarantine over HTTP, mounted by the control-plane API.

    GET  /api/quarantine?dataset=&rule=&date=YYYY-MM-DD&status=open|released|discarded|all&limit=
    GET  /api/quarantine/counts                      open items: {dataset: {rule: n}}
    GET  /api/quarantine/{event_id}                  one item with its original value decoded
    POST /api/quarantine/{event_id}/release          {"fixes": {"residence.ward_code": "00004"}}
    POST /api/quarantine/{event_id}/discard          {"reason": "duplicate of ..."}

Stewards only, of the item's dataset; an action is attributed to the caller's credential.
Errors as in :mod:`gsp.http.desk`; 422 also for an unknown field, a missing
reason or a fix that still does not fit the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gsp.http.desk import LIST_QUERY, Decision, checked, counting, decide, listing, one
from gsp.http.routes import Body, Call, Query, Route, in_thread

if TYPE_CHECKING:  # the shell needs only the desk's interface; the desk brings the data plane's modules
    from gsp.desks.quarantine import QuarantineDesk

__all__ = ["Release", "quarantine_routes"]


class Release(Body):
    fixes: dict[str, str | None] = Field(default_factory=dict,
                                         description="field path -> its corrected value as text, or null to clear it")


def quarantine_routes(desk: QuarantineDesk) -> list[Route]:
    async def release(call: Call) -> Any:
        await checked(call, desk.show, "event_id")
        body: Release = call.body
        return await in_thread(desk.release, call.path["event_id"], fixes=body.fixes, by=call.identity.who)

    tag = "quarantine"
    # /counts is registered before /{event_id}, which would otherwise match "counts".
    return [
        Route("GET", "/api/quarantine", listing(desk.list, "dataset", "rule", "date"), summary="Quarantined records",
              tag=tag, responds="the items, oldest first",
              query=(Query("dataset", "only this dataset"), Query("rule", "only this rule"),
                     Query("date", "only items received this day (YYYY-MM-DD, Vietnam time)"), *LIST_QUERY)),
        Route("GET", "/api/quarantine/counts", counting(desk.counts), summary="Open items by dataset and rule", tag=tag,
              responds="{dataset: {rule: n}}"),
        Route("GET", "/api/quarantine/{event_id}", one(desk.show, "event_id"), summary="One item, its original value decoded", tag=tag,
              responds="the item"),
        Route("POST", "/api/quarantine/{event_id}/release", release, summary="Fix and release to the raw topic",
              tag=tag, body=Release, responds="the released item"),
        Route("POST", "/api/quarantine/{event_id}/discard", decide(desk.show, desk.discard, "event_id"),
              summary="Discard, with a reason", tag=tag, body=Decision, responds="the discarded item"),
    ]
