"""A worker's or a connector's operations server: /metrics and /health on the one HTTP stack, and nothing else.

It takes no credentials (no identity store), so it serves only what answers anonymous callers: not even
/openapi.json, which `gsp.http.server.application` adds only to a server that checks credentials."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from gsp.errors import UserError
from gsp.http.ops import OpsServer, ops_routes
from gsp.http.server import application


def test_the_ops_server_answers_metrics_and_health_only() -> None:
    metrics = CollectorRegistry()
    Counter("gsp_test_records", "records seen", registry=metrics).inc(3)
    ops = OpsServer(metrics, lambda: {"status": "ok", "published": 7})
    ops.start()
    try:
        with urllib.request.urlopen(ops.url + "/metrics", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            assert "gsp_test_records_total 3.0" in response.read().decode()
        with urllib.request.urlopen(ops.url + "/health", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok", "published": 7}
        for path in ("/openapi.json", "/nope"):
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(ops.url + path, timeout=10)
            with missing.value as answer:
                assert answer.code == 404 and json.loads(answer.read())["error"] == f"no route GET {path}"
    finally:
        ops.stop()


def test_an_application_without_an_identity_store_serves_only_the_ops_routes() -> None:
    app = application(ops_routes(CollectorRegistry(), dict), title="GSP operations")

    served = {(route.method, resource.canonical) for resource in app.router.resources() for route in resource}
    assert served == {("GET", "/metrics"), ("GET", "/health")}


def test_a_port_in_use_is_a_one_line_error() -> None:
    first = OpsServer(CollectorRegistry(), dict)
    first.start()
    try:
        with pytest.raises(UserError, match=f"cannot serve gsp-ops on 127.0.0.1:{first.port}"):
            OpsServer(CollectorRegistry(), dict, port=first.port).start()
    finally:
        first.stop()
