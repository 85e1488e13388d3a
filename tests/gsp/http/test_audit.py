"""The audit ledger over HTTP: the portal asks who saw a person's data; operators trace a record and check the ledger.

The answers come from the ledger the control plane writes (here filled directly, as the ledger writer
would from the workers' reports); a person query returns only what concerns that person.
"""

import json
from pathlib import Path

import requests
import sqlalchemy as sa

from gsp.governance.identity import Role
from gsp.governance.ledger import Ledger
from gsp.governance.ledger_writer import fact_entry
from tests.credentials import Cast

ALICE, BOB = "001085012345", "079190000001"


def fact(agency: str, sid: str, fields: list[str], records: list[tuple[str, str, str | None]]) -> dict[str, object]:
    return {"kind": "delivery", "at": 1_767_225_600_000, "actor": "worker:test", "channel": "topic", "agency": agency,
            "subscription_id": sid, "version": 2, "dataset": "telecom.subscriber", "fields": fields,
            "records": [{"event_id": e, "agency_event_id": a, "personal_id": p, "source_system": "telecom.viettel",
                         "source_version": "1", "positions": {"raw.telecom.subscriber.v1": "0:1"}}
                        for e, a, p in records]}


def fill(tmp_path: Path) -> Ledger:
    ledger = Ledger(sa.create_engine(f"sqlite:///{tmp_path / 'desks.db'}"), b"k" * 32)  # the app's ledger (conftest)
    terms = {"purpose": "Đối soát thuê bao", "legal_basis": "Luật Căn cước 2023", "agency_id": "VN/GOV/bo-cong-an/c06"}
    ledger.append("data-0", [
        fact_entry(ledger, fact("bo-cong-an-c06", "bo-cong-an-c06:telecom.subscriber", ["carrier", "verdict"],
                                [("e1", "k1.aaa", ALICE), ("e2", "k1.bbb", BOB)]), terms, source="0:0"),
        fact_entry(ledger, fact("bhxh-ha-noi", "bhxh-ha-noi:telecom.subscriber", ["msisdn"],
                                [("e3", "k1.ccc", BOB)]), {**terms, "purpose": "Thu BHXH"}, source="0:1")])
    return ledger


def test_the_portal_learns_who_received_a_persons_data_and_nothing_about_anyone_else(tmp_path: Path, url: str,
                                                                                     people: Cast) -> None:
    fill(tmp_path)
    answer = requests.post(f"{url}/api/audit/person", json={"personal_id": ALICE}, headers=people.headers(Role.PORTAL),
                           timeout=10)
    assert answer.status_code == 200, answer.text
    [delivery] = answer.json()["deliveries"]
    assert (delivery["agency"], delivery["fields"], delivery["records"], delivery["purpose"], delivery["legal_basis"]) == (
        "bo-cong-an-c06", ["carrier", "verdict"], 1, "Đối soát thuê bao", "Luật Căn cước 2023")
    assert ALICE not in answer.text and BOB not in answer.text and "k1." not in answer.text  # no id, no other record
    bob = requests.post(f"{url}/api/audit/person", json={"personal_id": BOB}, headers=people.headers(Role.PORTAL),
                        timeout=10).json()
    assert sorted((d["agency"], d["purpose"]) for d in bob["deliveries"]) == [
        ("bhxh-ha-noi", "Thu BHXH"), ("bo-cong-an-c06", "Đối soát thuê bao")]
    nobody = requests.post(f"{url}/api/audit/person", json={"personal_id": "001099999999"},
                           headers=people.headers(Role.PORTAL), timeout=10).json()
    assert nobody == {"deliveries": [], "verifications": [], "consents": []}


def test_a_person_query_needs_the_portal_role_and_a_personal_id(tmp_path: Path, url: str, people: Cast) -> None:
    fill(tmp_path)
    for role in (Role.CONSUMER, Role.STEWARD, Role.OWNER, Role.OPS):
        denied = requests.post(f"{url}/api/audit/person", json={"personal_id": ALICE}, headers=people.headers(role),
                               timeout=10)
        assert denied.status_code == 403, (role, denied.text)
    assert requests.post(f"{url}/api/audit/person", json={"personal_id": ALICE}, timeout=10).status_code == 401
    bad = requests.post(f"{url}/api/audit/person", json={"personal_id": "0010' OR 1=1"},
                        headers=people.headers(Role.PORTAL), timeout=10)
    assert bad.status_code == 422 and "12-digit" in bad.text


def test_lineage_and_the_ledgers_check_for_operators(tmp_path: Path, url: str, people: Cast) -> None:
    ledger = fill(tmp_path)
    ledger.checkpoint()
    for event_id in ("k1.ccc", "e3"):  # the agency's event id, or the platform's
        way = requests.get(f"{url}/api/lineage/{event_id}", headers=people.headers(Role.OPS), timeout=10)
        assert way.status_code == 200, way.text
        [delivery] = way.json()["deliveries"]
        assert (delivery["agency"], delivery["record"]["agency_event_id"], delivery["purpose"]) == (
            "bhxh-ha-noi", "k1.ccc", "Thu BHXH")
        assert delivery["record"]["positions"] == {"raw.telecom.subscriber.v1": "0:1"}
    assert requests.get(f"{url}/api/lineage/k1.none", headers=people.headers(Role.OPS), timeout=10).status_code == 404
    assert requests.get(f"{url}/api/lineage/e3", headers=people.headers(Role.CONSUMER), timeout=10).status_code == 403
    checked = requests.get(f"{url}/api/audit/verify", headers=people.headers(Role.ADMIN), timeout=10).json()
    assert checked["ok"] and checked["chains"]["data-0"] == 2 and checked["heads"] >= 1
    with ledger.engine.begin() as conn:  # an edit behind the ledger's back
        conn.exec_driver_sql("UPDATE ledger_entries SET body = replace(body, 'Thu BHXH', 'Khác') WHERE seq = 2")
    checked = requests.get(f"{url}/api/audit/verify", headers=people.headers(Role.ADMIN), timeout=10).json()
    assert not checked["ok"] and {(f["chain"], f["seq"]) for f in checked["findings"]} >= {("data-0", 2)}
    entries = requests.get(f"{url}/api/audit/entries?kind=delivery", headers=people.headers(Role.ADMIN), timeout=10)
    assert sorted(e["seq"] for e in entries.json()) == [1, 2]
    assert json.dumps(entries.json()).count(ALICE) == 0
