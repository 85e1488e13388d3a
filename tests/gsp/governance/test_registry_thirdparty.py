"""The registry speaks Confluent's protocol: a third-party client (python-schema-registry-client) works unchanged.

The project's real contracts from ``schemas/avro`` are registered, with
``vn.gsp.common.EventHeader`` inlined by fastavro as producers do.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import fastavro.schema
import pytest
import sqlalchemy
from schema_registry.client import SchemaRegistryClient, schema
from schema_registry.client.errors import ClientError
from schema_registry.client.schema import SubjectVersion

AVRO_DIR = Path(__file__).resolve().parents[3] / "schemas" / "avro"
CONTRACTS = sorted(path.stem for path in AVRO_DIR.glob("*.avsc"))


def contract(fullname: str) -> dict[str, Any]:
    # _write_hint=False leaves out fastavro's private bookkeeping keys.
    loaded = fastavro.schema.load_schema(str(AVRO_DIR / f"{fullname}.avsc"), _write_hint=False)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def url(sqlite_engine: sqlalchemy.Engine,
        serve_registry: Callable[[sqlalchemy.Engine], AbstractContextManager[str]]) -> Iterator[str]:
    with serve_registry(sqlite_engine) as base_url:
        yield base_url


def test_the_project_contracts_are_found_and_inline_the_event_header() -> None:
    assert "vn.gsp.population.Citizen" in CONTRACTS and len(CONTRACTS) >= 6
    assert "EventHeader" in json.dumps(contract("vn.gsp.population.Citizen"))


def test_every_contract_registers_and_reads_back_through_the_client(url: str) -> None:
    writer = SchemaRegistryClient(url=url)
    ids = {name: writer.register(f"{name}-value", schema.AvroSchema(contract(name))) for name in CONTRACTS}
    # A fresh client has nothing cached, so every answer below comes from the server.
    reader = SchemaRegistryClient(url=url)

    assert len(set(ids.values())) == len(CONTRACTS)
    assert sorted(reader.get_subjects()) == sorted(f"{name}-value" for name in CONTRACTS)
    for name, schema_id in ids.items():
        subject = f"{name}-value"
        fetched = reader.get_by_id(schema_id)
        assert fetched is not None and fetched.raw_schema == contract(name)
        assert reader.get_versions(subject) == [1]
        latest = reader.get_schema(subject)
        assert latest is not None and (latest.schema_id, latest.version) == (schema_id, 1)
        found = SchemaRegistryClient(url=url).check_version(subject, schema.AvroSchema(contract(name)))
        assert found is not None and (found.schema_id, found.version) == (schema_id, 1)
        assert reader.get_schema_subject_versions(schema_id) == [SubjectVersion(subject, 1)]
        assert SchemaRegistryClient(url=url).register(subject, schema.AvroSchema(contract(name))) == schema_id


def test_adding_an_optional_field_to_citizen_is_accepted(url: str) -> None:
    client = SchemaRegistryClient(url=url)
    first = client.register("citizen-value", schema.AvroSchema(contract("vn.gsp.population.Citizen")))
    evolved = copy.deepcopy(contract("vn.gsp.population.Citizen"))
    evolved["fields"].append({"name": "ethnicity", "type": ["null", "string"], "default": None})

    assert client.test_compatibility("citizen-value", schema.AvroSchema(evolved)) is True
    second = client.register("citizen-value", schema.AvroSchema(evolved))

    assert second != first
    assert client.get_versions("citizen-value") == [1, 2]


def test_breaking_changes_to_citizen_are_refused_with_409(url: str) -> None:
    client = SchemaRegistryClient(url=url)
    client.register("citizen-value", schema.AvroSchema(contract("vn.gsp.population.Citizen")))
    required = copy.deepcopy(contract("vn.gsp.population.Citizen"))
    required["fields"].append({"name": "ethnicity", "type": "string"})
    retyped = copy.deepcopy(contract("vn.gsp.population.Citizen"))
    next(f for f in retyped["fields"] if f["name"] == "personal_id")["type"] = "long"

    for breaking in (required, retyped):
        assert client.test_compatibility("citizen-value", schema.AvroSchema(breaking)) is False
        verdict = client.test_compatibility("citizen-value", schema.AvroSchema(breaking), verbose=True)
        assert isinstance(verdict, dict) and verdict["is_compatible"] is False and verdict["messages"]
        with pytest.raises(ClientError) as refused:
            client.register("citizen-value", schema.AvroSchema(breaking))
        assert refused.value.http_code == 409
        assert isinstance(refused.value.server_traceback, dict)
        assert refused.value.server_traceback["error_code"] == 409

    assert client.get_versions("citizen-value") == [1]


def test_compatibility_levels_through_the_client(url: str) -> None:
    client = SchemaRegistryClient(url=url)
    client.register("citizen-value", schema.AvroSchema(contract("vn.gsp.population.Citizen")))

    assert client.get_compatibility() == "BACKWARD"
    assert client.update_compatibility("FULL_TRANSITIVE") is True
    assert client.get_compatibility() == "FULL_TRANSITIVE"
    assert client.update_compatibility("NONE", "citizen-value") is True
    assert client.get_compatibility("citizen-value") == "NONE"

    breaking = copy.deepcopy(contract("vn.gsp.population.Citizen"))
    breaking["fields"].append({"name": "ethnicity", "type": "string"})
    assert client.register("citizen-value", schema.AvroSchema(breaking)) > 0
    assert client.get_versions("citizen-value") == [1, 2]


def test_deleting_versions_and_subjects_through_the_client(url: str) -> None:
    client = SchemaRegistryClient(url=url)
    client.register("subscriber-value", schema.AvroSchema(contract("vn.gsp.telecom.Subscriber")))
    evolved = copy.deepcopy(contract("vn.gsp.telecom.Subscriber"))
    evolved["fields"].append({"name": "province_code", "type": ["null", "string"], "default": None})
    client.register("subscriber-value", schema.AvroSchema(evolved))

    assert client.delete_version("subscriber-value", 2) == 2
    assert client.get_versions("subscriber-value") == [1]
    assert client.delete_subject("subscriber-value") == [1]
    assert client.get_versions("subscriber-value") == []
    assert client.get_schema("subscriber-value") is None
