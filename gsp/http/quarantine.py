"""The stewards' quarantine over HTTP, mounted by the control-plane API.

    GET  /api/quarantine?dataset=&rule=&status=open|released|discarded|all&limit=
    GET  /api/quarantine/counts                      open items: {dataset: {rule: n}}
    GET  /api/quarantine/{event_id}                  one item with its original value decoded
    POST /api/quarantine/{event_id}/release          {"fixes": {"residence.ward_code": "00004"}, "by": "steward"}
    POST /api/quarantine/{event_id}/discard          {"reason": "duplicate of ...", "by": "steward"}

Errors are ``{"error": "..."}`` with the statuses of :mod:`gsp.desk_api`; 422
also for an unknown field, a missing reason or a fix that still does not fit
the contract. Database and Kafka calls run in a worker thread.
"""

from __future__ import annotations

from aiohttp import web

from gsp.http.respond import body, call, error, listed, with_reason
from gsp.desks.quarantine import QuarantineDesk

__all__ = ["quarantine_routes"]


def quarantine_routes(desk: QuarantineDesk) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/api/quarantine")
    async def list_items(request: web.Request) -> web.Response:
        return await listed(request, desk.list, "dataset", "rule")

    # Registered before /{event_id}, which would otherwise match "counts".
    @routes.get("/api/quarantine/counts")
    async def counts(request: web.Request) -> web.Response:
        return await call(desk.counts)

    @routes.get("/api/quarantine/{event_id}")
    async def show(request: web.Request) -> web.Response:
        return await call(desk.show, request.match_info["event_id"])

    @routes.post("/api/quarantine/{event_id}/release")
    async def release(request: web.Request) -> web.Response:
        content = await body(request)
        if isinstance(content, web.Response):
            return content
        fixes = content.get("fixes") or {}
        if not isinstance(fixes, dict) or not all(isinstance(v, str) or v is None for v in fixes.values()):
            return error('"fixes" must map field paths to strings or null', 400)
        return await call(desk.release, request.match_info["event_id"], fixes=fixes, by=str(content.get("by") or ""))

    @routes.post("/api/quarantine/{event_id}/discard")
    async def discard(request: web.Request) -> web.Response:
        return await with_reason(request, desk.discard, request.match_info["event_id"])

    return routes
