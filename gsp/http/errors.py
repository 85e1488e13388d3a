"""The one exception-to-status mapping of the HTTP stack, and the errors of reading a request.

    BadRequest               400  the request cannot be read: not JSON, not an object, a field of the wrong type
    └── UnsupportedMediaType 415  a body in a media type the route does not take

Every other error keeps its own meaning; :func:`status_of` turns it into a
status: an error carrying ``http_status`` (the registry's Confluent errors)
keeps it, then the table below decides, and anything unforeseen is a 500.
"""

from __future__ import annotations

from aiohttp import web

from gsp.desks.base import NotOpen, Unavailable
from gsp.errors import NotFound, UserError
from gsp.governance.control import PublishFailed

__all__ = ["STATUSES", "BadRequest", "UnsupportedMediaType", "answer", "status_of"]


class BadRequest(Exception):
    """A request the API cannot even read; ``str(error)`` names the field when one is at fault."""

    http_status = 400


class UnsupportedMediaType(BadRequest):
    http_status = 415


# First match wins, so a subclass comes before its base (NotFound and NotOpen are UserErrors).
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    # A body over the application's size limit (aiohttp raises it while reading): the client's to shrink.
    (web.HTTPRequestEntityTooLarge, 413),
    (NotFound, 404),
    (NotOpen, 409),
    (UserError, 422),
    # The broker did not acknowledge; what was asked is kept and may be retried.
    (Unavailable, 503),
    (PublishFailed, 503),
)


def status_of(exc: Exception) -> int:
    own = getattr(exc, "http_status", None)
    if isinstance(own, int):
        return own
    return next((status for kind, status in STATUSES if isinstance(exc, kind)), 500)


def answer(exc: Exception, status: int) -> web.Response:
    """The platform's error body, ``{"error": "..."}``; a 500 never shows its detail, which is logged instead."""
    message = str(exc) if status != 500 else "internal error; see the server's log"
    return web.json_response({"error": message}, status=status)
