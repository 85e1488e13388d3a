from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import pytest

from gsp.tools.synth import CITIZEN_DATASET, SUBSCRIBER_DATASET, Synthetic, generate
from gsp.tools.synth.names import fold_diacritics
from schemas.datasets import dataset as declared
from schemas.envelope import Verdict
from streams import reference
from streams.clean import clean_citizen, clean_subscriber, name_key
from streams.linkage import Model
from streams.matching import DEFAULT_MODEL, Linker, Matcher, RegistryEntries

TODAY = date(2025, 9, 1)


@cache
def synthetic(records: int = 3000, seed: int = 7) -> Synthetic:
    return generate(records, seed=seed, today=TODAY)


def as_citizen(row: dict[str, Any]) -> dict[str, Any]:
    """The Avro shape of a population row, as the connector publishes it."""
    record = {k: v for k, v in row.items() if k not in ("province_code", "ward_code", "address_line")}
    record["residence"] = {k: row[k] for k in ("province_code", "ward_code", "address_line")}
    return record


def pipeline_counts(data: Synthetic) -> dict[str, Any]:
    """Clean both sources, verify each subscriber by id, name and birth date, search for the rest."""
    quarantined: dict[str, Counter[str]] = {CITIZEN_DATASET: Counter(), SUBSCRIBER_DATASET: Counter()}
    registry: dict[str, dict[str, Any]] = {}
    for row in data.citizens:
        cleaned = clean_citizen(as_citizen(row), today=TODAY)
        if cleaned.rejection:
            quarantined[CITIZEN_DATASET][cleaned.rejection.rule] += 1
        else:
            registry[cleaned.record["personal_id"]] = cleaned.record
    linker = Linker(Model.load(DEFAULT_MODEL))
    entries = RegistryEntries(declared(CITIZEN_DATASET), [declared(SUBSCRIBER_DATASET)])
    for person in registry.values():
        linker.apply_entry(*entries.entry(person))
    matcher = Matcher(declared(SUBSCRIBER_DATASET), linker=linker)
    unknown: list[dict[str, Any]] = []
    match: Counter[str] = Counter()
    by_carrier: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    for row in data.subscribers:
        if row["subscriber_name"] is None:  # the connector holds back NULLs in required columns
            quarantined[SUBSCRIBER_DATASET]["schema.required"] += 1
            continue
        cleaned = clean_subscriber(row, today=TODAY)
        if cleaned.rejection:
            quarantined[SUBSCRIBER_DATASET][cleaned.rejection.rule] += 1
            continue
        subscriber = cleaned.record
        citizen = registry.get(subscriber["id_number"]) if len(subscriber["id_number"]) == 12 else None
        if citizen is None:
            unknown.append({**subscriber, "header": {"source_key": row["msisdn"]}})
            continue
        disagreeing = [f for f, same in (
            ("full_name", name_key(subscriber["subscriber_name"]) == name_key(citizen["full_name"])),
            ("birth_date", subscriber["birth_date"] == citizen["birth_date"]),
        ) if not same]
        if disagreeing:
            match["MISMATCH"] += 1
            fields.update(disagreeing)
        else:
            match["MATCHED"] += 1
            by_carrier[subscriber["carrier"]] += 1
    proposed = {}
    for subscriber, link in zip(unknown, linker.search([matcher.linkage_record(s) for s in unknown]), strict=True):
        likely = link.personal_id is not None and link.match_probability >= linker.review_probability
        match[Verdict.POSSIBLE if likely else Verdict.NO_MATCH] += 1
        if likely:
            proposed[subscriber["header"]["source_key"]] = link.personal_id
    return {
        "proposed": proposed,
        "quarantined": {dataset: dict(rules) for dataset, rules in quarantined.items()},
        "match": dict(match),
        "matched_by_carrier": dict(by_carrier),
        "mismatch_fields": dict(fields),
    }


def test_the_pipeline_counts_equal_the_truth_exactly():
    data = synthetic()
    truth = data.truth.to_json()
    assert truth["citizens"] == len(data.citizens) == 3000
    assert truth["subscribers"] == len(data.subscribers) == 3000
    counts = pipeline_counts(data)
    assert counts.pop("proposed") == data.links  # the search proposes the right person, every time
    assert counts == {k: truth[k] for k in counts}


def test_every_kind_of_outcome_occurs():
    truth = synthetic().truth
    assert set(truth.quarantined[CITIZEN_DATASET]) == {"id.prefix", "id.century", "birthdate.invalid"}
    assert set(truth.quarantined[SUBSCRIBER_DATASET]) == {
        "schema.required", "id.shape", "id.prefix", "id.century", "phone.invalid", "birthdate.invalid"}
    assert set(truth.match) == {"MATCHED", "MISMATCH", "POSSIBLE", "NO_MATCH"}
    assert set(truth.mismatch_fields) == {"full_name", "birth_date"}


def test_the_truth_adds_up():
    truth = synthetic().truth
    assert truth.subscribers == sum(truth.quarantined[SUBSCRIBER_DATASET].values()) + sum(truth.match.values())
    assert sum(truth.matched_by_carrier.values()) == truth.match["MATCHED"]
    assert sum(truth.mismatch_fields.values()) == truth.match["MISMATCH"]


def test_the_mix_is_roughly_as_designed():
    truth = generate(10_000, seed=3, today=TODAY).truth
    citizen_rejects = sum(truth.quarantined[CITIZEN_DATASET].values())
    assert 50 <= citizen_rejects <= 150
    assert 0.72 <= truth.match["MATCHED"] / truth.subscribers <= 0.82
    assert 400 <= sum(truth.quarantined[SUBSCRIBER_DATASET].values()) <= 600


def test_generation_is_deterministic_for_a_seed():
    assert generate(500, seed=11, today=TODAY) == generate(500, seed=11, today=TODAY)
    assert generate(500, seed=11, today=TODAY).citizens != generate(500, seed=12, today=TODAY).citizens


def test_personal_ids_are_unique_and_consistent_with_the_person():
    rows = synthetic().citizens
    ids = ["".join(r["personal_id"].split()) for r in rows]
    assert len(set(ids)) == len(ids)
    clean = [r for r in rows if not clean_citizen(as_citizen(r), today=TODAY).rejection]
    for row in clean:
        personal_id = "".join(row["personal_id"].split())
        assert personal_id[:3] == row["birth_registration_province"]
        year = clean_citizen(as_citizen(row), today=TODAY).record["birth_date"][:4]
        assert personal_id[4:6] == year[2:]


def test_residence_uses_real_2025_units():
    for row in synthetic().citizens:
        ward = reference.ward_2025(row["ward_code"])
        assert ward is not None and ward.province_code == row["province_code"]


def test_citizen_rows_have_no_nulls_and_flat_columns():
    columns = {"personal_id", "full_name", "birth_date", "sex", "birth_registration_province", "province_code",
               "ward_code", "address_line", "phone", "status", "updated_at"}
    rows = synthetic().citizens
    assert all(set(r) == columns and None not in r.values() for r in rows)
    stamps = [r["updated_at"] for r in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_msisdns_are_unique_after_cleaning():
    numbers = [clean_subscriber(r, today=TODAY).record["msisdn"] for r in synthetic().subscribers
               if r["subscriber_name"] is not None and not clean_subscriber(r, today=TODAY).rejection]
    assert len(set(numbers)) == len(numbers)


def test_family_names_follow_realistic_frequencies():
    families = Counter(r["full_name"].split()[0] for r in generate(5000, seed=5, today=TODAY).citizens)
    assert 0.33 <= families["Nguyễn"] / 5000 <= 0.43
    assert families["Trần"] > families["Phạm"] > families["Đặng"]


def test_folding_strips_marks_and_d_bar():
    assert fold_diacritics("Đặng Thị Hương") == "Dang Thi Huong"
    assert fold_diacritics("Lan Anh") == "Lan Anh"


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_findings_the_generator_promises_are_what_cleaning_reports(seed: int) -> None:
    synthetic = generate(1500, seed=seed)
    got: dict[str, Counter[str]] = {"population.citizen": Counter(), "telecom.subscriber": Counter()}
    for row in synthetic.citizens:
        record = {**row, "residence": {"province_code": row["province_code"], "ward_code": row["ward_code"],
                                       "address_line": row["address_line"]}}
        got["population.citizen"].update(f.rule for f in clean_citizen(record).findings)
    for row in synthetic.subscribers:
        if row["subscriber_name"] is not None:  # the connector quarantines these before cleaning
            got["telecom.subscriber"].update(f.rule for f in clean_subscriber(row).findings)
    for dataset, rules in synthetic.truth.findings().items():
        assert {rule: got[dataset][rule] for rule in rules} == rules
