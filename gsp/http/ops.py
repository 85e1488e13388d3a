"""Operations endpoints, /metrics and /health: the control plane's, and a worker's or a connector's own server.

    ops = OpsServer(metrics, lambda: {"status": "ok", "published": runner.published}, port=0)
    ops.start()            # ops.url, ops.port
    ...
    ops.stop()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gsp.http.routes import Call, Route, in_thread
from gsp.http.server import ApiServer, application

__all__ = ["OpsServer", "ops_routes"]


def ops_routes(metrics: CollectorRegistry, health: Callable[[], dict[str, Any]]) -> list[Route]:
    async def metrics_page(call: Call) -> web.Response:
        # generate_latest walks every collector under the registry's lock; not on the event loop.
        body = await in_thread(generate_latest, metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_page(call: Call) -> web.Response:
        # Anything but "ok" answers 503, so a probe or a load balancer acts on it without parsing the body.
        state = health()
        return web.json_response(state, status=200 if state.get("status") == "ok" else 503)

    return [
        Route("GET", "/metrics", metrics_page, summary="Prometheus metrics", tag="ops",
              responds="metrics in the Prometheus text format"),
        Route("GET", "/health", health_page, summary="Liveness and progress", tag="ops",
              responds='{"status": "ok", ...} (HTTP 503 with the reason when the status is anything else)'),
    ]


class OpsServer:
    """/metrics and /health of one process, on a thread of their own (anonymous callers: nothing else is served)."""

    def __init__(self, metrics: CollectorRegistry, health: Callable[[], dict[str, Any]], *,
                 host: str = "127.0.0.1", port: int = 0, title: str = "GSP operations") -> None:
        self._server = ApiServer(application(ops_routes(metrics, health), title=title), host=host, port=port,
                                 name="gsp-ops")

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
