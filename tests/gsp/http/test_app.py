"""The control plane's one HTTP application: its OpenAPI document matches its routes, bodies are checked by their
declared models (a wrong type is a 400 naming the field, never a 500), unknown routes answer JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from aiohttp import web

from gsp.governance.identity import Role
from tests.credentials import Cast

# Who calls: the role each test's route needs. Set by the autouse fixture below.
_caller: dict[str, str] = {}


@pytest.fixture(autouse=True)
def callers(people: Cast) -> None:
    _caller.update({role.value: people.token(role) for role in Role})


def call(url: str, method: str, body: bytes | None = None, *, role: Role = Role.ADMIN) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {_caller[role.value]}"})
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
    assert set(subscription["required"]) == {"dataset", "fields", "purpose", "legal_basis"}
    assert subscription["properties"]["row_filter"]["type"] == "object"


ASK = {"dataset": "telecom.subscriber", "fields": ["msisdn"], "purpose": "Đối soát", "legal_basis": "Luật Căn cước"}


@pytest.mark.parametrize(("body", "field"), [
    (ASK | {"row_filter": "carrier"}, "row_filter"),
    (ASK | {"row_filter": {"carrier": 5}}, "row_filter.carrier"),
    (ASK | {"fields": "msisdn"}, "fields"),
    (ASK | {"fields": []}, "fields"),
    (ASK | {"purpose": 5}, "purpose"),
    ({k: v for k, v in ASK.items() if k != "legal_basis"}, "legal_basis"),
    (ASK | {"agency": "so-y-te"}, "agency"),   # who asks is the credential, never a name in the body
    (ASK | {"verdict": ["MATCHED"]}, "verdict"),
])
def test_a_subscription_body_of_the_wrong_shape_is_a_400_naming_the_field(url: str, body: dict[str, Any],
                                                                          field: str) -> None:
    status, answer = call(url + "/api/subscriptions", "POST", json.dumps(body).encode(), role=Role.CONSUMER)

    assert status == 400
    assert answer["error"].startswith(f"{field}: "), answer


def test_a_desk_body_of_the_wrong_shape_is_a_400_naming_the_field(url: str) -> None:
    status, answer = call(url + "/api/quarantine/some-id/release", "POST", b'{"fixes": {"id_number": 1}}',
                          role=Role.STEWARD)
    assert (status, answer["error"].split(":")[0]) == (400, "fixes.id_number")
    status, answer = call(url + "/api/review/some-id/reject", "POST", b'{"reason": 5}', role=Role.STEWARD)
    assert (status, answer["error"].split(":")[0]) == (400, "reason")


def test_a_body_that_is_not_a_json_object_is_a_400(url: str) -> None:
    assert call(url + "/api/subscriptions", "POST", b"{not json", role=Role.CONSUMER)[0] == 400
    assert call(url + "/api/subscriptions", "POST", b"", role=Role.CONSUMER)[0] == 400
    assert call(url + "/api/subscriptions", "POST", b'["so-y-te"]', role=Role.CONSUMER) == (
        400, {"error": "request body must be a JSON object"})


def test_a_wrong_query_parameter_is_a_400_naming_it(url: str) -> None:
    status, answer = call(url + "/api/quarantine?limit=many", "GET", role=Role.STEWARD)
    assert (status, answer["error"].split(":")[0]) == (400, "limit")


def test_a_valid_request_is_stored_an_approval_publishes_it_and_a_refused_one_is_a_422(url: str) -> None:
    body = ASK | {"row_filter": {"carrier": ["Viettel"]}}
    status, asked = call(url + "/api/subscriptions", "POST", json.dumps(body).encode(), role=Role.CONSUMER)
    assert status == 201 and asked["state"] == "requested"
    assert asked["versions"][0]["row_filter"] == {"carrier": ["Viettel"]} and asked["versions"][0]["verdicts"] == ["MATCHED"]
    one = f"{url}/api/subscriptions/{urllib.parse.quote(asked['subscription_id'], safe='')}"
    assert call(f"{one}/versions/1/refuse", "POST", b"{}", role=Role.OWNER)[0] == 422  # no reason
    assert call(f"{one}/versions/1/approve", "POST", b"{}", role=Role.CONSUMER)[0] == 403
    status, approved = call(f"{one}/versions/1/approve", "POST", b"{}", role=Role.OWNER)
    assert status == 200 and approved["state"] == "active" and approved["active_version"] == 1
    status, answer = call(url + "/api/subscriptions", "POST", json.dumps(body | {"fields": ["cccd"], "name": "other"}).encode(),
                          role=Role.CONSUMER)
    assert status == 422 and "unknown field 'cccd'" in answer["error"]
    assert call(url + "/api/subscriptions/nobody:telecom.subscriber", "GET")[0] == 404


def test_an_unknown_route_or_method_is_answered_in_json(url: str) -> None:
    assert call(url + "/api/nothing-here", "GET") == (404, {"error": "no route GET /api/nothing-here"})
    status, answer = call(url + "/api/subscriptions", "PATCH", b"{}")  # 405 before any credential is looked at
    assert status == 405 and "no route" in answer["error"]


def test_the_registry_keeps_confluent_error_bodies_for_wrong_types(url: str) -> None:
    status, answer = call(url + "/config/citizen-value", "PUT", b'{"compatibility": 3}')
    assert (status, answer["error_code"]) == (422, 42203)
    status, answer = call(url + "/subjects/citizen-value/versions", "POST", b'{"schema": {"type": "string"}}')
    assert (status, answer["error_code"]) == (422, 42201)
