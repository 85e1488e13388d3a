"""The schema registry's store and compatibility rules, exercised through its HTTP API.

Every test runs on SQLite and on PostgreSQL (see ``conftest.py``).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def call(base: str, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
         content_type: str = CONTENT_TYPE) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request; error answers are returned, not raised."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    # The fixture's URL carries its credential as Confluent's clients take one: user:password@host.
    parts = urllib.parse.urlsplit(base)
    request = urllib.request.Request(parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() + path,
                                     data=data, method=method)
    if parts.username:
        pair = f"{parts.username}:{parts.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith(CONTENT_TYPE)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            assert exc.headers["Content-Type"].startswith(CONTENT_TYPE)
            return exc.code, json.loads(exc.read())


def citizen(*extra_fields: dict[str, Any]) -> str:
    fields = [{"name": "personal_id", "type": "string"}, {"name": "full_name", "type": "string"}]
    return json.dumps({"type": "record", "name": "Citizen", "namespace": "vn.gsp.test",
                       "fields": fields + list(extra_fields)})


def register(base: str, subject: str, schema: str) -> tuple[int, Any]:
    return call(base, "POST", f"/subjects/{subject}/versions", {"schema": schema})


def test_registering_the_same_schema_twice_returns_the_same_id_and_version(registry_url: str) -> None:
    status, first = register(registry_url, "citizen-value", citizen())
    assert status == 200
    reformatted = json.dumps(json.loads(citizen()), indent=4)

    assert register(registry_url, "citizen-value", reformatted) == (200, first)
    assert call(registry_url, "GET", "/subjects/citizen-value/versions") == (200, [1])
    assert call(registry_url, "GET", "/subjects") == (200, ["citizen-value"])


def test_an_identical_schema_under_two_subjects_shares_one_global_id(registry_url: str) -> None:
    _, first = register(registry_url, "citizen-value", citizen())
    _, second = register(registry_url, "citizen-copy-value", citizen())

    assert first == second
    status, pairs = call(registry_url, "GET", f"/schemas/ids/{first['id']}/versions")
    assert status == 200
    assert pairs == [{"subject": "citizen-copy-value", "version": 1}, {"subject": "citizen-value", "version": 1}]
    assert call(registry_url, "GET", f"/schemas/ids/{first['id']}") == (200, {"schema": json.dumps(
        json.loads(citizen()), separators=(",", ":"))})


def test_adding_a_field_with_a_default_is_a_new_version_with_a_new_id(registry_url: str) -> None:
    _, v1 = register(registry_url, "citizen-value", citizen())
    status, v2 = register(registry_url, "citizen-value", citizen({"name": "phone", "type": ["null", "string"],
                                                                  "default": None}))
    assert status == 200
    assert v2["id"] != v1["id"]
    for version in ("latest", "-1", "2"):
        status, found = call(registry_url, "GET", f"/subjects/citizen-value/versions/{version}")
        assert (status, found["version"], found["id"], found["subject"]) == (200, 2, v2["id"], "citizen-value")
    status, found = call(registry_url, "GET", "/subjects/citizen-value/versions/1")
    assert (found["version"], found["id"]) == (1, v1["id"])
    assert json.loads(found["schema"]) == json.loads(citizen())


def test_a_required_field_without_default_is_refused_under_backward(registry_url: str) -> None:
    register(registry_url, "citizen-value", citizen())

    status, error = register(registry_url, "citizen-value", citizen({"name": "ethnicity", "type": "string"}))

    assert status == 409
    assert error["error_code"] == 409
    assert "ethnicity" in error["message"] and "READER_FIELD_MISSING_DEFAULT_VALUE" in error["message"]
    assert call(registry_url, "GET", "/subjects/citizen-value/versions") == (200, [1])


def test_changing_a_field_type_is_refused(registry_url: str) -> None:
    register(registry_url, "citizen-value", citizen({"name": "birth_year", "type": "int"}))

    status, error = register(registry_url, "citizen-value", citizen({"name": "birth_year", "type": "string"}))

    assert (status, error["error_code"]) == (409, 409)
    assert "TYPE_MISMATCH" in error["message"]


def test_level_none_accepts_any_change(registry_url: str) -> None:
    register(registry_url, "citizen-value", citizen())
    assert call(registry_url, "PUT", "/config/citizen-value", {"compatibility": "NONE"}) == (
        200, {"compatibility": "NONE"})

    status, _ = register(registry_url, "citizen-value", citizen({"name": "ethnicity", "type": "string"}))

    assert status == 200


def test_forward_refuses_removing_a_required_field_but_accepts_adding_one(registry_url: str) -> None:
    call(registry_url, "PUT", "/config/citizen-value", {"compatibility": "FORWARD"})
    register(registry_url, "citizen-value", citizen())

    added, _ = register(registry_url, "citizen-value", citizen({"name": "ethnicity", "type": "string"}))
    removed, error = register(registry_url, "citizen-value", json.dumps(
        {"type": "record", "name": "Citizen", "namespace": "vn.gsp.test",
         "fields": [{"name": "personal_id", "type": "string"}]}))

    assert added == 200
    assert (removed, error["error_code"]) == (409, 409)
    assert "full_name" in error["message"]


def test_full_needs_both_directions(registry_url: str) -> None:
    call(registry_url, "PUT", "/config", {"compatibility": "FULL"})
    register(registry_url, "citizen-value", citizen())

    required, _ = register(registry_url, "citizen-value", citizen({"name": "ethnicity", "type": "string"}))
    optional, _ = register(registry_url, "citizen-value", citizen({"name": "ethnicity", "type": "string",
                                                                   "default": ""}))

    assert (required, optional) == (409, 200)


def test_transitive_levels_check_every_version_not_only_the_latest(registry_url: str) -> None:
    v1 = citizen({"name": "ward", "type": "int"})
    v2 = citizen()
    v3 = citizen({"name": "ward", "type": "string", "default": ""})
    for subject, level in (("plain-value", "BACKWARD"), ("transitive-value", "BACKWARD_TRANSITIVE")):
        call(registry_url, "PUT", f"/config/{subject}", {"compatibility": level})
        assert register(registry_url, subject, v1)[0] == 200
        assert register(registry_url, subject, v2)[0] == 200

    # v3 reads v2's data (ward takes its default) but not v1's, where ward is an int.
    assert register(registry_url, "plain-value", v3)[0] == 200
    status, error = register(registry_url, "transitive-value", v3)
    assert status == 409
    assert "version 1" in error["message"]


def test_compatibility_endpoint_reports_without_registering(registry_url: str) -> None:
    register(registry_url, "citizen-value", citizen())
    breaking = {"schema": citizen({"name": "ethnicity", "type": "string"})}

    status, verdict = call(registry_url, "POST", "/compatibility/subjects/citizen-value/versions/latest?verbose=true",
                           breaking)
    assert status == 200
    assert verdict["is_compatible"] is False
    assert any("ethnicity" in message for message in verdict["messages"])
    assert call(registry_url, "POST", "/compatibility/subjects/citizen-value/versions/1",
                {"schema": citizen({"name": "ethnicity", "type": "string", "default": ""})}) == (
        200, {"is_compatible": True})
    assert call(registry_url, "POST", "/compatibility/subjects/citizen-value/versions", breaking) == (
        200, {"is_compatible": False})
    assert call(registry_url, "GET", "/subjects/citizen-value/versions") == (200, [1])


def test_compatibility_with_a_subject_that_has_no_versions(registry_url: str) -> None:
    assert call(registry_url, "POST", "/compatibility/subjects/new-value/versions/latest",
                {"schema": citizen()}) == (200, {"is_compatible": True})
    status, error = call(registry_url, "POST", "/compatibility/subjects/new-value/versions/3", {"schema": citizen()})
    assert (status, error["error_code"]) == (404, 40401)


def test_lookup_finds_the_version_holding_a_schema(registry_url: str) -> None:
    _, registered = register(registry_url, "citizen-value", citizen())

    status, found = call(registry_url, "POST", "/subjects/citizen-value", {"schema": citizen()})
    assert status == 200
    assert (found["subject"], found["id"], found["version"]) == ("citizen-value", registered["id"], 1)
    assert json.loads(found["schema"]) == json.loads(citizen())

    status, error = call(registry_url, "POST", "/subjects/citizen-value",
                         {"schema": citizen({"name": "x", "type": "int"})})
    assert (status, error["error_code"]) == (404, 40403)
    status, error = call(registry_url, "POST", "/subjects/unknown-value", {"schema": citizen()})
    assert (status, error["error_code"]) == (404, 40401)


def test_unknown_subjects_versions_and_ids_are_404_with_confluent_codes(registry_url: str) -> None:
    register(registry_url, "citizen-value", citizen())

    assert call(registry_url, "GET", "/subjects/unknown-value/versions")[1]["error_code"] == 40401
    assert call(registry_url, "GET", "/subjects/unknown-value/versions/latest")[1]["error_code"] == 40401
    assert call(registry_url, "GET", "/subjects/citizen-value/versions/7") == (
        404, {"error_code": 40402, "message": "Version 7 not found for subject 'citizen-value'."})
    assert call(registry_url, "GET", "/schemas/ids/999") == (404, {"error_code": 40403,
                                                                    "message": "Schema 999 not found"})
    assert call(registry_url, "GET", "/schemas/ids/not-a-number")[1]["error_code"] == 40403
    assert call(registry_url, "GET", "/schemas/ids/4294967295")[1]["error_code"] == 40403


def test_invalid_version_ids_are_422(registry_url: str) -> None:
    register(registry_url, "citizen-value", citizen())

    for version in ("0", "-2", "abc", "2147483648"):
        status, error = call(registry_url, "GET", f"/subjects/citizen-value/versions/{version}")
        assert (status, error["error_code"]) == (422, 42202), version


def test_invalid_avro_is_422_and_registers_nothing(registry_url: str) -> None:
    for schema in ('{"type": "record", "name": "Citizen", "fields": [{"name": "a", "type": "strin"}]}',
                   "not json at all", '{"type": "enum", "name": "Sex", "symbols": ["MALE", "MALE"]}'):
        status, error = register(registry_url, "citizen-value", schema)
        assert (status, error["error_code"]) == (422, 42201), schema
        assert error["message"].startswith("Invalid schema")
    status, error = call(registry_url, "POST", "/subjects/citizen-value/versions",
                         {"schema": citizen(), "schemaType": "PROTOBUF"})
    assert (status, error["error_code"]) == (422, 42201)
    assert call(registry_url, "GET", "/subjects") == (200, [])


def test_malformed_requests_get_a_clear_error_not_a_traceback(registry_url: str) -> None:
    path = "/subjects/citizen-value/versions"

    assert call(registry_url, "POST", path, raw=b"{not json")[0] == 400
    assert call(registry_url, "POST", path, raw=b"{not json")[1]["message"].startswith("Request body is not valid JSON")
    assert call(registry_url, "POST", path, ["a list"]) == (422, {"error_code": 422,
                                                                 "message": "Request body must be a JSON object"})
    status, error = call(registry_url, "POST", path, {"schema": {"type": "string"}})
    assert (status, error["error_code"]) == (422, 42201)
    assert "JSON-encoded string" in error["message"]
    status, error = call(registry_url, "POST", path, {"schema": citizen()}, content_type="text/plain")
    assert (status, error["error_code"]) == (415, 415)
    status, _ = call(registry_url, "POST", path, {"schema": citizen()}, content_type="application/json")
    assert status == 200


def test_raw_schema_and_schema_types(registry_url: str) -> None:
    _, registered = register(registry_url, "citizen-value", citizen())

    assert call(registry_url, "GET", "/subjects/citizen-value/versions/1/schema") == (200, json.loads(citizen()))
    assert call(registry_url, "GET", f"/schemas/ids/{registered['id']}/schema") == (200, json.loads(citizen()))
    assert call(registry_url, "GET", "/schemas/types") == (200, ["AVRO"])


def test_soft_then_permanent_subject_deletion(registry_url: str) -> None:
    _, registered = register(registry_url, "citizen-value", citizen())
    register(registry_url, "citizen-value", citizen({"name": "phone", "type": ["null", "string"], "default": None}))

    assert call(registry_url, "DELETE", "/subjects/citizen-value?permanent=true")[1]["error_code"] == 40405
    assert call(registry_url, "DELETE", "/subjects/citizen-value") == (200, [1, 2])
    assert call(registry_url, "GET", "/subjects") == (200, [])
    assert call(registry_url, "GET", "/subjects?deleted=true") == (200, ["citizen-value"])
    assert call(registry_url, "GET", "/subjects/citizen-value/versions")[1]["error_code"] == 40401
    assert call(registry_url, "GET", "/subjects/citizen-value/versions?deleted=true") == (200, [1, 2])
    assert call(registry_url, "DELETE", "/subjects/citizen-value")[1]["error_code"] == 40404
    # The id still decodes data already written with it.
    assert call(registry_url, "GET", f"/schemas/ids/{registered['id']}")[0] == 200

    assert call(registry_url, "DELETE", "/subjects/citizen-value?permanent=true") == (200, [1, 2])
    assert call(registry_url, "GET", "/subjects?deleted=true") == (200, [])
    assert register(registry_url, "citizen-value", citizen()) == (200, registered)
    assert call(registry_url, "GET", "/subjects/citizen-value/versions") == (200, [1])


def test_soft_deleting_a_version_falls_back_to_the_previous_one(registry_url: str) -> None:
    _, v1 = register(registry_url, "citizen-value", citizen())
    register(registry_url, "citizen-value", citizen({"name": "phone", "type": ["null", "string"], "default": None}))

    assert call(registry_url, "DELETE", "/subjects/citizen-value/versions/2?permanent=true")[1]["error_code"] == 40407
    assert call(registry_url, "DELETE", "/subjects/citizen-value/versions/latest") == (200, 2)
    assert call(registry_url, "GET", "/subjects/citizen-value/versions/latest")[1]["id"] == v1["id"]
    assert call(registry_url, "DELETE", "/subjects/citizen-value/versions/2")[1]["error_code"] == 40406
    assert call(registry_url, "DELETE", "/subjects/citizen-value/versions/2?permanent=true") == (200, 2)
    assert call(registry_url, "DELETE", "/subjects/citizen-value/versions/2")[1]["error_code"] == 40402
    # A deleted version no longer constrains what may follow.
    assert register(registry_url, "citizen-value", citizen({"name": "phone", "type": "int", "default": 0}))[0] == 200
    assert call(registry_url, "GET", "/subjects/citizen-value/versions") == (200, [1, 2])


def test_compatibility_levels_global_and_per_subject(registry_url: str) -> None:
    assert call(registry_url, "GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert call(registry_url, "PUT", "/config", {"compatibility": "forward_transitive"}) == (
        200, {"compatibility": "FORWARD_TRANSITIVE"})
    assert call(registry_url, "PUT", "/config/citizen-value", {"compatibility": "FULL"}) == (
        200, {"compatibility": "FULL"})

    assert call(registry_url, "GET", "/config/") == (200, {"compatibilityLevel": "FORWARD_TRANSITIVE"})
    assert call(registry_url, "GET", "/config/citizen-value") == (200, {"compatibilityLevel": "FULL"})
    assert call(registry_url, "GET", "/config/other-value")[1]["error_code"] == 40408
    assert call(registry_url, "GET", "/config/other-value?defaultToGlobal=true") == (
        200, {"compatibilityLevel": "FORWARD_TRANSITIVE"})
    assert call(registry_url, "DELETE", "/config/citizen-value") == (200, {"compatibilityLevel": "FULL"})
    assert call(registry_url, "GET", "/config/citizen-value?defaultToGlobal=true") == (
        200, {"compatibilityLevel": "FORWARD_TRANSITIVE"})
    assert call(registry_url, "DELETE", "/config/never-seen-value")[1]["error_code"] == 40401
    assert call(registry_url, "DELETE", "/config") == (200, {"compatibilityLevel": "FORWARD_TRANSITIVE"})
    assert call(registry_url, "GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})


def test_invalid_compatibility_levels_are_422(registry_url: str) -> None:
    for body in ({"compatibility": "SIDEWAYS"}, {"compatibility": 3}, {}):
        status, error = call(registry_url, "PUT", "/config/citizen-value", body)
        assert (status, error["error_code"]) == (422, 42203), body
    assert call(registry_url, "GET", "/config/citizen-value")[1]["error_code"] == 40408


def test_registrations_survive_a_restart(
    registry_engine: sqlalchemy.Engine, serve_registry: Callable[[sqlalchemy.Engine], AbstractContextManager[str]],
) -> None:
    with serve_registry(registry_engine) as url:
        _, registered = register(url, "citizen-value", citizen())
        call(url, "PUT", "/config/citizen-value", {"compatibility": "NONE"})

    with serve_registry(registry_engine) as url:
        assert call(url, "GET", f"/schemas/ids/{registered['id']}")[0] == 200
        assert call(url, "GET", "/config/citizen-value") == (200, {"compatibilityLevel": "NONE"})
        assert register(url, "citizen-value", citizen()) == (200, registered)


def test_concurrent_registrations_from_two_servers_get_distinct_consecutive_versions(
    registry_engine: sqlalchemy.Engine, serve_registry: Callable[[sqlalchemy.Engine], AbstractContextManager[str]],
) -> None:
    # Two servers on one database behave like two control-plane processes: only the database arbitrates.
    schemas = [citizen({"name": f"field_{n}", "type": "int", "default": 0}) for n in range(12)]
    answers: list[tuple[int, Any]] = []
    with serve_registry(registry_engine) as first, serve_registry(registry_engine) as second:
        register(first, "citizen-value", citizen())

        start = threading.Barrier(len(schemas))

        def register_one(url: str, schema: str) -> None:
            start.wait(30)
            answers.append(register(url, "citizen-value", schema))

        threads = [threading.Thread(target=register_one, args=((first, second)[n % 2], schema))
                   for n, schema in enumerate(schemas)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert [status for status, _ in answers] == [200] * len(schemas)
        assert len({answer["id"] for _, answer in answers}) == len(schemas)
        assert call(first, "GET", "/subjects/citizen-value/versions") == (200, list(range(1, 14)))
