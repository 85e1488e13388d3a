"""What the stewards' desks share over HTTP: errors as JSON, a desk call in a worker thread, request bodies.

Errors are ``{"error": "..."}``: 400 a malformed request, 404 no such item,
409 the item is no longer open, 422 a request that cannot be honoured, 503 the
broker did not acknowledge (the item stays open), 500 anything else (logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gsp.desks.base import NotOpen, Unavailable
from gsp.errors import NotFound, UserError

__all__ = ["body", "call", "error", "listed", "with_reason"]

log = logging.getLogger("gsp.api")


def error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def call(action: Callable[..., Any], *args: Any, respond: Callable[[Any], web.Response] = web.json_response,
               **kwargs: Any) -> web.Response:
    """``action(*args, **kwargs)`` in a worker thread; its result through ``respond``, its errors by status."""
    try:
        result = await asyncio.to_thread(action, *args, **kwargs)
    except NotFound as exc:
        return error(str(exc), 404)
    except NotOpen as exc:
        return error(str(exc), 409)
    except UserError as exc:
        return error(str(exc), 422)
    except Unavailable as exc:
        return error(str(exc), 503)
    except Exception:
        log.exception("steward request failed", extra={"stage": "desk", "action": getattr(action, "__qualname__", "")})
        return error("internal error; see the control plane's log", 500)
    return respond(result)


async def body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        content = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error("request body is not JSON", 400)
    return content if isinstance(content, dict) else error("request body must be a JSON object", 400)


async def listed(request: web.Request, action: Callable[..., Any], *filters: str) -> web.Response:
    """GET of a list: ``action(status=, limit=, **filters)`` with ``?status=`` (default open; all: any) and
    ``?limit=``, and each named filter from the query string (absent or empty: ``None``)."""
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        return error("limit must be a whole number", 400)
    status = query.get("status") or "open"
    wanted: dict[str, Any] = {name: query.get(name) or None for name in filters}
    return await call(action, status=None if status == "all" else status, limit=limit, **wanted)


async def with_reason(request: web.Request, action: Callable[..., Any], item_id: str) -> web.Response:
    """POST of an action that takes who acts and a reason: ``{"by": "...", "reason": "..."}``."""
    content = await body(request)
    if isinstance(content, web.Response):
        return content
    return await call(action, item_id, reason=str(content.get("reason") or ""),
                      by=str(content.get("by") or ""))
