"""The stewards' match review over HTTP, mounted by the control-plane API.

    GET  /api/review?dataset=&status=open|accepted|rejected|all&limit=
    GET  /api/review/counts                 open items: {dataset: n}
    GET  /api/review/decisions.csv          every decision, with a column per comparison level
    GET  /api/review/{item_id}              one item: the proposed personal id, probability and levels, the record decoded,
                                            the registry entry and the fields compared (see gsp.desks.review_registry)
    POST /api/review/{item_id}/accept       {"reason": "optional"}
    POST /api/review/{item_id}/reject       {"reason": "required"}

Stewards only, of the item's dataset; a decision is attributed to the caller's credential.

Errors as in :mod:`gsp.http.desk`; 409 a second decision on an item.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from aiohttp import web

from gsp.governance.identity import ALL, Forbidden, Role
from gsp.http.desk import LIST_QUERY, Decision, counting, decide, listing, one, stewarded
from gsp.http.routes import Call, Query, Route, in_thread

if TYPE_CHECKING:  # the shell needs only the desk's interface; the desk brings the data plane's modules
    from gsp.desks.review import ReviewDesk

__all__ = ["review_routes"]


def review_routes(desk: ReviewDesk) -> list[Route]:
    async def export(call: Call) -> web.Response:
        stewarded(call.identity, None)
        if ALL not in call.identity.datasets(Role.STEWARD):
            raise Forbidden("the decisions export spans every dataset: it needs a steward of all datasets (*)")

        def csv_text() -> str:
            out = io.StringIO()
            desk.export(out)
            return out.getvalue()

        return web.Response(text=await in_thread(csv_text), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="review-decisions.csv"'})

    tag = "review"
    # /counts and /decisions.csv are registered before /{item_id}, which would otherwise match them.
    return [
        Route("GET", "/api/review", listing(desk.list, "dataset"), summary="Proposed matches to review", tag=tag,
              responds="the items", query=(Query("dataset", "only this dataset"), *LIST_QUERY)),
        Route("GET", "/api/review/counts", counting(desk.counts), summary="Open items by dataset", tag=tag,
              responds="{dataset: n}"),
        Route("GET", "/api/review/decisions.csv", export, summary="Every decision as CSV", tag=tag,
              responds="CSV with a column per comparison level"),
        Route("GET", "/api/review/{item_id}", one(desk.detail, "item_id"),
              summary="One item, its record decoded beside the registry entry", tag=tag,
              responds="the item; registry, registry_error and fields: the registry entry and each field compared"),
        Route("POST", "/api/review/{item_id}/accept", decide(desk.show, desk.accept, "item_id"), summary="Accept the match",
              tag=tag, body=Decision, responds="the accepted item"),
        Route("POST", "/api/review/{item_id}/reject", decide(desk.show, desk.reject, "item_id"),
              summary="Reject the match, with a reason", tag=tag, body=Decision, responds="the rejected item"),
    ]
