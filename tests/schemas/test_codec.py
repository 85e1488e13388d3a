import json
import struct

import pytest

from schemas.codec import Codec, DecodeError, EncodeError, UnknownSchema, contract, contract_names, schema_id_of

HEADER = {"event_id": "e-1", "source_system": "population.csdlqg", "source_key": "001085012345",
          "source_version": "1:1", "ingested_at": 1_700_000_000_000, "deleted": False}
CITIZEN = {
    "header": HEADER, "personal_id": "001085012345", "full_name": "Nguyễn Văn Hòa", "birth_date": "1985",
    "sex": "MALE", "birth_registration_province": "001",
    "residence": {"province_code": "01", "ward_code": "00004", "address_line": "12 Phố Huế"},
    "phone": None, "status": "ALIVE", "updated_at": 1_700_000_000_000, "findings": [],
}


def citizen_codec() -> Codec:
    codec = Codec()
    codec.add(7, contract("vn.gsp.population.Citizen"))
    return codec


def test_round_trip_in_confluent_wire_format() -> None:
    data = citizen_codec().encode(7, CITIZEN)
    assert data[0] == 0 and struct.unpack(">I", data[1:5])[0] == 7
    assert schema_id_of(data) == 7
    assert citizen_codec().decode(data) == (7, CITIZEN)


def test_contracts_are_self_contained_with_the_header_inlined() -> None:
    assert "vn.gsp.population.Citizen" in contract_names()
    schema = contract("vn.gsp.telecom.Subscriber")
    header = schema["fields"][0]
    assert header["name"] == "header" and header["type"]["name"] == "EventHeader"
    json.dumps(schema)


def test_a_value_that_fails_the_schema_names_the_field() -> None:
    with pytest.raises(EncodeError, match="sex"):
        citizen_codec().encode(7, {**CITIZEN, "sex": "UNKNOWN"})
    with pytest.raises(EncodeError, match="full_name"):
        citizen_codec().encode(7, {**CITIZEN, "full_name": None})


@pytest.mark.parametrize("data", [b"", b"\x01\x00\x00\x00\x07abc", b"\x00\x00\x00\x00\x07", b"\x00\x00\x00\x00\x07\xff\xff\xff"])
def test_malformed_bytes_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        citizen_codec().decode(data)


def test_truncated_and_trailing_bytes_are_refused() -> None:
    data = citizen_codec().encode(7, CITIZEN)
    with pytest.raises(DecodeError):
        citizen_codec().decode(data[:-4])
    with pytest.raises(DecodeError, match="trailing"):
        citizen_codec().decode(data + b"\x00")


def test_unknown_schema_id_is_resolved_once_through_the_resolver() -> None:
    calls = []

    def resolve(schema_id: int) -> str:
        calls.append(schema_id)
        return json.dumps(contract("vn.gsp.population.Citizen"))

    data = citizen_codec().encode(7, CITIZEN)
    codec = Codec(resolve=resolve)
    codec.decode(data)
    codec.decode(data)
    assert calls == [7]
    with pytest.raises(UnknownSchema):
        Codec().decode(data)
