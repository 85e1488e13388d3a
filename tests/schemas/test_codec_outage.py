"""A schema registry that cannot answer is an outage to wait out, never a reason to quarantine a record."""

from __future__ import annotations

import contextlib
import http.server
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import sqlalchemy

from schemas.codec import Codec, CodecError, SchemaUnavailable, UnknownSchema, contract
from schemas.registry import RegistryClient
from tests.local_http import serving

CITIZEN = {
    "header": {"event_id": "e-1", "source_system": "population.csdlqg", "source_key": "001085012345",
               "source_version": "1:1", "ingested_at": 1_700_000_000_000, "deleted": False},
    "personal_id": "001085012345", "full_name": "Nguyễn Văn Hòa", "birth_date": "1985", "sex": "MALE",
    "birth_registration_province": "001",
    "residence": {"province_code": "01", "ward_code": "00004", "address_line": "12 Phố Huế"},
    "phone": None, "status": "ALIVE", "updated_at": 1_700_000_000_000, "findings": [],
}

Serve = Callable[[sqlalchemy.Engine], AbstractContextManager[str]]


def registered_citizen(url: str) -> tuple[int, bytes]:
    """The citizen contract registered at ``url``, and one citizen encoded under its id."""
    schema_id = RegistryClient(url).register("raw.population.citizen.v1-value", contract("vn.gsp.population.Citizen"))
    local = Codec()
    local.add(schema_id, contract("vn.gsp.population.Citizen"))
    return schema_id, local.encode(schema_id, CITIZEN)


def test_a_stopped_registry_raises_schema_unavailable_and_the_same_bytes_decode_once_it_is_back(
        sqlite_engine: sqlalchemy.Engine, serve_registry: Serve) -> None:
    with serve_registry(sqlite_engine) as url:
        schema_id, event = registered_citizen(url)
    # The server restarts on another free port; the worker's resolver follows the configured URL.
    current = {"url": url}
    codec = Codec(resolve=lambda wanted: RegistryClient(current["url"], timeout=2).schema_by_id(wanted))
    with pytest.raises(SchemaUnavailable, match=f"schema id {schema_id}") as raised:
        codec.decode(event)
    assert not isinstance(raised.value, CodecError)  # a stage must not quarantine the record for it
    assert not codec.knows(schema_id)  # nothing cached: the next record asks again
    with serve_registry(sqlite_engine) as url_again:
        current["url"] = url_again
        assert codec.decode(event) == (schema_id, CITIZEN)


def test_an_id_the_live_registry_does_not_know_is_unknown_schema(registry_url: str) -> None:
    schema_id, event = registered_citizen(registry_url)
    unknown = event[:1] + (schema_id + 1000).to_bytes(4, "big") + event[5:]
    codec = Codec(resolve=RegistryClient(registry_url).schema_by_id)
    with pytest.raises(UnknownSchema, match="not in the registry"):
        codec.decode(unknown)
    assert codec.decode(event)[0] == schema_id


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """An HTTP server on loopback answering every request with ``status``: a proxy in front of a registry in trouble."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error_code": 50003, "message": "backend unavailable"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


@pytest.mark.parametrize("status", [500, 503])
def test_a_registry_answering_5xx_is_unavailable_not_unknown(status: int) -> None:
    local = Codec()
    local.add(9, contract("vn.gsp.population.Citizen"))
    with answering(status) as url:
        with pytest.raises(SchemaUnavailable, match=str(status)):
            Codec(resolve=RegistryClient(url, timeout=2).schema_by_id).decode(local.encode(9, CITIZEN))


def test_a_registry_timing_out_is_unavailable() -> None:
    local = Codec()
    local.add(9, contract("vn.gsp.population.Citizen"))
    with contextlib.closing(socket.create_server(("127.0.0.1", 0))) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(SchemaUnavailable, match="could not be looked up"):
            Codec(resolve=RegistryClient(url, timeout=0.3).schema_by_id).decode(local.encode(9, CITIZEN))
