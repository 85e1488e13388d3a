"""Route declarations made into one aiohttp application, served on its own thread and event loop.

The control plane's API, a connector's and a stream worker's operations
endpoints are all built by :func:`application` and run by :class:`ApiServer`,
so blocking callers (the CLI, the demo, a connector's loop) stay blocking.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from gsp.errors import UserError
from gsp.http.access import ACCESS, Access
from gsp.http.openapi import openapi
from gsp.http.routes import Call, Route

__all__ = ["ApiServer", "application"]


class ApiServer:
    """Runs ``app`` on ``host:port`` (port 0: a free one, read back from ``port`` and ``url`` once started);
    HTTPS with ``ssl_context`` (see `gsp.http.tls`), plain HTTP without."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0, name: str = "gsp-api",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._app = app
        self._host = host
        self._ssl_context = ssl_context
        self.port = port
        self._name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> None:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        except OSError as exc:
            self.stop()
            raise UserError(f"cannot serve {self._name} on {self._host}:{self.port}: {exc.strerror}") from None

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port, ssl_context=self._ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        # A wildcard bind is reached on loopback by the processes beside it.
        scheme = "https" if self._ssl_context is not None else "http"
        self.url = f"{scheme}://{'127.0.0.1' if self._host in ('0.0.0.0', '') else self._host}:{self.port}"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()


def application(routes: Iterable[Route], *, title: str, access: Access | None = None) -> web.Application:
    """One aiohttp application of ``routes``, each checked against the authorisation matrix by ``access``
    (default: no identity store, so only public routes), and, with an identity store, ``GET /openapi.json``
    documenting them all and itself. A route missing from `gsp.http.access.MATRIX` is a LookupError here."""
    access = access or Access()
    declared = list(routes)
    document: dict[str, Any] = {}

    async def serve_openapi(call: Call) -> dict[str, Any]:
        return document

    if access.store is not None:
        declared.append(Route("GET", "/openapi.json", serve_openapi, summary="This API's OpenAPI document",
                              tag="ops", responds="the OpenAPI 3.1 document of every route of this server"))
    access.check(declared)
    document.update(openapi(declared, title=title, version=_VERSION, public_metrics=access.public_metrics))
    # Registry bodies can be large schemas; a few MiB is far above any of them.
    app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[_unrouted])
    app[ACCESS] = access
    app.add_routes(declared)
    return app


@web.middleware
async def _unrouted(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
    """An unknown path or method is answered in JSON, like every other error, not with aiohttp's HTML."""
    refused = request.match_info.http_exception
    if refused is None:
        return await handler(request)
    headers = {"Allow": refused.headers["Allow"]} if "Allow" in refused.headers else None
    return web.json_response({"error": f"no route {request.method} {request.path}"}, status=refused.status,
                             headers=headers)


def _version() -> str:
    try:
        return version("gsp-platform")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0.0.0"


_VERSION = _version()
