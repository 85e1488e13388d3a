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

from gsp.governance.identity import ALL, Identity, Role
from gsp.http.routes import Body, Call, Query, in_thread

__all__ = ["LIST_QUERY", "Decision", "checked", "counting", "decide", "listing", "one", "stewarded"]

LIST_QUERY = (
    Query("status", "open (the default), a closed status, or all"),
    Query("limit", "at most this many items", kind="integer", default=100),
)


class Decision(Body):
    """Why (required to discard or reject; optional to accept). Who acts is the caller's credential."""

    reason: str | None = Field(default=None, description="why; required to discard or to reject")


def stewarded(identity: Identity, dataset: str | None) -> Callable[[str], bool]:
    """Which datasets a steward's credential covers; Forbidden when it asks for one it does not."""
    if dataset is not None:
        identity.require(Role.STEWARD, dataset)
    covered = identity.datasets(Role.STEWARD)
    return lambda name: ALL in covered or name in covered


def listing(action: Callable[..., Any], *filters: str) -> Callable[[Call], Awaitable[Any]]:
    """A list handler: ``action(status=, limit=, **filters)``, a filter absent or empty being ``None``; only the
    items of datasets the steward covers."""
    async def list_items(call: Call) -> Any:
        status = call.query["status"] or "open"
        wanted = {name: call.query[name] or None for name in filters}
        covers = stewarded(call.identity, wanted.get("dataset"))
        items = await in_thread(action, status=None if status == "all" else status, limit=call.query["limit"],
                                **wanted)
        return [item for item in items if covers(item["dataset"])]
    return list_items


def counting(action: Callable[[], dict[str, Any]]) -> Callable[[Call], Awaitable[Any]]:
    """A counts handler: {dataset: ...} of the datasets the caller stewards (ops: all, they hold no records)."""
    async def counts(call: Call) -> Any:
        found = await in_thread(action)
        if Role.OPS in call.identity.roles:
            return found
        covers = stewarded(call.identity, None)
        return {dataset: n for dataset, n in found.items() if covers(dataset)}
    return counts


def one(show: Callable[[str], dict[str, Any]], item: str) -> Callable[[Call], Awaitable[Any]]:
    """A show handler: the item, if the caller stewards its dataset."""
    async def show_item(call: Call) -> Any:
        found = await in_thread(show, call.path[item])
        call.identity.require(Role.STEWARD, found["dataset"])
        return found
    return show_item


async def checked(call: Call, show: Callable[[str], dict[str, Any]], item: str) -> None:
    """Forbidden unless the caller stewards the dataset of the item it acts on."""
    call.identity.require(Role.STEWARD, (await in_thread(show, call.path[item]))["dataset"])


def decide(show: Callable[[str], dict[str, Any]], action: Callable[..., Any],
           item: str) -> Callable[[Call], Awaitable[Any]]:
    """A decision handler: ``action(item_id, by=<the caller>, reason=)`` with the item from the path parameter
    ``item``, once the caller is known to steward its dataset."""
    async def decision(call: Call) -> Any:
        await checked(call, show, item)
        body: Decision = call.body
        return await in_thread(action, call.path[item], by=call.identity.who, reason=body.reason or "")
    return decision
