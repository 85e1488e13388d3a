"""The stewards' quarantine over HTTP, mounted by the control-plane API.

    GET  /api/quarantine?dataset=&rule=&status=open|released|discarded|all&limit=
    GET  /api/quarantine/counts                      open items: {dataset: {rule: n}}
    GET  /api/quarantine/{event_id}                  one item with its original value decoded
    POST /api/quarantine/{event_id}/release          {"fixes": {"residence.ward_code": "00004"}, "by": "steward"}
    POST /api/quarantine/{event_id}/discard          {"reason": "duplicate of ...", "by": "steward"}

Errors are ``{"error": "..."}``: 400 a malformed request, 404 no such item,
409 the item is no longer open, 422 a request that cannot be honoured (unknown
field, missing reason, a fix that still does not fit the contract), 503 the
broker did not acknowledge (the item stays open). Database and Kafka calls run
in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gsp.errors import NotFound, UserError
from gsp.quarantine import NotOpen, QuarantineDesk, Unavailable

__all__ = ["quarantine_routes"]

log = logging.getLogger("gsp.api")


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _call(action: Callable[..., Any], *args: Any, **kwargs: Any) -> web.Response:
    try:
        result = await asyncio.to_thread(action, *args, **kwargs)
    except NotFound as exc:
        return _error(str(exc), 404)
    except NotOpen as exc:
        return _error(str(exc), 409)
    except UserError as exc:
        return _error(str(exc), 422)
    except Unavailable as exc:
        return _error(str(exc), 503)
    except Exception:
        log.exception("quarantine request failed", extra={"stage": "quarantine"})
        return _error("internal error; see the control plane's log", 500)
    return web.json_response(result)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error("request body is not JSON", 400)
    return body if isinstance(body, dict) else _error("request body must be a JSON object", 400)


def quarantine_routes(desk: QuarantineDesk) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/api/quarantine")
    async def list_items(request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _error("limit must be a whole number", 400)
        status = query.get("status") or "open"
        return await _call(desk.list, dataset=query.get("dataset") or None, rule=query.get("rule") or None,
                           status=None if status == "all" else status, limit=limit)

    # Registered before /{event_id}, which would otherwise match "counts".
    @routes.get("/api/quarantine/counts")
    async def counts(request: web.Request) -> web.Response:
        return await _call(desk.counts)

    @routes.get("/api/quarantine/{event_id}")
    async def show(request: web.Request) -> web.Response:
        return await _call(desk.show, request.match_info["event_id"])

    @routes.post("/api/quarantine/{event_id}/release")
    async def release(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        fixes = body.get("fixes") or {}
        if not isinstance(fixes, dict) or not all(isinstance(v, str) or v is None for v in fixes.values()):
            return _error('"fixes" must map field paths to strings or null', 400)
        return await _call(desk.release, request.match_info["event_id"], fixes=fixes, by=str(body.get("by") or ""))

    @routes.post("/api/quarantine/{event_id}/discard")
    async def discard(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        return await _call(desk.discard, request.match_info["event_id"], reason=str(body.get("reason") or ""),
                           by=str(body.get("by") or ""))

    return routes
