"""The stewards' match review over HTTP, mounted by the control-plane API.

    GET  /api/review?dataset=&status=open|accepted|rejected|all&limit=
    GET  /api/review/counts                 open items: {dataset: n}
    GET  /api/review/decisions.csv          every decision, with a column per comparison level
    GET  /api/review/{item_id}              one item: the proposed personal id, probability and levels, the record decoded
    POST /api/review/{item_id}/accept       {"by": "steward", "reason": "optional"}
    POST /api/review/{item_id}/reject       {"by": "steward", "reason": "required"}

Errors as in :mod:`gsp.http.desk`; 409 a second decision on an item.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gsp.http.desk import LIST_QUERY, Decision, decide, listing
from gsp.http.routes import Call, Query, Route, in_thread

if TYPE_CHECKING:  # the shell needs only the desk's interface; the desk brings the data plane's modules
    from gsp.desks.review import ReviewDesk

__all__ = ["review_routes"]


def review_routes(desk: ReviewDesk) -> list[Route]:
    async def counts(call: Call) -> Any:
        return await in_thread(desk.counts)

    async def export(call: Call) -> web.Response:
        def csv_text() -> str:
            out = io.StringIO()
            desk.export(out)
            return out.getvalue()

        return web.Response(text=await in_thread(csv_text), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="review-decisions.csv"'})

    async def show(call: Call) -> Any:
        return await in_thread(desk.show, call.path["item_id"])

    tag = "review"
    # /counts and /decisions.csv are registered before /{item_id}, which would otherwise match them.
    return [
        Route("GET", "/api/review", listing(desk.list, "dataset"), summary="Proposed matches to review", tag=tag,
              responds="the items", query=(Query("dataset", "only this dataset"), *LIST_QUERY)),
        Route("GET", "/api/review/counts", counts, summary="Open items by dataset", tag=tag,
              responds="{dataset: n}"),
        Route("GET", "/api/review/decisions.csv", export, summary="Every decision as CSV", tag=tag,
              responds="CSV with a column per comparison level"),
        Route("GET", "/api/review/{item_id}", show, summary="One item, its record decoded", tag=tag,
              responds="the item"),
        Route("POST", "/api/review/{item_id}/accept", decide(desk.accept, "item_id"), summary="Accept the match",
              tag=tag, body=Decision, responds="the accepted item"),
        Route("POST", "/api/review/{item_id}/reject", decide(desk.reject, "item_id"),
              summary="Reject the match, with a reason", tag=tag, body=Decision, responds="the rejected item"),
    ]
