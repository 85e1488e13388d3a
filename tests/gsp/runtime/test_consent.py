"""Consent on a running platform: a subscription whose legal basis is consent delivers a person's records only
while their consent is on record; after a withdrawal is acknowledged nothing more of theirs reaches it.

`gsp serve` as a user runs it, the CLI for every step (request, approval, consent given and withdrawn by the
portal), records produced to the raw topics as a connector would, consent also fed straight to gsp.consent
as a source connector would, and the agency's share topic read back.
"""

import json
import time
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from gsp.tools.synth import generate
from schemas import topics
from schemas.codec import Codec
from schemas.envelope import header
from schemas.registry import RegistryClient
from streams.clean import clean_citizen
from tests.gsp.runtime.test_serve import OWNER, enrol, gsp, served, wait_for_worker
from tests.gsp.tools.test_synth import as_citizen
from tests.topics import read_topic

CONSUMER = "VN/GOV/bhxh/bhxh-ha-noi"
SID = "bhxh-bhxh-ha-noi:telecom.subscriber"
TOPIC = "share.bhxh-bhxh-ha-noi.subscriber.v1"


def test_a_withdrawn_consent_stops_delivery_of_that_persons_records(tmp_path: Path) -> None:
    people = [row for row in generate(40, seed=11).citizens
              if row["status"] == "ALIVE" and clean_citizen(as_citizen(row)).rejection is None]
    alice, bob, chi = people[:3]
    with served(tmp_path, GSP_LINKAGE_MODEL="off") as (env, runtime):
        owner = {**env, "GSP_TOKEN": enrol(env, OWNER, "Cục Viễn thông", "owner:telecom.subscriber")}
        consumer = {**env, "GSP_TOKEN": enrol(env, CONSUMER, "Bảo hiểm xã hội Hà Nội", "consumer")}
        portal = {**env, "GSP_TOKEN": enrol(env, "VN/GOV/bo-cong-an/cong-dich-vu-cong", "Cổng dịch vụ công", "portal")}
        registry = RegistryClient(runtime["api_url"], token=runtime["token"])
        codec = Codec(resolve=registry.schema_by_id)
        producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"])
        citizen_id = registry.latest("raw.population.citizen.v1-value")[0]
        for row in people:
            producer.send("raw.population.citizen.v1", key=row["personal_id"].encode(), value=codec.encode(
                citizen_id, {**as_citizen(row), "header": header("population.test", row["personal_id"], "1", now())}))
        producer.flush()
        wait_for_worker(runtime, lambda h: h.get("registry_records", 0) >= len(people))

        ask = ["--dataset", "telecom.subscriber", "--fields", "msisdn,personal_id,verdict", "--purpose",
               "Thu bảo hiểm xã hội tự nguyện", "--legal-basis", "Sự đồng ý của chủ thể dữ liệu (Nghị định 13/2023/NĐ-CP)"]
        assert gsp("subscription", "request", *ask, "--consent", env=consumer).returncode == 0
        assert gsp("subscription", "approve", SID, env=owner).returncode == 0
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 1)
        for person in (alice, bob):
            given = gsp("consent", "give", person["personal_id"], "--subscription", SID, "--reference", "PD-1",
                        env=portal)
            assert given.returncode == 0 and "given" in given.stdout, given.stderr
        refused = gsp("consent", "give", "12345", "--subscription", SID, env=portal)
        assert refused.returncode == 2 and "12-digit" in refused.stderr and "Traceback" not in refused.stderr
        assert gsp("consent", "give", alice["personal_id"], "--subscription", SID, env=consumer).returncode == 2

        subscriber_id = registry.latest("raw.telecom.subscriber.v1-value")[0]
        send(producer, codec, subscriber_id, [alice, bob, chi], version="1")
        assert delivered(runtime, codec, 2) == {(alice["personal_id"], "1"), (bob["personal_id"], "1")}

        withdrawn = gsp("consent", "withdraw", bob["personal_id"], "--subscription", SID, env=portal)
        assert withdrawn.returncode == 0 and "withdrawn" in withdrawn.stdout, withdrawn.stderr
        # Acknowledged: Bob's next record is not shared, Alice's is. Chí's consent arrives from a source
        # connector straight onto gsp.consent, so her next record is shared too.
        consent_id = registry.latest(topics.subject(topics.CONSENT))[0]
        producer.send(topics.CONSENT, key=f"{SID}|{chi['personal_id']}".encode(), value=codec.encode(consent_id, {
            "personal_id": chi["personal_id"], "subscription_id": SID, "given": True, "at": now(),
            "recorded_by": "connector:consent-forms", "reference": None})).get(timeout=30)
        send(producer, codec, subscriber_id, [bob, alice, chi], version="2")
        matched = read_topic(runtime["bootstrap"], "match.telecom.subscriber.v1", until=lambda ms: len(ms) >= 6)
        assert len(matched) == 6
        time.sleep(2.0)  # the share agent had its turn at every record
        assert delivered(runtime, codec, 4) == {(alice["personal_id"], "1"), (bob["personal_id"], "1"),
                                                (alice["personal_id"], "2"), (chi["personal_id"], "2")}

        # The person sees it: the record delivered while consent held, the consent and its withdrawal.
        seen = json.loads(gsp("audit", "person", bob["personal_id"], "--json", env=portal).stdout)
        assert [(c["given"], c["subscription_id"]) for c in seen["consents"]] == [(False, SID), (True, SID)]
        for _ in range(50):  # the ledger writer enters the workers' reports in the background
            if seen["deliveries"]:
                break
            time.sleep(0.2)
            seen = json.loads(gsp("audit", "person", bob["personal_id"], "--json", env=portal).stdout)
        assert [(d["agency"], d["records"], d["legal_basis"]) for d in seen["deliveries"]] == [
            ("bhxh-bhxh-ha-noi", 1, "Sự đồng ý của chủ thể dữ liệu (Nghị định 13/2023/NĐ-CP)")]
        producer.close()


def now() -> int:
    return int(time.time() * 1000)


def send(producer: KafkaProducer, codec: Codec, schema_id: int, people: list[dict[str, Any]], *, version: str) -> None:
    """Each person's mobile subscription, as the carrier's connector would publish it (same key, a new version)."""
    for n, person in enumerate(people):
        msisdn = f"09{person['personal_id'][-8:]}"
        record = {"header": header("telecom.test", msisdn, version, now()), "msisdn": msisdn, "carrier": "Viettel",
                  "subscriber_name": person["full_name"], "id_number": person["personal_id"],
                  "birth_date": person["birth_date"], "address": None, "updated_at": n}
        producer.send("raw.telecom.subscriber.v1", key=msisdn.encode(), value=codec.encode(schema_id, record))
    producer.flush()


def delivered(runtime: dict[str, Any], codec: Codec, at_least: int) -> set[tuple[str, str]]:
    """(personal id, source version) of every record on the agency's topic, once at least ``at_least`` are there."""
    messages = read_topic(runtime["bootstrap"], TOPIC, until=lambda ms: len(ms) >= at_least, timeout_s=60)
    assert not any(m.headers for m in messages)  # the platform's lineage headers stay inside it
    records = [codec.decode(m.value)[1] for m in messages]
    return {(r["personal_id"], r["header"]["source_version"]) for r in records}
