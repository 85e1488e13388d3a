"""The control plane's one HTTP application: its OpenAPI document matches its routes, bodies are checked by their
declared models (a wrong type is a 400 naming the field, never a 500), unknown routes answer JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from gsp.desks.quarantine import AuditLog, QuarantineDesk
from gsp.desks.review import ReviewDesk
from gsp.governance.control import ControlPlane
from gsp.http.app import ApiServer, build_app
from schemas.codec import Codec


@pytest.fixture
def app(control: ControlPlane, bootstrap: str, tmp_path: Path) -> Iterator[web.Application]:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    codec = Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)
    audit = AuditLog(producer, codec, register=control.register)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'desks.db'}")
    desks = {"producer": producer, "codec": codec, "schema_id_of": control.schema_id, "audit": audit}
    yield build_app(control, CollectorRegistry(), desk=QuarantineDesk(engine, **desks), review=ReviewDesk(engine, **desks))
    producer.close()
    engine.dispose()


@pytest.fixture
def url(app: web.Application) -> Iterator[str]:
    server = ApiServer(app)
    server.start()
    yield server.url
    server.stop()


def call(url: str, method: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_the_openapi_document_lists_exactly_the_routes_the_app_serves(app: web.Application, url: str) -> None:
    status, document = call(url + "/openapi.json", "GET")

    assert status == 200
    assert document["openapi"].startswith("3.1") and document["info"]["title"] and document["info"]["version"]
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    served = {(route.method, resource.canonical) for resource in app.router.resources() for route in resource}
    assert documented == served
    assert {("POST", "/api/subscriptions"), ("GET", "/openapi.json"), ("GET", "/metrics"),
            ("POST", "/subjects/{subject}/versions"), ("POST", "/api/review/{item_id}/reject")} <= served


def test_every_documented_request_body_has_a_schema_in_the_document(url: str) -> None:
    document = call(url + "/openapi.json", "GET")[1]
    schemas = document["components"]["schemas"]
    bodies = [(path, operation["requestBody"]) for path, operations in document["paths"].items()
              for operation in operations.values() if "requestBody" in operation]

    assert len(bodies) >= 10
    for path, body in bodies:
        for media in body["content"].values():
            name = media["schema"]["$ref"].removeprefix("#/components/schemas/")
            assert schemas[name]["type"] == "object" and schemas[name]["properties"], path
    subscription = schemas["SubscriptionRequest"]
    assert set(subscription["required"]) == {"agency", "dataset", "fields"}
    assert subscription["properties"]["row_filter"]["type"] == "object"


@pytest.mark.parametrize(("body", "field"), [
    ({"agency": "so-y-te", "dataset": "telecom.subscriber", "fields": ["msisdn"], "row_filter": "carrier"},
     "row_filter"),
    ({"agency": "so-y-te", "dataset": "telecom.subscriber", "fields": ["msisdn"], "row_filter": {"carrier": 5}},
     "row_filter.carrier"),
    ({"agency": "so-y-te", "dataset": "telecom.subscriber", "fields": "msisdn"}, "fields"),
    ({"agency": "so-y-te", "dataset": "telecom.subscriber", "fields": []}, "fields"),
    ({"agency": 5, "dataset": "telecom.subscriber", "fields": ["msisdn"]}, "agency"),
    ({"dataset": "telecom.subscriber", "fields": ["msisdn"]}, "agency"),
    ({"agency": "so-y-te", "dataset": "telecom.subscriber", "fields": ["msisdn"], "verdict": ["MATCHED"]}, "verdict"),
])
def test_a_subscription_body_of_the_wrong_shape_is_a_400_naming_the_field(url: str, body: dict[str, Any],
                                                                          field: str) -> None:
    status, answer = call(url + "/api/subscriptions", "POST", json.dumps(body).encode())

    assert status == 400
    assert answer["error"].startswith(f"{field}: "), answer


def test_a_desk_body_of_the_wrong_shape_is_a_400_naming_the_field(url: str) -> None:
    status, answer = call(url + "/api/quarantine/some-id/release", "POST", b'{"fixes": {"id_number": 1}, "by": "lan"}')
    assert (status, answer["error"].split(":")[0]) == (400, "fixes.id_number")
    status, answer = call(url + "/api/review/some-id/reject", "POST", b'{"by": 5, "reason": "moved"}')
    assert (status, answer["error"].split(":")[0]) == (400, "by")
    status, answer = call(url + "/api/quarantine/some-id/discard", "POST", b'{"reason": "duplicate"}')
    assert (status, answer["error"]) == (400, "by: Field required")


def test_a_body_that_is_not_a_json_object_is_a_400(url: str) -> None:
    assert call(url + "/api/subscriptions", "POST", b"{not json")[0] == 400
    assert call(url + "/api/subscriptions", "POST", b"")[0] == 400
    assert call(url + "/api/subscriptions", "POST", b'["so-y-te"]') == (400, {"error": "request body must be a JSON object"})


def test_a_wrong_query_parameter_is_a_400_naming_it(url: str) -> None:
    status, answer = call(url + "/api/quarantine?limit=many", "GET")
    assert (status, answer["error"].split(":")[0]) == (400, "limit")


def test_a_valid_subscription_is_created_and_a_refused_one_is_a_422(url: str) -> None:
    body = {"agency": "so-y-te", "dataset": "telecom.subscriber", "fields": ["msisdn"],
            "row_filter": {"carrier": ["Viettel"]}}
    status, event = call(url + "/api/subscriptions", "POST", json.dumps(body).encode())
    assert status == 201 and event["row_filter"] == {"carrier": ["Viettel"]} and event["verdicts"] == ["MATCHED"]
    status, answer = call(url + "/api/subscriptions", "POST", json.dumps(body | {"fields": ["cccd"]}).encode())
    assert status == 422 and "unknown field 'cccd'" in answer["error"]
    assert call(url + "/api/subscriptions/nobody:telecom.subscriber", "DELETE")[0] == 404


def test_an_unknown_route_or_method_is_answered_in_json(url: str) -> None:
    assert call(url + "/api/nothing-here", "GET") == (404, {"error": "no route GET /api/nothing-here"})
    status, answer = call(url + "/api/subscriptions", "PATCH", b"{}")
    assert status == 405 and "no route" in answer["error"]


def test_the_registry_keeps_confluent_error_bodies_for_wrong_types(url: str) -> None:
    status, answer = call(url + "/config/citizen-value", "PUT", b'{"compatibility": 3}')
    assert (status, answer["error_code"]) == (422, 42203)
    status, answer = call(url + "/subjects/citizen-value/versions", "POST", b'{"schema": {"type": "string"}}')
    assert (status, answer["error_code"]) == (422, 42201)
