"""Properties over any input: the codec raises only its own errors, cleaning contracts and the clean stage never raise."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import Codec, CodecError, contract
from schemas.datasets import Dataset, catalog, dataset
from streams.contracts import contract_of
from streams.quality import QualityTally
from streams.rules import Cleaned
from streams.stages import CleanStage, Where

SUBSCRIBER_ID, ISSUE_ID, CITIZEN_ID = 1, 2, 3
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def codec() -> Codec:
    c = Codec()
    c.add(SUBSCRIBER_ID, contract("vn.gsp.telecom.Subscriber"))
    c.add(ISSUE_ID, contract("vn.gsp.quality.QualityIssue"))
    c.add(CITIZEN_ID, contract("vn.gsp.population.Citizen"))
    return c


# Framed for a schema the codec knows, so most examples reach fastavro rather than stopping at the header.
framed = st.builds(lambda schema_id, body: struct.pack(">bI", 0, schema_id) + body,
                   st.sampled_from([SUBSCRIBER_ID, ISSUE_ID, CITIZEN_ID, 99]), st.binary(max_size=300))
any_bytes = st.one_of(st.binary(max_size=300), framed)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def record_of(schema: Any) -> st.SearchStrategy[Any]:
    """Values for an Avro type: a nested record is a dict of its fields, or (like any field) any JSON value."""
    branches = schema if isinstance(schema, list) else [schema]
    records = [b for b in branches if isinstance(b, dict) and b.get("type") == "record"]
    if not records:
        return json_values
    fields = {f["name"]: record_of(f["type"]) for f in records[0]["fields"]}
    return st.fixed_dictionaries(fields) | json_values


DATASETS: list[Dataset] = sorted(catalog().values(), key=lambda d: d.name)


@FAST
@given(data=any_bytes)
def test_decode_raises_only_codec_errors(data: bytes) -> None:
    try:
        schema_id, record = codec().decode(data)
    except CodecError:
        return
    assert isinstance(record, dict) and schema_id in (SUBSCRIBER_ID, ISSUE_ID, CITIZEN_ID)


@FAST
@given(data=st.data())
def test_every_cleaning_contract_cleans_any_json_value_in_any_field(data: st.DataObject) -> None:
    declared = data.draw(st.sampled_from(DATASETS), label="dataset")
    record = data.draw(st.fixed_dictionaries({f["name"]: record_of(f["type"]) for f in declared.avro["fields"]}))
    result = contract_of(declared).clean(record)
    assert isinstance(result, Cleaned)
    assert result.rejection is not None or result.findings


@FAST
@given(key=st.none() | st.binary(max_size=20), value=st.none() | any_bytes)
def test_the_clean_stage_turns_any_bytes_into_one_event(key: bytes | None, value: bytes | None) -> None:
    c = codec()
    subscribers = dataset("telecom.subscriber")
    stage = CleanStage.for_dataset(subscribers, c, clean_schema_id=SUBSCRIBER_ID, issue_schema_id=ISSUE_ID,
                                   tally=QualityTally.for_dataset(subscribers))
    topic, _, out = stage.process(key, value, Where("raw.telecom.subscriber.v1", 0, 1))
    assert topic in ("clean.telecom.subscriber.v1", "quarantine.telecom.subscriber.v1")
    assert c.decode(out)[0] == (SUBSCRIBER_ID if topic.startswith("clean.") else ISSUE_ID)
