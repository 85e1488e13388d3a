import json

from gsp.governance.catalog import DATASETS, platform_topics, subject_schemas, subjects
from gsp.governance.listing import entry, subscriber_counts
from schemas.codec import contract
from schemas.datasets import Dataset, Sensitivity


def test_the_catalog_is_the_declared_datasets() -> None:
    assert list(DATASETS) == ["electricity.customer", "insurance.participant", "population.citizen",
                              "population.event", "telecom.subscriber"]
    assert all(isinstance(d, Dataset) for d in DATASETS.values()) and DATASETS.get("health.clinic") is None
    assert [d.name for d in DATASETS.values() if d.linked] == ["electricity.customer", "insurance.participant",
                                                                "telecom.subscriber"]


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


def test_every_shipped_dataset_has_an_entry_true_to_its_declaration() -> None:
    for d in DATASETS.values():
        found = entry(d)

        assert (found.name, found.owner, found.source_system, found.role, found.key) == \
            (d.name, d.owner, d.source_system, d.role, d.key)
        assert found.freshness_days * 86_400 == d.quality.freshness_s and found.delivery_s == d.quality.delivery_s
        if d.shareable:
            assert {f.name: f.sensitivity for f in found.fields} == dict(d.sensitivity)
            assert {f.name: f.type for f in found.fields} == d.shared_types()
            assert sum(found.sensitivity.values()) == len(d.sensitivity)
        else:
            assert found.fields == () and set(found.sensitivity.values()) == {0}


def test_an_entry_describes_fields_from_the_contract_and_matching_outcomes_from_the_platform() -> None:
    fields = {f.name: f for f in entry(DATASETS["telecom.subscriber"]).fields}

    assert fields["msisdn"].description == "Mobile number; 10-digit national form after cleaning"
    assert fields["msisdn"].sensitivity is Sensitivity.PERSONAL and fields["carrier"].sensitivity is Sensitivity.INTERNAL
    assert fields["subscriber_name"].description is None
    assert fields["personal_id"].type == ["null", "string"] and fields["match_score"].type == "double"
    assert all(fields[name].description for name in ("personal_id", "verdict", "match_score"))


def test_a_non_shareable_dataset_is_listed_with_no_field_offered() -> None:
    citizen = entry(DATASETS["population.citizen"])

    assert citizen.shareable is False and citizen.fields == ()
    assert citizen.summary()["sensitivity"] == {"public": 0, "internal": 0, "personal": 0, "sensitive": 0}


def test_subscribers_are_the_distinct_agencies_subscribed() -> None:
    subscriptions = [{"agency": "so-y-te", "dataset": "telecom.subscriber"},
                     {"agency": "bo-cong-an", "dataset": "telecom.subscriber"},
                     {"agency": "bo-cong-an", "dataset": "population.citizen"}]

    counts = subscriber_counts(subscriptions)

    assert counts == {"telecom.subscriber": 2, "population.citizen": 1}
    assert entry(DATASETS["telecom.subscriber"], subscribers=counts["telecom.subscriber"]).summary()["subscribers"] == 2


def test_scores_are_the_latest_snapshots_and_none_before_the_first() -> None:
    scored = entry(DATASETS["telecom.subscriber"], scores={"correct": 0.97, "complete": 1.0, "clean": 0.9, "live": None})
    unscored = entry(DATASETS["telecom.subscriber"])

    assert scored.scores == {"correct": 0.97, "complete": 1.0, "clean": 0.9, "live": None}
    assert unscored.scores == {"correct": None, "complete": None, "clean": None, "live": None}


def test_an_entry_reads_back_from_json_as_it_was() -> None:
    shown = json.loads(json.dumps(entry(DATASETS["telecom.subscriber"], subscribers=1).as_json()))

    assert shown["role"] == "linked" and shown["subscribers"] == 1 and shown["sensitivity"]["personal"] == 6
    assert shown["fields"][0] == {"name": "msisdn", "type": "string", "sensitivity": "personal",
                                  "description": "Mobile number; 10-digit national form after cleaning"}
