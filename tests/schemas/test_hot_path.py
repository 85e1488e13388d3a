"""The connector's per-record work, made cheap without changing what it produces (gsp bench --connect)."""

from __future__ import annotations

import uuid
from typing import Any

import fastavro
from prometheus_client import CollectorRegistry

from connectors.base import SourceRecord
from connectors.metrics import ConnectorMetrics
from connectors.runner import SourceRunner, Target
from schemas import topics
from schemas.codec import Codec, contract
from schemas.datasets import dataset
from schemas.envelope import _EVENT_NS, event_id, header

CITIZEN = "population.citizen"


def test_event_id_is_the_uuid5_of_system_key_and_version() -> None:
    cases = [("telecom.viettel", "0912345678", "1700000000000:7"), ("", "", ""), ("hệ thống", "Hà Nội/ü", "1:2"),
             ("x" * 300, "k" * 1000, "9" * 40)]
    cases += [(f"system-{i}", str(i * 7919), f"{i}:{i * i}") for i in range(2000)]
    for system, key, version in cases:
        assert event_id(system, key, version) == str(uuid.uuid5(_EVENT_NS, f"{system}/{key}/{version}"))


def test_the_codec_hands_fastavro_a_schema_it_does_not_parse_again() -> None:
    codec = Codec()
    codec.add(1, dataset(CITIZEN).avro)
    parsed = codec._schema(1)
    # fastavro returns a schema it already parsed as is; without its marker, every encode and decode parsed it again.
    assert fastavro.parse_schema(parsed) is parsed
    assert codec.name_of(1) == "vn.gsp.population.Citizen"


def _citizen(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "personal_id": "001085000001", "full_name": "Lê Thị Thu", "birth_date": "1985-01-02", "sex": "FEMALE",
        "birth_registration_province": "01", "status": "ALIVE", "updated_at": 1,
        "residence": {"province_code": "01", "ward_code": "00004", "address_line": "1 Tràng Tiền"}}
    for path, v in changes.items():
        target = value
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = v
    return value


def _runner() -> tuple[SourceRunner, Codec]:
    d = dataset(CITIZEN)
    codec = Codec()
    codec.add(1, d.avro)
    codec.add(2, contract("vn.gsp.quality.QualityIssue"))

    class _Source:
        name = "citizens"

    runner = SourceRunner(_Source(), Target.of(d, schema_id=1, quarantine_schema_id=2),  # type: ignore[arg-type]
                          producer=None, codec=codec, offsets=None,  # type: ignore[arg-type]
                          metrics=ConnectorMetrics.create(CollectorRegistry()), clock=lambda: 1.5)
    return runner, codec


def _encoded(value: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
    runner, codec = _runner()
    topic, data, ok = runner._encode(SourceRecord(key="001085000001", version="1:1", value=value,
                                                  position={"ts": 1, "inc": 1}, raw=value))
    return topic, codec.decode(data)[1], ok


def test_a_record_with_every_required_field_is_published_with_its_header() -> None:
    topic, event, ok = _encoded(_citizen())
    assert ok and topic == topics.raw(CITIZEN)
    assert event["header"] == header(dataset(CITIZEN).source_system, "001085000001", "1:1", 1500)
    assert event["residence"]["ward_code"] == "00004"


def test_the_first_null_required_field_names_the_quarantine_reason_top_level_or_nested() -> None:
    for changes, field in (({"full_name": None}, "full_name"),
                           ({"residence__ward_code": None}, "residence.ward_code"),
                           ({"residence__province_code": None, "residence__address_line": None},
                            "residence.province_code"),
                           ({"status": None, "residence__ward_code": None}, "residence.ward_code"),
                           ({"residence": None}, "residence")):
        topic, issue, ok = _encoded(_citizen(**changes))
        assert not ok and topic == topics.quarantine(CITIZEN)
        assert (issue["rule"], issue["field"]) == ("schema.required", field), changes


def test_a_value_of_the_wrong_kind_is_quarantined_with_the_field_the_codec_names() -> None:
    topic, issue, ok = _encoded(_citizen(sex="F"))
    assert not ok and topic == topics.quarantine(CITIZEN)
    assert issue["rule"] == "schema.invalid" and "Citizen.sex" in issue["reason"]
