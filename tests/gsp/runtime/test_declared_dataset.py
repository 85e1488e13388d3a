"""A dataset declared in GSP_DATASETS_DIR runs through a real `gsp serve`: topics, contracts, clean, share, with
an agency's whole path through the CLI (registered, requested, approved by the owner, revoked).

No Python is written for the dataset: the declaration is the whole of it. The record reaches the
agency's share topic with only the approved fields; the one whose phone cannot be a phone is
quarantined with its reason.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from gsp.runtime.embedded import free_port
from schemas.codec import Codec
from schemas.envelope import header
from schemas.registry import RegistryClient
from tests.gsp.runtime.test_serve import enrol, gsp, serving, wait_for_worker
from tests.schemas.test_datasets import CLINIC, declare
from tests.topics import read_topic

OWNER = "VN/GOV/bo-y-te/so-y-te-ha-noi"           # the declared owner of health.clinic
CONSUMER = "VN/GOV/bhxh/bhxh-ha-noi"
TOPIC = "share.bhxh-bhxh-ha-noi.clinic.v1"
HISTORY = "share.bhxh-bhxh-ha-noi.clinic-history.v1"


def test_a_declared_dataset_is_requested_approved_shared_and_revoked_on_a_running_platform(tmp_path: Path) -> None:
    """An agency's path: catalog, request, the owner's approval, first record; then the revocation stops it."""
    declare(tmp_path / "datasets", CLINIC)
    env = {**os.environ, "GSP_HOME": str(tmp_path / "home"), "GSP_API_PORT": str(free_port()),
           "GSP_DATASETS_DIR": str(tmp_path / "datasets"), "GSP_LINKAGE_MODEL": "off", "GSP_LEDGER_HEAD_INTERVAL_S": "1"}
    env.pop("GSP_TOKEN", None)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log,
                              text=True)
    try:
        runtime = serving(server, tmp_path / "home", tmp_path / "serve.log")
        # The admin (the token gsp serve wrote to GSP_HOME) registers both agencies and gives each a credential.
        as_owner = {**env, "GSP_TOKEN": enrol(env, OWNER, "Sở Y tế Hà Nội", "owner:health.clinic")}
        as_consumer = {**env, "GSP_TOKEN": enrol(env, CONSUMER, "Bảo hiểm xã hội Hà Nội", "consumer")}
        assert "health.clinic" in gsp("catalog", "list", env=as_consumer).stdout
        requested = gsp("subscription", "request", "--dataset", "health.clinic", "--fields", "licence_no,name",
                        "--where", "specialty=cardiology", "--purpose", "Thanh toán khám chữa bệnh BHYT",
                        "--legal-basis", "Luật Bảo hiểm y tế 2024", env=as_consumer)
        assert requested.returncode == 0, requested.stderr
        sid = "bhxh-bhxh-ha-noi:health.clinic"
        assert sid in requested.stdout
        refused = gsp("subscription", "approve", sid, env=as_consumer)
        assert refused.returncode == 2 and "owner" in refused.stderr and "Traceback" not in refused.stderr
        approved = gsp("subscription", "approve", sid, env=as_owner)
        assert approved.returncode == 0, approved.stderr
        assert '"state": "active"' in gsp("subscription", "show", sid, "--json", env=as_consumer).stdout
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 1)

        registry = RegistryClient(runtime["api_url"], token=as_owner["GSP_TOKEN"])
        schema_id, _, _ = registry.latest("raw.health.clinic.v1-value")
        codec = Codec(resolve=registry.schema_by_id)
        now_ms = int(time.time() * 1000)
        rows = [("GP-0", "Ngô Bảo Châu", "0912345670", "cardiology", now_ms - 3_600_000),  # before valid-from
                ("GP-1", "  trần   thị mai ", "+84912345678", "cardiology", now_ms),        # fixed, shared
                ("GP-2", "Lê Văn Hùng", "0912 345 679", "dermatology", now_ms),            # filtered out
                ("GP-3", "Phạm Thu Hà", "12345", "cardiology", now_ms)]                     # quarantined
        send(runtime, codec, schema_id, rows)

        shared = read_topic(runtime["bootstrap"], TOPIC, until=lambda ms: len(ms) >= 1, timeout_s=60)
        assert len(shared) == 1, (tmp_path / "serve.log").read_text()[-3000:]
        record = codec.decode(shared[0].value)[1]
        assert {k: v for k, v in record.items() if k != "header"} == {"licence_no": "GP-1", "name": "Trần Thị Mai",
                                                                      "person_key": None}
        assert b"0912345678" not in shared[0].value and b"cardiology" not in shared[0].value
        [issue] = [codec.decode(m.value)[1] for m in read_topic(
            runtime["bootstrap"], "quarantine.health.clinic.v1", until=lambda ms: len(ms) >= 1, timeout_s=30)]
        assert (issue["rule"], issue["field"], issue["header"]["source_key"]) == ("phone.invalid", "phone", "GP-3")
        cleaned_keys(runtime, {"GP-0", "GP-1", "GP-2"})
        # GP-0 was cleaned but ingested before the approval; GP-2 was held back by the row filter.
        assert len(read_topic(runtime["bootstrap"], TOPIC)) == 1

        revoked = gsp("subscription", "revoke", sid, "--reason", "Hết hiệu lực hợp đồng", env=as_owner)
        assert revoked.returncode == 0, revoked.stderr
        # Acknowledged: from here on nothing more is delivered, though the pipeline goes on cleaning.
        send(runtime, codec, schema_id, [("GP-4", "Đặng Thu Thảo", "0912345671", "cardiology", int(time.time() * 1000))])
        cleaned_keys(runtime, {"GP-4"})
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 0)
        assert [m.key for m in read_topic(runtime["bootstrap"], TOPIC)] == [b"GP-1"]

        # A second subscription, for another purpose, whose approval reaches back: everything cleaned before it
        # that its row filter admits, GP-0 included, and nothing quarantined or filtered out.
        history = gsp("subscription", "request", "--dataset", "health.clinic", "--fields", "licence_no",
                      "--where", "specialty=cardiology", "--name", "history", "--backfill",
                      "--purpose", "Hậu kiểm thanh toán BHYT", "--legal-basis", "Luật Bảo hiểm y tế 2024", env=as_consumer)
        assert history.returncode == 0, history.stderr
        assert gsp("subscription", "approve", f"{sid}:history", env=as_owner).returncode == 0
        backfilled = read_topic(runtime["bootstrap"], HISTORY, until=lambda ms: len(ms) >= 3, timeout_s=60)
        assert sorted(m.key for m in backfilled) == [b"GP-0", b"GP-1", b"GP-4"], (tmp_path / "serve.log").read_text()[-3000:]
        assert {codec.decode(m.value)[1]["licence_no"] for m in backfilled} == {"GP-0", "GP-1", "GP-4"}
        try:
            check_the_audit_ledger(env, runtime, codec.decode(shared[0].value)[1]["header"]["event_id"], sid)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n--- serve.log ---\n{(tmp_path / 'serve.log').read_text()[-4000:]}") from None
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
            raise
        finally:
            server.stdout.close()  # type: ignore[union-attr]
            log.close()


def check_the_audit_ledger(env: dict[str, str], runtime: dict[str, Any], agency_event_id: str, sid: str) -> None:
    """Every delivery, live and back-filled, and every decision is in the ledger; a record's way can be traced."""
    deliveries: list[dict[str, Any]] = []
    for _ in range(100):  # the control plane enters the workers' reports in the background
        listed = gsp("audit", "entries", "--kind", "delivery", "--limit", "100", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        deliveries = json.loads(listed.stdout)
        if sum(len(e["records"]) for e in deliveries) >= 4:
            break
        time.sleep(0.2)
    by_channel = {(e["subscription_id"], e["body"]["channel"]): len(e["records"]) for e in deliveries}
    assert by_channel == {(sid, "topic"): 1, (f"{sid}:history", "backfill"): 3}, deliveries
    assert all(e["body"]["purpose"] and e["body"]["legal_basis"] == "Luật Bảo hiểm y tế 2024" for e in deliveries)
    traced = gsp("lineage", agency_event_id, "--json", env=env)
    assert traced.returncode == 0, traced.stderr
    # The agency's event id names the record in both its subscriptions: shared live, then back-filled.
    live, backfilled = json.loads(traced.stdout)["deliveries"]
    for way in (live, backfilled):
        assert way["source"] == {"system": "health.clinics", "key": "GP-1", "version": "1"}
    assert list(live["record"]["positions"]) == ["raw.health.clinic.v1", "clean.health.clinic.v1", TOPIC]
    assert list(backfilled["record"]["positions"]) == ["raw.health.clinic.v1", "clean.health.clinic.v1", HISTORY]
    kinds = {e["kind"] for e in json.loads(gsp("audit", "entries", "--limit", "200", "--json", env=env).stdout)}
    assert {"agency.register", "credential.issue", "subscription.request", "subscription.approve",
            "subscription.revoke"} <= kinds, kinds
    checked = gsp("audit", "verify", env=env)  # offline: GSP_HOME's database and ledger key
    assert checked.returncode == 0 and "every entry and head verified" in checked.stdout, checked.stdout + checked.stderr
    # And against the heads gsp serve publishes outside its database (every second here).
    witnessed = gsp("audit", "verify", "--witness", runtime["bootstrap"], "--json", env=env)
    assert witnessed.returncode == 0, witnessed.stdout + witnessed.stderr
    assert json.loads(witnessed.stdout)["witnessed"] >= 1
    unreachable = gsp("audit", "verify", "--witness", "127.0.0.1:1", env=env)
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr, unreachable.stderr
    assert gsp("lineage", "k1.unknown", env=env).returncode == 2


def send(runtime: dict[str, Any], codec: Codec, schema_id: int, rows: list[tuple[str, str, str, str, int]]) -> None:
    producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"])
    for licence, name, phone, specialty, ingested_at in rows:
        value = codec.encode(schema_id, {"header": header("health.clinics", licence, "1", ingested_at),
                                         "licence_no": licence, "name": name, "phone": phone, "specialty": specialty})
        producer.send("raw.health.clinic.v1", key=licence.encode(), value=value)
    producer.flush()
    producer.close()


def cleaned_keys(runtime: dict[str, Any], keys: set[str]) -> None:
    """Wait until every one of ``keys`` is on the clean topic: the share stage has had its turn at them."""
    def seen(messages: list[Any]) -> bool:
        return keys <= {m.key.decode() for m in messages}
    assert seen(read_topic(runtime["bootstrap"], "clean.health.clinic.v1", until=seen, timeout_s=60))
    time.sleep(1.0)  # the share agent reads the clean topic in batches of at most a second
