from schemas.datasets import dataset
from streams.clean import Finding
from streams.quality import QualityTally, merge, scores, worst_fields

NOW_S = 1_800_000_000.0
SUBSCRIBER = {"msisdn": "0912345678", "subscriber_name": "Lê Thị Thu", "id_number": "001185000001",
              "birth_date": "1985-01-02", "address": None, "updated_at": int((NOW_S - 3600) * 1000)}


def tally() -> QualityTally:
    return QualityTally.for_dataset(dataset("telecom.subscriber"))


def test_a_clean_fresh_complete_record_scores_one_except_the_missing_expected_field() -> None:
    t = tally()
    t.observe_clean(SUBSCRIBER, [], rejected=False, now_s=NOW_S)
    s = scores(t.snapshot_cells())
    assert s["correct"] == 1.0 and s["clean"] == 1.0 and s["live"] == 1.0
    assert s["complete"] == 0.8  # address is expected but absent: 4 of 5 fields present


def test_warnings_and_rejections_make_a_field_incorrect_fixes_do_not() -> None:
    t = tally()
    findings = [Finding("phone.normalize", "msisdn", "fix", "fixed"), Finding("id.prefix", "id_number", "reject", "bad")]
    t.observe_clean(SUBSCRIBER, findings, rejected=True, now_s=NOW_S)
    [failed] = [c for c in t.snapshot_cells() if c["dimension"] == "correct" and c["failures"]]
    assert failed["field"] == "id_number"
    assert t.rules == {"phone.normalize": 1, "id.prefix": 1}
    assert scores(t.snapshot_cells())["clean"] < 1.0  # quarantined


def test_duplicates_and_conflicts_count_against_clean() -> None:
    t = tally()
    for _ in range(2):
        t.observe_clean(SUBSCRIBER, [], rejected=False, now_s=NOW_S)
    t.observe_clean({**SUBSCRIBER, "subscriber_name": "Lê Thị Thủy"}, [], rejected=False, now_s=NOW_S)
    cells = {(c["field"], c["dimension"]): c for c in t.snapshot_cells()}
    assert cells[("record", "clean")]["failures"] == 1      # the identical resend
    assert cells[("msisdn", "clean")]["failures"] == 1      # same key and version, different content


def test_stale_records_late_deliveries_and_registry_disagreement() -> None:
    t = tally()
    t.observe_clean({**SUBSCRIBER, "updated_at": int((NOW_S - 400 * 86400) * 1000)}, [], rejected=False, now_s=NOW_S)
    t.observe_delivery(5.0)
    t.observe_delivery(600.0)
    t.observe_match(["personal_id", "full_name"], ["birth_date"])
    cells = {(c["field"], c["dimension"]): c for c in t.snapshot_cells()}
    assert cells[("updated_at", "live")]["failures"] == 1
    assert (cells[("delivery", "live")]["checks"], cells[("delivery", "live")]["failures"]) == (2, 1)
    assert cells[("birth_date", "correct")]["failures"] == 1 and cells[("subscriber_name", "correct")]["failures"] == 0


def test_connector_quarantine_counts_against_completeness_and_workers_merge() -> None:
    a, b = tally(), tally()
    a.observe_clean(SUBSCRIBER, [], rejected=False, now_s=NOW_S)
    b.observe_connector_issue("schema.required", "subscriber_name")
    snaps = [{"records": t.records, "rules": dict(t.rules), "cells": t.snapshot_cells()} for t in (a, b)]
    merged = merge(snaps)
    assert merged["records"] == 2 and merged["rules"] == {"schema.required": 1}
    worst = worst_fields(merged["cells"])
    assert any(c["field"] == "subscriber_name" and c["dimension"] == "complete" and c["failures"] == 1 for c in worst)
    assert scores(merged["cells"])["complete"] < scores(snaps[0]["cells"])["complete"]
