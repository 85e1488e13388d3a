from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import pytest

from connectors.sql_source import map_columns
from gsp.tools.synth.seed import Expected, Seed, generate_seed
from schemas.datasets import Dataset
from schemas.datasets import dataset as declared
from schemas.envelope import Verdict
from streams import reference
from streams.contracts import contract_of
from streams.linkage import Model
from streams.matching import DEFAULT_MODEL, Linker, Matcher, RegistryEntries
from streams.matching.exact import check

TODAY = date(2025, 9, 1)
DATASETS = ("population.citizen", "population.event", "telecom.subscriber", "electricity.customer",
            "insurance.participant")
LINKED = ("telecom.subscriber", "electricity.customer", "insurance.participant")


@cache
def seed(records: int = 2000, number: int = 7) -> Seed:
    return generate_seed(records, seed=number, today=TODAY)


def rows_of(data: Seed, dataset: str) -> list[dict[str, Any]]:
    return [row for t in data.tables if t.dataset == dataset for row in t.rows]


def required(d: Dataset) -> list[str]:
    """Top-level fields the connector holds back when NULL (no default, not nullable)."""
    return [f["name"] for f in d.avro["fields"] if f["name"] != "header" and "default" not in f
            and not (isinstance(f["type"], list) and "null" in f["type"])]


@cache
def cleaned(records: int = 2000, number: int = 7) -> dict[str, list[tuple[str, str | None, Any]]]:
    """dataset -> (source key, quarantine rule or None, Cleaned or None) per row, as connector and clean stage do."""
    data = seed(records, number)
    out: dict[str, list[tuple[str, str | None, Any]]] = {}
    for name in DATASETS:
        d = declared(name)
        contract = contract_of(d)
        results = []
        for row in rows_of(data, name):
            record = map_columns(row, d.source_columns)
            key = str(row[d.source_columns.get(d.key, d.key)])
            if any(record.get(f) is None for f in required(d)):
                results.append((key, "schema.required", None))
                continue
            result = contract.clean(record, today=TODAY)
            results.append((key, result.rejection.rule if result.rejection else None, result))
        out[name] = results
    return out


def by_key(data: Seed, dataset: str) -> dict[str, Expected]:
    return {e.source_key: e for e in data.truth.expected[dataset]}


def test_generation_is_deterministic_for_a_seed():
    one, two = generate_seed(300, seed=3, today=TODAY), generate_seed(300, seed=3, today=TODAY)
    assert one.tables == two.tables
    assert one.truth.to_json() == two.truth.to_json()
    assert generate_seed(300, seed=4, today=TODAY).tables != one.tables


def test_every_dataset_has_its_tables_and_sizes_scale_with_records():
    data = seed()
    assert [(t.name, t.dataset, t.source_system) for t in data.tables] == [
        ("citizen", "population.citizen", "population.csdlqg"),
        ("population_event", "population.event", "population.csdlqg"),
        ("subscriber_viettel", "telecom.subscriber", "telecom.viettel"),
        ("subscriber_vinaphone", "telecom.subscriber", "telecom.vinaphone"),
        ("subscriber_mobifone", "telecom.subscriber", "telecom.mobifone"),
        ("evn_customer", "electricity.customer", "evn.cmis"),
        ("bhxh_participant", "insurance.participant", "bhxh.csdl"),
    ]
    assert data.truth.published == {"population.citizen": 2000, "population.event": 200, "telecom.subscriber": 2000,
                                    "electricity.customer": 500, "insurance.participant": 500}
    small = generate_seed(10, today=TODAY)
    assert all(count >= 5 for count in small.truth.published.values())


def test_every_row_has_updated_at_and_a_column_per_field_of_its_contract():
    for t in seed().tables:
        if t.dataset == "population.citizen":
            continue  # its residence is three columns, tested with `generate`
        fields = {f["name"] for f in declared(t.dataset).avro["fields"]} - {"header", "findings"}
        assert all(set(row) == fields and isinstance(row["updated_at"], int) for row in t.rows), t.name


def test_the_truth_adds_up():
    truth = seed().truth
    for name in DATASETS:
        expected = truth.expected[name]
        keys = [e.source_key for e in expected]
        assert len(keys) == len(set(keys)) == truth.published[name] == sum(truth.injected[name].values())
        outcomes = Counter(e.outcome for e in expected)
        assert outcomes["QUARANTINED"] == sum(truth.quarantined[name].values())
        assert Counter(e.detail for e in expected if e.outcome == "QUARANTINED") == Counter(truth.quarantined[name])
        if name in LINKED:
            assert {k: v for k, v in outcomes.items() if k != "QUARANTINED"} == truth.match[name]
            assert set(truth.links[name]) == {e.source_key for e in expected if e.outcome == Verdict.POSSIBLE}
            assert truth.review(name) == outcomes[Verdict.POSSIBLE] + outcomes[Verdict.MISMATCH] > 0
    assert set(truth.quarantined) == set(DATASETS)


def test_every_kind_of_dirt_and_outcome_occurs():
    truth = seed().truth
    for name in LINKED:
        assert set(truth.match[name]) == {"MATCHED", "MISMATCH", "POSSIBLE", "NO_MATCH"}
    assert {"code.invalid", "sex.invalid", "schema.required"} <= set(truth.quarantined["insurance.participant"])
    assert "code.invalid" in truth.quarantined["electricity.customer"]
    assert {"legacy_units", "legacy_previous", "id.prefix"} <= set(truth.injected["population.event"])
    assert {"yyyymmdd", "sex_digit", "sex_word"} <= set(truth.injected["insurance.participant"])


@pytest.mark.parametrize("number", [7, 11])
def test_cleaning_quarantines_and_finds_exactly_what_the_truth_says(number: int) -> None:
    data, results = seed(2000, number), cleaned(2000, number)
    for name in DATASETS:
        expected = by_key(data, name)
        rules = {key: rule for key, rule, _ in results[name]}
        assert rules == {k: e.detail if e.outcome == "QUARANTINED" else None for k, e in expected.items()}, name
        found = Counter(f.rule for _, _, result in results[name] if result is not None for f in result.findings)
        assert {rule: found[rule] for rule in data.truth.findings[name]} == data.truth.findings[name], name


@pytest.mark.parametrize("name", ["population.event", *LINKED])
def test_expected_values_are_the_cleaned_values(name: str) -> None:
    expected = by_key(seed(), name)
    compared = 0
    for key, rule, result in cleaned()[name]:
        if rule is None:
            record = result.record
            assert {f: None if record[f] is None else str(record[f]) for f in expected[key].values} == expected[key].values
            compared += 1
    assert compared > 0.9 * len(expected)


def test_delivered_counts_the_rows_a_filter_admits():
    truth = seed().truth
    viettel = sum(1 for e in truth.expected["telecom.subscriber"]
                  if e.outcome == Verdict.MATCHED and e.values["carrier"] == "Viettel")
    assert truth.delivered("telecom.subscriber", {"carrier": ["Viettel"]}, None) == viettel > 0
    everyone = truth.delivered("telecom.subscriber", {}, ["MATCHED", "MISMATCH", "POSSIBLE", "NO_MATCH"])
    assert everyone == sum(truth.match["telecom.subscriber"].values())
    moves = sum(1 for e in truth.expected["population.event"] if e.outcome == "CLEAN" and e.values["event_type"] == "MOVE")
    assert truth.delivered("population.event", {"event_type": ["MOVE"]}, None) == moves > 0


def test_every_msisdn_belongs_to_its_carrier_and_is_unique():
    data = seed()
    expected = by_key(data, "telecom.subscriber")
    tables = [t for t in data.tables if t.dataset == "telecom.subscriber"]
    for t in tables:
        carrier = {"telecom.viettel": "Viettel", "telecom.vinaphone": "VinaPhone", "telecom.mobifone": "MobiFone"}
        assert {row["carrier"] for row in t.rows} == {carrier[t.source_system]}
        for row in t.rows:
            e = expected[str(row["msisdn"])]
            if e.outcome != "QUARANTINED":
                prefix = reference.mobile_prefix(str(e.values["msisdn"])[:3])
                assert prefix is not None and prefix.carrier == row["carrier"]
    shared = [e.values["msisdn"] for e in expected.values() if e.values]
    assert len(shared) == len(set(shared))


def test_each_carrier_has_its_own_dirt():
    data = seed()
    kinds = {t.source_system: Counter() for t in data.tables if t.dataset == "telecom.subscriber"}
    expected = by_key(data, "telecom.subscriber")
    for t in data.tables:
        if t.dataset == "telecom.subscriber":
            for row in t.rows:
                e = expected[str(row["msisdn"])]
                kinds[t.source_system][e.detail if e.outcome == "MISMATCH" else "other"] += 1
    share = {s: c["full_name"] / sum(c.values()) for s, c in kinds.items()}
    assert share["telecom.viettel"] > 2 * share["telecom.vinaphone"]


def verdicts(name: str, results: dict[str, list[tuple[str, str | None, Any]]]) -> tuple[Counter[str], dict[str, str]]:
    """The three-field check against the cleaned registry, and the search for ids the registry does not hold."""
    registry = {result.record["personal_id"]: result.record
                for _, rule, result in results["population.citizen"] if rule is None}
    d = declared(name)
    linker = Linker(Model.load(DEFAULT_MODEL))
    entries = RegistryEntries(declared("population.citizen"), [d])
    table = dict(entries.entry(person) for person in registry.values())
    for personal_id, entry in table.items():
        linker.apply_entry(personal_id, entry)
    matcher = Matcher(d, linker=linker)
    counts: Counter[str] = Counter()
    unknown: list[dict[str, Any]] = []
    for key, rule, result in results[name]:
        if rule is not None:
            continue
        record = result.record
        ref = {f: d.registry[f].value(record) for f in ("personal_id", "full_name", "birth_date")}
        outcome = check(ref["personal_id"], ref["full_name"], ref["birth_date"], table.get)
        if outcome.found:
            counts[outcome.verdict if not outcome.disagreeing else f"MISMATCH:{outcome.disagreeing[0]}"] += 1
        else:
            unknown.append({**record, "header": {"source_key": key}})
    proposed = {}
    for record, link in zip(unknown, linker.search([matcher.linkage_record(r) for r in unknown]), strict=True):
        likely = link.personal_id is not None and link.match_probability >= linker.review_probability
        counts[Verdict.POSSIBLE if likely else Verdict.NO_MATCH] += 1
        if likely:
            proposed[record["header"]["source_key"]] = link.personal_id
    return counts, proposed


@pytest.mark.parametrize("name", LINKED)
@pytest.mark.parametrize("number", [7, 11])
def test_verdicts_and_proposed_people_are_what_the_truth_says(name: str, number: int) -> None:
    data = seed(2000, number)
    counts, proposed = verdicts(name, cleaned(2000, number))
    want = Counter(e.outcome if e.outcome != Verdict.MISMATCH else f"MISMATCH:{e.detail}"
                   for e in data.truth.expected[name] if e.outcome != "QUARANTINED")
    assert counts == want
    assert proposed == data.truth.links[name]
