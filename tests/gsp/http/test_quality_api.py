"""The quality scorecards over HTTP, through the control plane's real app on a real database: snapshots as the
recorder writes them (tallies of records cleaned through the dataset's contract), the desks' open items, the
trend oldest first, the field x dimension matrix and the worst rules with the contract's fields and severities."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from gsp.desks.quarantine import quarantine_items
from gsp.desks.review import review_items
from gsp.governance.catalog import DATASETS
from gsp.governance.control import ControlPlane
from gsp.governance.identity import Role
from streams.clean import clean_subscriber
from streams.quality import DIMENSIONS, QualityTally, scores
from tests.gsp.http.test_app import call, callers  # noqa: F401  (callers: the autouse fixture call needs)

SUBSCRIBER = "telecom.subscriber"
GOOD = {"msisdn": "0912345678", "carrier": "viettel", "subscriber_name": "Lê Thị Thu", "id_number": "001185000001",
        "birth_date": "1985-01-02", "address": None}


def tally_of(records: list[dict[str, object]], *, connector_issues: int = 0) -> QualityTally:
    """A real tally: each record cleaned through the subscriber contract and observed as the clean stage does."""
    now_s = time.time()
    tally = QualityTally.for_dataset(DATASETS[SUBSCRIBER])
    for i, record in enumerate(records):
        cleaned = clean_subscriber({**record, "msisdn": f"09123456{i:02d}", "updated_at": int((now_s - 60) * 1000)})
        tally.observe_clean(cleaned.record, cleaned.findings, rejected=cleaned.rejection is not None, now_s=now_s)
    for _ in range(connector_issues):
        tally.observe_connector_issue("schema.required", "subscriber_name")
    return tally


def record_snapshot(engine: sa.Engine, dataset: str, taken_at: int, tally: QualityTally) -> dict[str, float | None]:
    """A snapshot row as `gsp.desks.quality.QualityRecorder.record` writes it (the table the app's first read made)."""
    snapshots = sa.Table("quality_snapshots", sa.MetaData(), autoload_with=engine)
    cells = tally.snapshot_cells()
    with engine.begin() as conn:
        conn.execute(sa.insert(snapshots).values(dataset=dataset, taken_at=taken_at, records=tally.records,
                                                 scores=json.dumps(scores(cells)), cells=json.dumps(cells),
                                                 rules=json.dumps(dict(tally.rules))))
    return scores(cells)


def open_items(desks: Path, dataset: str, *, quarantined: list[str], reviews: int) -> None:
    """Open items on the desks' database as their indexers store them (one released item, which is not open)."""
    engine = sa.create_engine(f"sqlite:///{desks}")
    now = int(time.time() * 1000)
    with engine.begin() as conn:
        for i, rule in enumerate([*quarantined, "id.shape"]):
            conn.execute(sa.insert(quarantine_items).values(
                event_id=uuid.uuid4().hex, dataset=dataset, stage="clean", rule=rule, field="id_number", reason="r",
                source_system="telecom.registry", source_key=str(i), source_version="1", original=b"{}",
                status="open" if i < len(quarantined) else "released", received_at=now))
        for i in range(reviews):
            conn.execute(sa.insert(review_items).values(
                item_id=uuid.uuid4().hex, dataset=dataset, source_key=str(i), personal_id="001185000001",
                verdict="POSSIBLE", score=3.5, levels="{}", agreeing_fields="[]", disagreeing_fields="[]", header="{}",
                record=b"{}", status="open", received_at=now))
    engine.dispose()


def test_every_dataset_has_its_scores_trend_open_items_and_freshness(url: str, control: ControlPlane,
                                                                      tmp_path: Path) -> None:
    status, empty = call(url + "/api/quality", "GET", role=Role.STEWARD)
    assert status == 200
    assert [c["dataset"] for c in empty] == sorted(DATASETS)
    assert all(c["scores"] == dict.fromkeys(DIMENSIONS) and c["trend"] == [] and c["records"] == 0 for c in empty)
    assert empty[0]["quarantine"] == 0 and empty[0]["review"] == 0

    first = record_snapshot(control.engine, SUBSCRIBER, 1_000, tally_of([GOOD]))
    grown = tally_of([GOOD, GOOD, {**GOOD, "id_number": "12"}], connector_issues=1)
    second = record_snapshot(control.engine, SUBSCRIBER, 2_000, grown)
    third = record_snapshot(control.engine, SUBSCRIBER, 3_000, grown)  # nothing new arrived
    open_items(tmp_path / "desks.db", SUBSCRIBER, quarantined=["id.shape", "schema.required"], reviews=3)

    status, cards = call(url + "/api/quality", "GET", role=Role.OPS)

    assert status == 200
    card = next(c for c in cards if c["dataset"] == SUBSCRIBER)
    assert card["scores"] == third and card["records"] == 4
    assert third["clean"] is not None and third["clean"] < 1.0 and first["clean"] == 1.0
    assert [(p["taken_at"], p["records"], p["scores"]) for p in card["trend"]] == [
        (1_000, 1, first), (2_000, 4, second), (3_000, 4, third)]
    assert card["quarantine"] == 2 and card["review"] == 3
    assert card["freshness"] == {"last_seen_at": 2_000, "snapshot_at": 3_000, "freshness_days": 365.0, "delivery_s": 60.0}
    other = next(c for c in cards if c["dataset"] == "population.event")
    assert other["quarantine"] == 0 and other["freshness"]["freshness_days"] == 30.0 and other["freshness"]["last_seen_at"] is None
    assert "matrix" not in card  # the list stays small: the matrix is the dataset's own page

    status, short = call(url + "/api/quality?points=2", "GET", role=Role.OWNER)
    assert status == 200
    assert [p["taken_at"] for p in next(c for c in short if c["dataset"] == SUBSCRIBER)["trend"]] == [2_000, 3_000]


def test_one_dataset_has_its_field_by_dimension_matrix_and_worst_rules(url: str, control: ControlPlane,
                                                                      tmp_path: Path) -> None:
    call(url + "/api/quality", "GET")  # the first read makes the table
    legacy = {**GOOD, "id_number": "012345678"}        # a 9-digit CMND: id.legacy_cmnd warns
    bad = {**GOOD, "id_number": "12"}                  # id.shape rejects
    expected = record_snapshot(control.engine, SUBSCRIBER, 5_000,
                               tally_of([GOOD, legacy, legacy, bad, bad, bad], connector_issues=2))
    open_items(tmp_path / "desks.db", SUBSCRIBER, quarantined=["id.shape", "id.shape"], reviews=0)

    status, card = call(url + f"/api/quality/{SUBSCRIBER}", "GET", role=Role.STEWARD)

    assert status == 200
    assert card["dataset"] == SUBSCRIBER and card["scores"] == expected and len(card["trend"]) == 1
    matrix = card["matrix"]
    assert matrix["dimensions"] == ["correct", "complete", "clean", "live"]
    rows = {row["field"]: row["cells"] for row in matrix["fields"]}
    assert rows["id_number"]["correct"] == {"score": 0.166667, "checks": 6, "failures": 5}  # 2 warned, 3 rejected
    assert rows["id_number"]["live"] is None                                                 # not measured
    assert rows["address"]["complete"] == {"score": 0.0, "checks": 6, "failures": 6}
    assert rows["subscriber_name"]["complete"] == {"score": 0.75, "checks": 8, "failures": 2}  # connector rows
    assert rows["updated_at"]["live"]["score"] == 1.0
    worst = {r["rule"]: r for r in card["worst_rules"]}
    assert worst["id.shape"] == {"rule": "id.shape", "field": "id_number", "count": 3, "severity": "reject", "open": 2}
    assert worst["id.legacy_cmnd"] == {"rule": "id.legacy_cmnd", "field": "id_number", "count": 2, "severity": "warn",
                                       "open": 0}
    assert worst["schema.required"] == {"rule": "schema.required", "field": None, "count": 2, "severity": "reject",
                                        "open": 0}
    counts = [r["count"] for r in card["worst_rules"]]
    assert counts == sorted(counts, reverse=True)

    status, unscored = call(url + "/api/quality/population.event", "GET", role=Role.ADMIN)
    assert status == 200 and unscored["matrix"] == {"dimensions": list(DIMENSIONS), "fields": []}
    assert unscored["worst_rules"] == [] and unscored["scores"]["correct"] is None


def test_unknown_datasets_bad_points_and_roles_without_the_right_are_refused(url: str) -> None:
    status, answer = call(url + "/api/quality/no.such", "GET", role=Role.STEWARD)
    assert status == 404 and "no dataset 'no.such'" in answer["error"]
    status, answer = call(url + "/api/quality?points=0", "GET", role=Role.STEWARD)
    assert status == 400 and answer["error"] == "points: must be between 1 and 100, not 0"
    status, answer = call(url + "/api/quality?points=many", "GET", role=Role.STEWARD)
    assert status == 400 and answer["error"].startswith("points: must be a whole number")
    for role in (Role.CONSUMER, Role.PORTAL):
        status, answer = call(url + "/api/quality", "GET", role=role)
        assert status == 403 and "needs the role admin, ops, owner, steward" in answer["error"]
