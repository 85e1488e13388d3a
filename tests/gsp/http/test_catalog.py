"""The catalog over HTTP, through the control plane's real app: the declarations with the live facts of the moment,
the latest quality snapshot and the subscribing agencies; an unknown dataset is a 404."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from gsp.governance.control import ControlPlane
from gsp.http.app import ApiServer, build_app
from tests.credentials import Cast, approved
from tests.gsp.http.test_app import call, callers  # noqa: F401  (callers: the autouse fixture call needs)


@pytest.fixture
def url(control: ControlPlane) -> Iterator[str]:
    server = ApiServer(build_app(control, CollectorRegistry()))
    server.start()
    yield server.url
    server.stop()


def record_snapshot(engine: sa.Engine, dataset: str, taken_at: int, scores: dict[str, float | None]) -> None:
    """A snapshot row as the quality recorder writes it, into the table the catalog read made."""
    snapshots = sa.Table("quality_snapshots", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(snapshots).values(dataset=dataset, taken_at=taken_at, records=10,
                                                 scores=json.dumps(scores), cells="[]", rules="{}"))


def test_the_list_has_every_declared_dataset_with_its_subscribers_and_scores(url: str, control: ControlPlane) -> None:
    for _ in range(2):  # two agencies
        approved(control, Cast.register(control.identities), fields=["msisdn", "verdict"])

    status, listed = call(url + "/api/catalog", "GET")

    assert status == 200
    by_name = {d["name"]: d for d in listed}
    assert list(by_name) == ["electricity.customer", "insurance.participant", "population.citizen",
                             "population.event", "telecom.subscriber"]
    subscriber = by_name["telecom.subscriber"]
    assert subscriber["owner"] == "VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong" and subscriber["role"] == "linked"
    assert subscriber["subscribers"] == 2 and by_name["population.citizen"]["subscribers"] == 0
    assert subscriber["sensitivity"] == {"public": 0, "internal": 4, "personal": 6, "sensitive": 0}
    assert subscriber["scores"] == {"correct": None, "complete": None, "clean": None, "live": None}
    assert by_name["population.citizen"]["shareable"] is False

    record_snapshot(control.engine, "telecom.subscriber", 1_000, {"correct": 0.5, "complete": 0.5, "clean": 0.5, "live": 0.5})
    record_snapshot(control.engine, "telecom.subscriber", 2_000, {"correct": 0.9, "complete": 1.0, "clean": 0.8, "live": None})
    scored = {d["name"]: d["scores"] for d in call(url + "/api/catalog", "GET")[1]}
    assert scored["telecom.subscriber"] == {"correct": 0.9, "complete": 1.0, "clean": 0.8, "live": None}
    assert scored["population.citizen"]["correct"] is None


def test_one_entry_has_its_fields_with_type_description_and_sensitivity(url: str, control: ControlPlane) -> None:
    approved(control, Cast.register(control.identities), fields=["msisdn"])

    status, shown = call(url + "/api/catalog/telecom.subscriber", "GET")

    assert status == 200
    assert (shown["source_system"], shown["key"], shown["freshness_days"], shown["delivery_s"]) == \
        ("telecom.registry", "msisdn", 365, 60)
    assert shown["subscribers"] == 1
    fields = {f["name"]: f for f in shown["fields"]}
    assert fields["id_number"] == {"name": "id_number", "type": "string", "sensitivity": "personal",
                                   "description": "Id number as given: 12-digit personal id or legacy 9-digit CMND"}
    assert fields["verdict"]["sensitivity"] == "internal" and fields["verdict"]["description"].startswith("Outcome")
    citizen = call(url + "/api/catalog/population.citizen", "GET")[1]
    assert citizen["shareable"] is False and citizen["fields"] == []


def test_an_unknown_dataset_is_a_404_naming_the_known_ones(url: str) -> None:
    status, answer = call(url + "/api/catalog/health.clinic", "GET")

    assert status == 404
    assert answer["error"] == ("no dataset 'health.clinic' in the catalog; known: electricity.customer, "
                               "insurance.participant, population.citizen, population.event, telecom.subscriber")
