"""What the stewards' desks share over HTTP: the list query, the decision bodies.

Errors are ``{"error": "..."}`` by :func:`gsp.http.errors.status_of`: 400 a
malformed request, 404 no such item, 409 the item is no longer open, 422 a
request that cannot be honoured, 503 the broker did not acknowledge (the item
stays open), 500 anything else (logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from gsp.http.routes import Body, Call, Query, in_thread

__all__ = ["LIST_QUERY", "Decision", "decide", "listing"]

LIST_QUERY = (
    Query("status", "open (the default), a closed status, or all"),
    Query("limit", "at most this many items", kind="integer", default=100),
)


class Decision(Body):
    """Who decides, and why (required to discard or reject; optional to accept)."""

    by: str = Field(description="who is acting, as recorded in the audit log")
    reason: str | None = Field(default=None, description="why; required to discard or to reject")


def listing(action: Callable[..., Any], *filters: str) -> Callable[[Call], Awaitable[Any]]:
    """A list handler: ``action(status=, limit=, **filters)``, a filter absent or empty being ``None``."""

    async def list_items(call: Call) -> Any:
        status = call.query["status"] or "open"
        return await in_thread(action, status=None if status == "all" else status, limit=call.query["limit"],
                               **{name: call.query[name] or None for name in filters})

    return list_items


def decide(action: Callable[..., Any], item: str) -> Callable[[Call], Awaitable[Any]]:
    """A decision handler: ``action(item_id, by=, reason=)`` with the item from the path parameter ``item``."""

    async def decision(call: Call) -> Any:
        body: Decision = call.body
        return await in_thread(action, call.path[item], by=body.by, reason=body.reason or "")

    return decision
