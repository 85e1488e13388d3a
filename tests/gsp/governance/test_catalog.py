from gsp.governance.catalog import DATASETS, platform_topics, subject_schemas, subjects
from schemas.codec import contract
from schemas.datasets import Dataset


def test_the_catalog_is_the_declared_datasets() -> None:
    assert list(DATASETS) == ["population.citizen", "telecom.subscriber"]
    assert all(isinstance(d, Dataset) for d in DATASETS.values()) and DATASETS.get("health.clinic") is None
    assert [d.name for d in DATASETS.values() if d.linked] == ["telecom.subscriber"]


def test_only_linked_datasets_get_match_and_review_topics() -> None:
    declared = platform_topics(partitions=3)
    assert declared["match.telecom.subscriber.v1"] == (3, {}) and "review.telecom.subscriber.v1" in declared
    assert not any(t.startswith(("match.population.", "review.population.")) for t in declared)
    assert {"raw.population.citizen.v1", "clean.population.citizen.v1", "quarantine.population.citizen.v1"} <= set(declared)
    assert subjects()["clean.telecom.subscriber.v1-value"] == "vn.gsp.telecom.Subscriber"
    assert "match.population.citizen.v1-value" not in subjects()


def test_every_subject_has_a_self_contained_schema() -> None:
    schemas = subject_schemas()
    assert schemas.keys() == subjects().keys()
    assert schemas["raw.telecom.subscriber.v1-value"] == contract("vn.gsp.telecom.Subscriber")
