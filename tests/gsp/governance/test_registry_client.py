"""The data plane's standard-library client (schemas.registry) against the real registry server."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy

from schemas.registry import RegistryClient, RegistryRequestFailed, RegistryUnavailable

SUBSCRIBER: dict[str, Any] = {
    "type": "record", "name": "Subscriber", "namespace": "vn.gsp.test",
    "fields": [{"name": "msisdn", "type": "string"}, {"name": "carrier", "type": "string"}],
}


def with_field(field: dict[str, object]) -> dict[str, object]:
    return {**SUBSCRIBER, "fields": [*SUBSCRIBER["fields"], field]}


@pytest.fixture
def url(sqlite_engine: sqlalchemy.Engine,
        serve_registry: Callable[[sqlalchemy.Engine], AbstractContextManager[str]]) -> Iterator[str]:
    with serve_registry(sqlite_engine) as base_url:
        yield base_url


def test_register_fetch_and_latest(url: str) -> None:
    client = RegistryClient(url + "/")

    schema_id = client.register("subscriber-value", SUBSCRIBER)

    assert client.register("subscriber-value", json.dumps(SUBSCRIBER, indent=2)) == schema_id
    assert json.loads(client.schema_by_id(schema_id)) == SUBSCRIBER
    latest_id, version, text = client.latest("subscriber-value")
    assert (latest_id, version, json.loads(text)) == (schema_id, 1, SUBSCRIBER)


def test_check_compatibility_and_refused_registration(url: str) -> None:
    client = RegistryClient(url)
    client.register("subscriber-value", SUBSCRIBER)
    breaking = with_field({"name": "id_number", "type": "string"})

    assert client.check_compatibility("subscriber-value", with_field(
        {"name": "id_number", "type": ["null", "string"], "default": None})) is True
    assert client.check_compatibility("subscriber-value", breaking) is False
    with pytest.raises(RegistryRequestFailed) as refused:
        client.register("subscriber-value", breaking)
    assert (refused.value.status, refused.value.error_code) == (409, 409)
    assert "id_number" in refused.value.message


def test_a_subject_without_versions_accepts_any_schema(url: str) -> None:
    assert RegistryClient(url).check_compatibility("new-value", SUBSCRIBER) is True


def test_set_compatibility_per_subject_and_globally(url: str) -> None:
    client = RegistryClient(url)
    client.register("subscriber-value", SUBSCRIBER)
    breaking = with_field({"name": "id_number", "type": "string"})

    client.set_compatibility("FORWARD", "subscriber-value")
    assert client.check_compatibility("subscriber-value", breaking) is True
    client.set_compatibility("NONE")
    client.set_compatibility("BACKWARD", "subscriber-value")
    assert client.check_compatibility("subscriber-value", breaking) is False
    with pytest.raises(RegistryRequestFailed) as refused:
        client.set_compatibility("SIDEWAYS")
    assert (refused.value.status, refused.value.error_code) == (422, 42203)


def test_not_found_carries_confluent_error_codes(url: str) -> None:
    client = RegistryClient(url)

    with pytest.raises(RegistryRequestFailed) as missing_subject:
        client.latest("unknown-value")
    with pytest.raises(RegistryRequestFailed) as missing_id:
        client.schema_by_id(404)

    assert (missing_subject.value.status, missing_subject.value.error_code) == (404, 40401)
    assert (missing_id.value.status, missing_id.value.error_code) == (404, 40403)


def test_a_server_that_is_not_a_registry_fails_without_an_error_code(url: str) -> None:
    with pytest.raises(RegistryRequestFailed) as failed:
        RegistryClient(url + "/not-the-registry").latest("subscriber-value")

    assert (failed.value.status, failed.value.error_code) == (404, None)


def test_a_closed_port_is_unavailable_naming_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"

    with pytest.raises(RegistryUnavailable) as unavailable:
        RegistryClient(base_url).latest("subscriber-value")

    assert str(unavailable.value).startswith(f"schema registry at {base_url} is unreachable")


def test_a_registry_that_never_answers_times_out_as_unavailable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepted by the kernel, never answered
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        with pytest.raises(RegistryUnavailable) as unavailable:
            RegistryClient(base_url, timeout=0.2).latest("subscriber-value")

    assert base_url in str(unavailable.value)
