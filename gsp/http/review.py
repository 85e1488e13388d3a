"""The stewards' match review over HTTP, mounted by the control-plane API.

    GET  /api/review?dataset=&status=open|accepted|rejected|all&limit=
    GET  /api/review/counts                 open items: {dataset: n}
    GET  /api/review/decisions.csv          every decision, with a column per comparison level
    GET  /api/review/{item_id}              one item: the proposed personal id, probability and levels, the record decoded
    POST /api/review/{item_id}/accept       {"by": "steward", "reason": "optional"}
    POST /api/review/{item_id}/reject       {"by": "steward", "reason": "required"}

Errors are ``{"error": "..."}`` with the statuses of :mod:`gsp.desk_api`; 409
a second decision on an item. Database and Kafka calls run in a worker thread.
"""

from __future__ import annotations

import io

from aiohttp import web

from gsp.http.respond import call, listed, with_reason
from gsp.desks.review import ReviewDesk

__all__ = ["review_routes"]


def review_routes(desk: ReviewDesk) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/api/review")
    async def list_items(request: web.Request) -> web.Response:
        return await listed(request, desk.list, "dataset")

    # Registered before /{item_id}, which would otherwise match them.
    @routes.get("/api/review/counts")
    async def counts(request: web.Request) -> web.Response:
        return await call(desk.counts)

    @routes.get("/api/review/decisions.csv")
    async def export(request: web.Request) -> web.Response:
        def csv_text() -> str:
            out = io.StringIO()
            desk.export(out)
            return out.getvalue()

        return await call(csv_text, respond=lambda text: web.Response(
            text=text, content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="review-decisions.csv"'}))

    @routes.get("/api/review/{item_id}")
    async def show(request: web.Request) -> web.Response:
        return await call(desk.show, request.match_info["item_id"])

    @routes.post("/api/review/{item_id}/accept")
    async def accept(request: web.Request) -> web.Response:
        return await with_reason(request, desk.accept, request.match_info["item_id"])

    @routes.post("/api/review/{item_id}/reject")
    async def reject(request: web.Request) -> web.Response:
        return await with_reason(request, desk.reject, request.match_info["item_id"])

    return routes
