"""The registry index split by personal id: merged partials are the whole index's verdicts."""

from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import pytest
from kafka.partitioner.default import murmur2

from gsp.tools.synth.linkage import generate_linkage
from schemas.envelope import Verdict
from streams.linkage import LinkageError, Model, RegistryIndex, score_batch
from streams.linkage.partition import Partials, PartitionIndex, TermCounts, merge, partition_of, score_partial
from streams.matching import DEFAULT_MODEL

MODEL = Model.load(DEFAULT_MODEL)
Rows = list[dict[str, str]]


@cache
def data() -> Any:
    return generate_linkage(3000, seed=11)


def whole_index(registry: Rows) -> RegistryIndex:
    """The single index, filled in personal-id order: its tie rule (first indexed) is then the partitions'."""
    index = RegistryIndex(MODEL.settings)
    index.add_many(sorted(registry, key=lambda row: row["personal_id"]))
    return index


def split(registry: Rows, partitions: int) -> list[PartitionIndex]:
    parts = [PartitionIndex(MODEL.settings) for _ in range(partitions)]
    for row in registry:
        parts[partition_of(row["personal_id"], partitions)].add(row)
    exchange(parts)
    return parts


def exchange(parts: list[PartitionIndex]) -> None:
    """What the workers do through the counts topic: add up every partition's counts, hand the total to each."""
    total = TermCounts.total(part.local_counts() for part in parts)
    for part in parts:
        part.use_counts(total)


def scored(parts: list[PartitionIndex], records: Rows) -> tuple[list[Any], list[list[Partials]]]:
    links, partials = [], []
    for start in range(0, len(records), 1000):
        batch = [score_partial(part, MODEL, records[start:start + 1000]) for part in parts]
        partials.append(batch)
        links.extend(merge(MODEL, batch))
    return links, partials


def reference(index: RegistryIndex, records: Rows) -> list[Any]:
    return [link for start in range(0, len(records), 1000) for link in score_batch(index, MODEL, records[start:start + 1000])]


def assert_same(merged: list[Any], expected: list[Any]) -> None:
    assert len(merged) == len(expected)
    for got, want in zip(merged, expected, strict=True):
        assert replace(got, match_probability=0.0) == replace(want, match_probability=0.0)
        assert abs(got.match_probability - want.match_probability) <= 1e-9


def test_partition_of_is_kafkas_default_partitioner() -> None:
    ids = [row["personal_id"] for row in data().registry[:500]] + ["", "a", "ab", "abc", "hòa"]
    for partitions in (1, 3, 4, 12):
        assert [partition_of(pid, partitions) for pid in ids] == [
            (murmur2(pid.encode()) & 0x7FFFFFFF) % partitions for pid in ids]


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_merged_partials_equal_score_batch_on_the_whole_index(partitions: int) -> None:
    registry, records = data().registry, data().records
    parts = split(registry, partitions)
    assert sum(part.entries for part in parts) == len(registry)
    assert all(len(part) == len(registry) for part in parts)  # the prior's N is the registry's
    merged, partials = scored(parts, records)
    assert_same(merged, reference(whole_index(registry), records))
    assert sum(link.verdict is Verdict.MATCHED for link in merged) > len(records) // 2
    if partitions > 1:  # many records find candidates in more than one partition
        spread = sum(int((np.sum([p.candidates > 0 for p in batch], axis=0) >= 2).sum()) for batch in partials)
        assert spread > len(records) // 10


def test_term_frequencies_are_the_registrys_not_the_partitions() -> None:
    registry = data().registry
    whole, parts = whole_index(registry), split(registry, 3)
    column, vocab = "full_name.family.exact", whole.vocabs["name.exact"]
    for part in parts:
        codes = part.column(column)[part.live_slots()]
        strings = [part.vocabs["name.exact"].strings[c] for c in codes.tolist()]
        wanted = whole.term_frequency(column, np.array([vocab.codes[s] for s in strings]))
        assert np.array_equal(part.term_frequency(column, codes), wanted)
    alone = PartitionIndex(MODEL.settings)
    alone.add_many(row for row in registry if partition_of(row["personal_id"], 3) == 0)
    codes = alone.column(column)[alone.live_slots()]
    own = alone.term_frequency(column, codes)  # no registry counts yet: the partition's own shares differ
    alone.use_counts(parts[0].counts)  # type: ignore[arg-type]
    assert not np.array_equal(own, alone.term_frequency(column, codes))
    assert np.array_equal(alone.term_frequency(column, codes), parts[0].term_frequency(column, codes))


def twin(personal_id: str, phone: str) -> dict[str, str]:
    return {"personal_id": personal_id, "full_name": "Quách Thị Thu Hà", "birth_date": "1990-05-03", "phone": phone,
            "province_code": "01", "sex": "FEMALE"}


def test_twins_tie_goes_to_the_smaller_personal_id_whatever_the_split() -> None:
    first, second = "001190000001", "001190000002"
    assert partition_of(first, 2) != partition_of(second, 2)
    registry = [twin(second, "0912000002"), twin(first, "0912000001")]
    record = {"record_id": "r1", "subscriber_name": "Quách Thị Thu Hà", "birth_date": "03/05/1990", "province": "Hà Nội"}
    expected = reference(whole_index(registry), [record])
    assert expected[0].personal_id == first and expected[0].candidates == 2
    assert expected[0].verdict is not Verdict.MATCHED  # two people fit equally: nobody is certain
    for partitions in (1, 2):
        assert_same(scored(split(registry, partitions), [record])[0], expected)


def test_an_entry_updated_or_removed_in_its_partition() -> None:
    registry, records = data().registry, data().records
    moved, dead = registry[10], registry[20]
    renamed = moved | {"full_name": "Lò Văn Khải", "birth_date": "1931-01-01", "phone": ""}
    whole, parts = whole_index(registry), split(registry, 3)
    for index in (whole, parts[partition_of(moved["personal_id"], 3)]):
        index.update(renamed)
    assert whole.remove(dead["personal_id"])
    assert parts[partition_of(dead["personal_id"], 3)].remove(dead["personal_id"])
    assert not any(part.remove(dead["personal_id"]) for part in parts)  # it lived in one partition only
    exchange(parts)
    assert sum(part.entries for part in parts) == len(whole) == len(registry) - 1
    about = {rid for rid, pid in data().links if pid in (moved["personal_id"], dead["personal_id"])}
    assert about
    chosen = [r for r in records if r["record_id"] in about] + records[:1000]
    merged, _ = scored(parts, chosen)
    assert_same(merged, reference(whole, chosen))
    assert all(link.personal_id != dead["personal_id"] for link in merged)


def test_a_partition_needs_the_registrys_counts_before_scoring() -> None:
    part = PartitionIndex(MODEL.settings)
    part.add(twin("001190000001", "0912000001"))
    with pytest.raises(LinkageError, match="use_counts"):
        score_partial(part, MODEL, [{"record_id": "r1", "subscriber_name": "Quách Thị Thu Hà"}])


def test_partials_of_different_batches_are_not_merged() -> None:
    parts = split([twin("001190000001", "0912000001")], 1)
    one = score_partial(parts[0], MODEL, [{"record_id": "r1"}])
    other = score_partial(parts[0], MODEL, [{"record_id": "r2"}])
    with pytest.raises(ValueError, match="different batches"):
        merge(MODEL, [one, other])
