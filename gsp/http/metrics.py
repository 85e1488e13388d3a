"""HTTP request metrics of an aiohttp application: requests by route and status, and their latency.

    instrument(app, HttpMetrics.create(registry))   # once, before the app is served

The ``route`` label is the route's template (``/api/subscriptions/{subscription_id}``), never the
raw path, so an id in a URL does not make a series of its own; a request no route matched is
``route="unmatched"``. Every declared route's latency series exists from the start, at zero.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["UNMATCHED", "HttpMetrics", "instrument"]

UNMATCHED = "unmatched"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> HttpMetrics:
        return cls(
            requests=Counter("gsp_http_requests_total", "HTTP requests answered by the control plane, by route "
                             "template, method and status code", ["route", "method", "status"], registry=registry),
            seconds=Histogram("gsp_http_request_seconds", "Time to answer an HTTP request, by route template and method",
                              ["route", "method"], registry=registry),
        )


def instrument(app: web.Application, metrics: HttpMetrics) -> web.Application:
    """Count and time every request of ``app`` (outermost middleware: it sees the final status)."""
    for route in app.router.routes():
        if route.method != "HEAD" and route.resource is not None:
            metrics.seconds.labels(route.resource.canonical, route.method)  # its status codes are not known yet

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.seconds.labels(route, request.method).observe(time.perf_counter() - started)
            metrics.requests.labels(route, request.method, str(status)).inc()

    app.middlewares.insert(0, observe)
    return app
