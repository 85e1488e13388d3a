"""The control plane's HTTP API: schema registry, subscriptions, the stewards' desks, /metrics and /health.

Served by aiohttp on its own thread and event loop, so CLI commands and the
demo can keep their blocking code. Database calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import threading

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from gsp.governance.control import ControlPlane
from gsp.errors import NotFound, UserError
from gsp.desks.quarantine import QuarantineDesk
from gsp.http.quarantine import quarantine_routes
from gsp.http.registry import registry_routes
from gsp.desks.review import ReviewDesk
from gsp.http.review import review_routes

__all__ = ["ApiServer", "build_app"]


def build_app(control: ControlPlane, metrics: CollectorRegistry, *, desk: QuarantineDesk | None = None,
              review: ReviewDesk | None = None) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.add_routes(registry_routes(control.registry))
    if desk is not None:
        app.add_routes(quarantine_routes(desk))
    if review is not None:
        app.add_routes(review_routes(review))
    routes = web.RouteTableDef()

    def failure(exc: Exception) -> web.Response:
        status = 404 if isinstance(exc, NotFound) else 422
        return web.json_response({"error": str(exc)}, status=status)

    @routes.post("/api/subscriptions")
    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "request body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "request body must be a JSON object"}, status=400)
        try:
            event = await asyncio.to_thread(
                control.create_subscription, agency=str(body.get("agency", "")), dataset=str(body.get("dataset", "")),
                fields=list(body.get("fields") or []), row_filter=dict(body.get("row_filter") or {}),
                verdicts=list(body.get("verdicts") or ["MATCHED"]))
        except UserError as exc:
            return failure(exc)
        return web.json_response(event, status=201)

    @routes.get("/api/subscriptions")
    async def list_(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(control.list_subscriptions))

    @routes.delete("/api/subscriptions/{subscription_id}")
    async def delete(request: web.Request) -> web.Response:
        try:
            await asyncio.to_thread(control.delete_subscription, request.match_info["subscription_id"])
        except UserError as exc:
            return failure(exc)
        return web.json_response({"deleted": request.match_info["subscription_id"]})

    @routes.get("/metrics")
    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics), content_type="text/plain", charset="utf-8")

    @routes.get("/health")
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.add_routes(routes)
    return app


class ApiServer:
    """Runs an aiohttp application on a background thread."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gsp-api", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> None:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        except OSError as exc:
            raise UserError(f"cannot serve the control-plane API on {self._host}:{self._port}: {exc.strerror}") from None

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self._host}:{port}"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
