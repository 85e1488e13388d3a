"""A worker's or a connector's operations server: /metrics, /health and /openapi.json on the one HTTP stack."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from gsp.errors import UserError
from gsp.http.ops import OpsServer


def test_the_ops_server_answers_metrics_health_and_its_openapi_document() -> None:
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
        with urllib.request.urlopen(ops.url + "/openapi.json", timeout=10) as response:
            assert set(json.loads(response.read())["paths"]) == {"/metrics", "/health", "/openapi.json"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(ops.url + "/nope", timeout=10)
        with missing.value as answer:
            assert answer.code == 404 and json.loads(answer.read())["error"] == "no route GET /nope"
    finally:
        ops.stop()


def test_a_port_in_use_is_a_one_line_error() -> None:
    first = OpsServer(CollectorRegistry(), dict)
    first.start()
    try:
        with pytest.raises(UserError, match=f"cannot serve gsp-ops on 127.0.0.1:{first.port}"):
            OpsServer(CollectorRegistry(), dict, port=first.port).start()
    finally:
        first.stop()
