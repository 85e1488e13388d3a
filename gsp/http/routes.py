"""A route declared once: the aiohttp registration, body and query checks, error answers and OpenAPI entry derive from it.

    Route("POST", "/api/subscriptions", create, summary="Approve and publish a subscription",
          tag="subscriptions", body=SubscriptionRequest, responds="the published Subscription event")

A handler takes one :class:`Call` (the request, its validated body, its
declared query parameters already parsed, its path parameters) and returns a
response, or a value answered as JSON with the route's ``status``; it raises
instead of answering errors. ``Route`` is an aiohttp route
definition, so ``app.add_routes([...])`` takes a list of them directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute, UrlDispatcher
from pydantic import BaseModel, ConfigDict, ValidationError

from gsp.http.access import ACCESS, Access
from gsp.http.errors import BadRequest, UnsupportedMediaType, answer, status_of

__all__ = ["Body", "Call", "ErrorAnswer", "ErrorBody", "InvalidBody", "NotAnObject", "Query", "Route", "in_thread"]

log = logging.getLogger("gsp.api")

ErrorAnswer = Callable[[Exception, int], web.Response]


class Body(BaseModel):
    """Base of request bodies: strict, so ``"abc"`` is not a list of letters and ``5`` is not a string,
    and closed, so a misspelt field is refused rather than silently ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ErrorBody(BaseModel):
    """How :func:`gsp.http.errors.answer` answers an error: one line saying what was wrong."""

    error: str


@dataclass(frozen=True)
class Query:
    """A query parameter. A ``boolean`` is true only when it reads ``true`` (any case), as Confluent's are."""

    name: str
    description: str
    kind: Literal["string", "integer", "boolean"] = "string"
    default: str | int | bool | None = None

    def parse(self, text: str | None) -> str | int | bool | None:
        if text is None or (text == "" and self.kind != "string"):
            return self.default
        if self.kind == "boolean":
            return text.lower() == "true"
        if self.kind == "integer":
            try:
                return int(text)
            except ValueError:
                raise BadRequest(f"{self.name}: must be a whole number, not {text!r}") from None
        return text


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it."""

    request: web.Request
    body: Any  # an instance of the route's body model, or None when it declares none
    identity: Any  # the caller's gsp.governance.identity.Identity; None on a public route
    query: dict[str, Any]  # every declared query parameter, parsed, with its default when absent
    path: dict[str, str]


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Route(web.AbstractRouteDef):
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    responds: str = "done"
    status: int = 200
    query: tuple[Query, ...] = ()
    # Media types a body may come in; empty: any (aiohttp calls a missing Content-Type application/octet-stream).
    media_types: tuple[str, ...] = ()
    # How an error is answered, and the body and media type it answers with (documented in /openapi.json);
    # the registry answers in Confluent's shape.
    errors: ErrorAnswer = field(default=answer)
    error_body: type[BaseModel] = ErrorBody
    error_media_type: str = "application/json"

    def register(self, router: UrlDispatcher) -> list[AbstractRoute]:
        return [router.add_route(self.method, self.path, self._answer, name=None)]

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            access: Access = request.app[ACCESS]
            # Before the body is read: a caller without the right learns nothing about what it sent.
            identity = await in_thread(access.identity, self.method, self.path, request.headers.get("Authorization"))
            call = Call(request=request, identity=identity, body=await self._body(request),
                        query={q.name: q.parse(request.query.get(q.name)) for q in self.query},
                        path=dict(request.match_info))
            result = await self.handler(call)
            return result if isinstance(result, web.StreamResponse) else web.json_response(result, status=self.status)
        except Exception as exc:  # every error becomes an answer; the one mapping decides its status
            status = status_of(exc)
            if status >= 500 and not getattr(exc, "http_status", None):
                log.exception("request failed", extra={"stage": "http", "method": request.method, "route": self.path})
            response = self.errors(exc, status)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="gsp", Basic realm="gsp"'
            return response

    async def _body(self, request: web.Request) -> BaseModel | None:
        if self.body is None:
            return None
        if self.media_types and request.content_type not in self.media_types:
            raise UnsupportedMediaType(f"Unsupported Content-Type '{request.content_type}'; send {self.media_types[0]}")
        try:
            content = json.loads(await request.read())
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        if not isinstance(content, dict):
            raise NotAnObject("request body must be a JSON object")
        try:
            return self.body.model_validate(content)
        except ValidationError as exc:
            raise InvalidBody(self.body, exc) from None


class NotAnObject(BadRequest):
    """The body is JSON but not an object."""


class InvalidBody(BadRequest):
    """A body field is missing, unknown or of the wrong type; the message names each one by its path."""

    def __init__(self, model: type[BaseModel], error: ValidationError) -> None:
        self.model = model
        self._errors = error.errors(include_url=False)
        self.fields = [".".join(str(part) for part in e["loc"]) or "body" for e in self._errors]
        super().__init__("; ".join(f"{name}: {e['msg']}" for name, e in zip(self.fields, self._errors, strict=True)))

    def given(self, name: str) -> Any:
        """What the request held for a refused top-level field; None when it held nothing."""
        return next((e["input"] for e in self._errors if e["loc"][:1] == (name,) and e["type"] != "missing"), None)


async def in_thread(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``action(*args, **kwargs)`` in a worker thread: database and broker calls must not stall the event loop."""
    return await asyncio.to_thread(action, *args, **kwargs)
