"""Nothing outside an approval leaves the share stage: for generated records of every shareable dataset and random
approvals (fields, row filter, verdicts), the bytes of every delivered message (its Kafka key and value) hold no
value of a field the approval does not cover, not the platform's event id, and not the source key or personal id
unless approved; and two agencies receiving the same record cannot join on anything they were not both given."""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import Codec, contract
from schemas.datasets import Dataset, Role, catalog, declared
from schemas.envelope import Verdict
from streams.share import Subscription, projected_schema
from streams.stages import ShareStage
from tests.schemas.test_datasets import CLINIC, declare

RESULT_ID, RECORD_ID, SHARE_IDS = 1, 2, 10
SHAREABLE = {d.name: d for d in declared().values() if d.shareable}

# Distinctive text: long enough that finding it by chance inside other bytes is not a worry.
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "ăâđêôơưạảấầẩẫậ", min_size=8, max_size=16)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    """Every shareable dataset: the shipped ones and a plain one declared in a folder (tests/schemas' clinic)."""
    folder = declare(tmp_path_factory.mktemp("datasets"), CLINIC).parent
    return {name: d for name, d in catalog(folder).items() if d.shareable}


def _value_for(avro_type: Any, draw: Any) -> Any:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    concrete = [b for b in branches if b != "null"]
    kind = concrete[0] if concrete else "null"
    if kind == "string":
        return draw(_TEXT)
    if kind == "long":
        return draw(st.integers(min_value=10**12, max_value=2 * 10**12))
    if kind == "double":
        return draw(st.floats(min_value=0.1, max_value=99.0, allow_nan=False))
    if kind == "int":
        return draw(st.integers(min_value=10**6, max_value=10**9))
    if isinstance(kind, dict) and kind.get("type") == "record":
        return {f["name"]: _value_for(f["type"], draw) for f in kind["fields"]}
    if isinstance(kind, dict) and kind.get("type") == "array":
        return []
    if isinstance(kind, dict):  # a logical type over a primitive
        return _value_for(kind["type"], draw)
    return None


@st.composite
def records(draw: Any, d: Dataset) -> dict[str, Any]:
    """A record of ``d`` with a distinct value in every field, and the matching outcome for a linked dataset."""
    record = {f["name"]: _value_for(f["type"], draw) for f in d.avro["fields"] if f["name"] not in ("header", "findings")}
    if any(f["name"] == "findings" for f in d.avro["fields"]):
        record["findings"] = []
    record["header"] = {"event_id": draw(_TEXT), "source_system": "src", "source_key": str(record[d.key]),
                        "source_version": "1", "ingested_at": 5}
    return record


@st.composite
def approvals(draw: Any, d: Dataset, agency: str, schema_id: int, version: int, other_key: bytes = b"") -> Subscription:
    offered = list(d.shared_types())
    fields = draw(st.lists(st.sampled_from(offered), min_size=1, max_size=len(offered), unique=True))
    verdicts = tuple(draw(st.lists(st.sampled_from(list(Verdict)), min_size=1, unique=True)))
    return Subscription(subscription_id=f"{agency}:{d.name}", agency=agency, dataset=d.name, fields=tuple(fields),
                        topic=f"share.{agency}.x.v1", schema_id=schema_id, verdicts=verdicts,
                        pseudonym_key=draw(st.binary(min_size=32, max_size=32).filter(lambda k: k != other_key)),
                        key_version=version)


@st.composite
def row_filters(draw: Any, d: Dataset, record: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """No filter, or one on a scalar field of the record: its own value (admits) and/or another one."""
    scalars = [name for name in d.shared_types() if isinstance(record.get(name), (str, int))]
    if not scalars or not draw(st.booleans()):
        return {}
    name = draw(st.sampled_from(scalars))
    values = draw(st.lists(st.sampled_from([str(record[name]), draw(_TEXT)]), min_size=1, unique=True))
    return {name: tuple(values)}


def _texts(value: Any) -> list[str]:
    """Every string (and whole number, as text) inside a field's value."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, str):
        return [value]
    return [str(value)] if isinstance(value, int) and not isinstance(value, bool) else []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_nothing_outside_the_approval_is_in_the_bytes_delivered(data: st.DataObject, datasets: dict[str, Dataset]) -> None:
    assert set(SHAREABLE) < set(datasets) and {d.role for d in datasets.values()} == {Role.LINKED, Role.PLAIN}
    d = datasets[data.draw(st.sampled_from(sorted(datasets)))]
    record = data.draw(records(d))
    codec = Codec()
    codec.add(RESULT_ID, contract("vn.gsp.match.MatchResult"))
    codec.add(RECORD_ID, d.avro)
    a = data.draw(approvals(d, "agency-a", SHARE_IDS, 1))
    b = data.draw(approvals(d, "agency-b", SHARE_IDS + 1, 1, a.pseudonym_key))  # every agency has its own secret
    # Row filters on any shareable field of the record, approved or not, that admit the record or hold it back.
    a, b = (dataclasses.replace(sub, row_filter=data.draw(row_filters(d, record))) for sub in (a, b))
    for sub in (a, b):
        codec.add(sub.schema_id, projected_schema(d, sub.agency, list(sub.fields), contract("vn.gsp.common.EventHeader")))
    stage = ShareStage(codec, lambda _: [a, b], datasets=datasets)

    personal_id = verdict = None
    platform_ids = [record["header"]["event_id"]]
    if d.role is Role.LINKED:
        personal_id = data.draw(st.one_of(st.none(), _TEXT))
        verdict = data.draw(st.sampled_from(list(Verdict)))
        platform_ids.append(data.draw(_TEXT))
        value = codec.encode(RESULT_ID, {
            "header": {**record["header"], "event_id": platform_ids[-1]}, "dataset": d.name,
            "source_key": record["header"]["source_key"], "verdict": verdict, "personal_id": personal_id,
            "score": 1.0, "record": codec.encode(RECORD_ID, record)})
        delivered = stage.process(value)
        view = {**record, "personal_id": personal_id, "verdict": verdict}
    else:
        delivered = stage.process_clean(d.name, codec.encode(RECORD_ID, record))
        view = record

    for sub in (a, b):  # selection: exactly the subscriptions whose verdicts and row filter admit the record
        admitted = (d.role is not Role.LINKED or view["verdict"] in sub.verdicts) and all(
            str(view.get(name)) in values for name, values in sub.row_filter.items())
        assert admitted == any(s is sub for _, s, _ in delivered), (sub.row_filter, sub.verdicts)
    for (_, key, shared), sub, reported in delivered:
        # What the audit ledger is told stays inside the platform; the agency's message carries no header of ours.
        assert reported["agency_event_id"].encode() in shared and reported["personal_id"] == personal_id
        message = key + b"\x00" + shared
        allowed = [t for name in sub.fields for t in _texts(view.get(name))]
        hidden = [t for name, v in view.items() if name not in sub.fields and name != "header" for t in _texts(v)]
        hidden += [*platform_ids, record["header"]["source_key"]]
        if personal_id is not None:
            hidden.append(personal_id)
        for text in hidden:
            if any(text in shown for shown in allowed):
                continue  # the same value is also in an approved field: the agency was approved for it
            assert text.encode() not in message, (sub.fields, text)

    # Two agencies given the same record share no identifier they were not both approved for.
    if len(delivered) == 2:
        (_, key_a, value_a), _, _ = delivered[0]
        (_, key_b, value_b), _, _ = delivered[1]
        got_a, got_b = codec.decode(value_a)[1], codec.decode(value_b)[1]
        assert got_a["header"]["event_id"] != got_b["header"]["event_id"]
        if got_a["person_key"] is not None and "personal_id" not in set(a.fields) & set(b.fields):
            assert got_a["person_key"] != got_b["person_key"] and key_a != key_b
