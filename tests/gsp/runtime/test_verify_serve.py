"""Verification without data through `gsp serve` as agencies use it: a verify subscription requested and approved
with the CLI, the registry loaded through the pipeline, then identity details checked over HTTP (the API and
`gsp verify`) and over Kafka (an agency's own request and reply topics), each answer what the rules give on the
same registry, and an agency never answered on another's topic."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from connectors.sql_source import map_columns
from gsp.tools.synth import generate
from schemas import envelope, topics
from schemas.codec import Codec, CodecError
from schemas.datasets import dataset
from schemas.registry import RegistryClient
from streams.clean import clean_citizen
from streams.matching import RegistryEntries
from streams.verify import Verifier
from tests.gsp.runtime.test_serve import enrol, gsp, served, wait_for_worker
from tests.topics import read_topic

C06 = "VN/GOV/bo-cong-an/c06"  # the declared owner of population.citizen
BHXH, THUE, DANG_KIEM = "VN/GOV/bo-y-te/bhxh", "VN/GOV/bo-tai-chinh/thue", "VN/GOV/bo-xay-dung/dang-kiem"
ASK = ("--purpose", "Xác thực người tham gia bảo hiểm", "--legal-basis", "Nghị định 13/2023/NĐ-CP, Điều 17")
CITIZEN, SUBSCRIBER = dataset("population.citizen"), dataset("telecom.subscriber")
BHXH_FIELDS = ("personal_id", "full_name", "birth_date", "phone")


def post(url: str, token: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url + "/api/verifications", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def load_registry(runtime: dict[str, Any], n: int) -> dict[str, dict[str, Any]]:
    """Publish ``n`` generated citizens to the raw topic, as the population connector would; the registry entries
    the clean ones become (what the worker will hold)."""
    registry_client = RegistryClient(runtime["api_url"], token=runtime["token"])
    schema_id, _, _ = registry_client.latest("raw.population.citizen.v1-value")
    codec = Codec(resolve=registry_client.schema_by_id)
    entries = RegistryEntries(CITIZEN, [SUBSCRIBER])
    held: dict[str, dict[str, Any]] = {}
    producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"])
    try:
        for i, row in enumerate(generate(n, seed=23).citizens):
            record = {**map_columns(row, CITIZEN.source_columns),
                      "header": envelope.header("population.test", str(row["personal_id"]), str(i), int(time.time() * 1000))}
            try:
                value = codec.encode(schema_id, record)
            except CodecError:  # a NULL in a required column: the connector holds such rows back
                continue
            producer.send("raw.population.citizen.v1", key=str(row["personal_id"]).encode(), value=value)
            cleaned = clean_citizen(record)
            if cleaned.rejection is None:
                personal_id, entry = entries.entry(cleaned.record)
                held[personal_id] = entry
        producer.flush()
    finally:
        producer.close()
    return held


def requests_about(registry: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Right, wrong, unknown and invalid requests about the registry's people."""
    people = list(registry.items())[:40]
    out: list[dict[str, Any]] = []
    for i, (personal_id, entry) in enumerate(people):
        request = {"request_id": f"q{i}", "personal_id": personal_id, "full_name": entry["full_name"],
                   "birth_date": entry["birth_date"]}
        if i % 4 == 1:
            request["full_name"] = entry["full_name"].upper().replace(" ", "  ")  # typed differently: still agrees
        elif i % 4 == 2:
            request["birth_date"] = "1901-01-01"
        elif i % 4 == 3 and entry["phone"]:
            request["phone"] = entry["phone"]
        out.append(request)
    out.append({"request_id": "unknown", "personal_id": "001099999999", "full_name": "Nguyễn Văn An",
                "birth_date": "1999-05-04", "phone": "0912345678"})
    out.append({"request_id": "not-approved", "personal_id": people[0][0], "full_name": "X", "birth_date": "2000",
                "province_code": "01"})
    out.append({"request_id": "bad", "personal_id": 12})
    return out


def answers_on(runtime: dict[str, Any], token: str, topic: str, correlation_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The replies on ``topic`` for ``correlation_ids`` (every one, read as the agency reads its topic)."""
    codec = Codec(resolve=RegistryClient(runtime["api_url"], token=token).schema_by_id)

    def seen(messages: list[Any]) -> dict[str, dict[str, Any]]:
        return {m.key.decode(): codec.decode(m.value)[1] for m in messages if m.key and m.key.decode() in correlation_ids}

    messages = read_topic(runtime["bootstrap"], topic, until=lambda ms: seen(ms).keys() >= correlation_ids,
                          timeout_s=60)
    return seen(messages)


def ask_on_kafka(runtime: dict[str, Any], token: str, slug: str, requests: list[dict[str, Any]], *,
                 correlation_id: str | None = None, **extra: Any) -> str:
    """Produce one VerificationRequest on the agency's request topic, as its own Confluent-style client would."""
    correlation_id = correlation_id or uuid.uuid4().hex
    registry_client = RegistryClient(runtime["api_url"], token=token)
    schema_id, _, _ = registry_client.latest(topics.subject(topics.verify_requests(slug)))
    codec = Codec(resolve=registry_client.schema_by_id)
    value = codec.encode(schema_id, {"correlation_id": correlation_id, **extra, "requests": [
        {"request_id": r.get("request_id"), "fields": {k: v for k, v in r.items() if k != "request_id"}}
        for r in requests]})
    producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"])
    try:
        producer.send(topics.verify_requests(slug), key=correlation_id.encode(), value=value).get(timeout=30)
    finally:
        producer.close()
    return correlation_id


def as_avro(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"request_id": a.get("request_id"), "verdict": a.get("verdict"), "mask": a.get("mask", {}),
             "error": a.get("error")} for a in answers]


def test_an_agency_verifies_over_http_and_over_its_own_topics(tmp_path: Path) -> None:
    with served(tmp_path) as (env, runtime):
        owner = {**env, "GSP_TOKEN": enrol(env, C06, "Trung tâm dữ liệu quốc gia về dân cư", "owner:population.citizen")}
        bhxh = {**env, "GSP_TOKEN": enrol(env, BHXH, "Bảo hiểm xã hội Việt Nam", "consumer")}
        thue = {**env, "GSP_TOKEN": enrol(env, THUE, "Cục Thuế", "consumer")}
        dang_kiem = {**env, "GSP_TOKEN": enrol(env, DANG_KIEM, "Cục Đăng kiểm", "consumer")}
        for who, fields in ((bhxh, BHXH_FIELDS), (thue, ("personal_id", "full_name", "birth_date"))):
            asked = gsp("subscription", "request", "--mode", "verify", "--dataset", "population.citizen",
                        "--fields", ",".join(fields), *ASK, env=who)
            assert asked.returncode == 0, asked.stderr
        refused = gsp("subscription", "request", "--mode", "verify", "--dataset", "population.citizen",
                      "--fields", "personal_id,full_name", *ASK, env=dang_kiem)
        assert refused.returncode == 2 and "always lists personal_id, full_name, birth_date" in refused.stderr
        for sid in ("bo-y-te-bhxh:population.citizen", "bo-tai-chinh-thue:population.citizen"):
            approved = gsp("subscription", "approve", sid, env=owner)
            assert approved.returncode == 0, approved.stderr
        shown = json.loads(gsp("subscription", "show", "bo-y-te-bhxh:population.citizen", "--json", env=bhxh).stdout)
        assert (shown["mode"], shown["topic"], shown["requests_topic"]) == (
            "verify", "verify.bo-y-te-bhxh.replies.v1", "verify.bo-y-te-bhxh.requests.v1")

        registry = load_registry(runtime, 400)
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 2
                        and (h.get("linkage") or {}).get("registry_entries") == len(registry))
        requests = requests_about(registry)
        expected = Verifier(CITIZEN, [SUBSCRIBER]).verify(requests, BHXH_FIELDS, registry.get)
        assert {a.get("verdict") for a in expected} == {"MATCHED", "MISMATCH", "NOT_FOUND", None}

        # HTTP: the API, and gsp verify over it.
        status, answered = post(runtime["api_url"], bhxh["GSP_TOKEN"], {"requests": requests})
        assert status == 200, answered
        assert answered == {"subscription": "bo-y-te-bhxh:population.citizen", "answers": expected}
        (tmp_path / "people.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests))
        by_cli = gsp("verify", str(tmp_path / "people.jsonl"), env=bhxh)
        assert by_cli.returncode == 0, by_cli.stderr
        assert [json.loads(line) for line in by_cli.stdout.splitlines()] == expected
        status, refusal = post(runtime["api_url"], dang_kiem["GSP_TOKEN"], {"requests": requests[:1]})
        assert status == 403 and "holds no active verify subscription" in refusal["error"], refusal

        # Kafka: each agency on its own topics; the topic, never the message, says who asks.
        mine = ask_on_kafka(runtime, bhxh["GSP_TOKEN"], "bo-y-te-bhxh", requests[:-1])  # Avro holds no number
        theirs = ask_on_kafka(runtime, thue["GSP_TOKEN"], "bo-tai-chinh-thue", requests[:2])
        posing = ask_on_kafka(runtime, bhxh["GSP_TOKEN"], "bo-y-te-bhxh", requests[:1],
                              subscription_id="bo-tai-chinh-thue:population.citizen")
        garbage_key = uuid.uuid4().hex
        producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"])
        producer.send(topics.verify_requests("bo-y-te-bhxh"), key=garbage_key.encode(), value=b"not avro").get(30)
        producer.close()
        replies = answers_on(runtime, bhxh["GSP_TOKEN"], "verify.bo-y-te-bhxh.replies.v1", {mine, posing, garbage_key})
        assert replies[mine] == {"correlation_id": mine, "error": None, "answers": as_avro(expected[:-1])}
        assert replies[posing]["answers"] == [] and replies[posing]["error"] == (
            "bo-y-te-bhxh holds no active verify subscription bo-tai-chinh-thue:population.citizen")
        assert replies[garbage_key]["error"].startswith("not a VerificationRequest")
        other = answers_on(runtime, thue["GSP_TOKEN"], "verify.bo-tai-chinh-thue.replies.v1", {theirs})
        assert other[theirs]["answers"] == as_avro(Verifier(CITIZEN, [SUBSCRIBER]).verify(
            requests[:2], ("personal_id", "full_name", "birth_date"), registry.get))
        on_theirs = {m.key.decode() for m in read_topic(runtime["bootstrap"], "verify.bo-tai-chinh-thue.replies.v1")}
        assert on_theirs == {theirs}  # nothing of bo-y-te-bhxh's was ever answered there
        assert mine not in {m.key.decode() for m in read_topic(runtime["bootstrap"], topics.VERIFY_REPLIES)}
        with urllib.request.urlopen(runtime["workers"][0] + "/metrics", timeout=5) as response:
            scraped = response.read().decode()
        assert 'gsp_verifications_total{agency="bo-y-te-bhxh",channel="kafka",outcome="MATCHED"}' in scraped
        assert 'gsp_verifications_total{agency="bo-y-te-bhxh",channel="http",outcome="MATCHED"}' in scraped

        # Every answered batch is in the audit ledger: who asked about this person, how, and what they were told.
        asked_about = requests[0]["personal_id"]
        about = [i for i, r in enumerate(requests) if r.get("personal_id") == asked_about]

        def told(batch: range) -> list[str]:
            return sorted({expected[i].get("verdict") or "ERROR" for i in about if i in batch})

        # Over HTTP the API answers an invalid request itself (a field not approved) and records it (ERROR).
        wanted = sorted([("bo-tai-chinh-thue", "kafka", len([i for i in about if i < 2]), told(range(2))),
                         ("bo-y-te-bhxh", "http", 2 * len(about), told(range(len(requests)))),
                         ("bo-y-te-bhxh", "kafka", len([i for i in about if i < len(requests) - 1]),
                          told(range(len(requests) - 1)))])
        seen: dict[str, Any] = {}
        for _ in range(100):  # the control plane enters the workers' reports in the background
            seen = json.loads(gsp("audit", "person", asked_about, "--json", env=env).stdout)
            if sum(v["records"] for v in seen["verifications"]) >= sum(w[2] for w in wanted):
                break
            time.sleep(0.2)
        # At least once: a Kafka batch answered again (its round not acknowledged, or re-read after a rebalance
        # cut its commit, seen once in a few runs 11 s after the first) is in the ledger twice. Every batch must be
        # there; a duplicate is tolerated here and named as a gap (issue 11's note), not hidden.
        got = sorted((v["agency"], v["channel"], v["verdicts"]) for v in seen["verifications"])
        assert got == sorted((a, c, v) for a, c, _, v in wanted), seen
        counts = {(v["agency"], v["channel"]): v["records"] for v in seen["verifications"]}
        assert all(counts[(a, c)] >= n for a, c, n, _ in wanted), seen
        assert seen["deliveries"] == [] and all(v["purpose"] for v in seen["verifications"])

        # Suspended: refused on both paths.
        suspended = gsp("subscription", "suspend", "bo-y-te-bhxh:population.citizen", "--reason", "kiểm tra", env=owner)
        assert suspended.returncode == 0, suspended.stderr
        status, refusal = post(runtime["api_url"], bhxh["GSP_TOKEN"], {"requests": requests[:1]})
        assert status == 403, refusal
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 1)
        after = ask_on_kafka(runtime, bhxh["GSP_TOKEN"], "bo-y-te-bhxh", requests[:1])
        late = answers_on(runtime, bhxh["GSP_TOKEN"], "verify.bo-y-te-bhxh.replies.v1", {after})[after]
        assert late == {"correlation_id": after, "answers": [], "error": "bo-y-te-bhxh holds no active verify subscription"}


def test_with_the_matcher_off_the_registry_table_answers_and_the_cli_says_what_is_wrong(tmp_path: Path) -> None:
    with served(tmp_path, GSP_LINKAGE_MODEL="off") as (env, runtime):
        owner = {**env, "GSP_TOKEN": enrol(env, C06, "Trung tâm dữ liệu quốc gia về dân cư", "owner:population.citizen")}
        bhxh = {**env, "GSP_TOKEN": enrol(env, BHXH, "Bảo hiểm xã hội Việt Nam", "consumer")}
        asked = gsp("subscription", "request", "--mode", "verify", "--dataset", "population.citizen",
                    "--fields", ",".join(BHXH_FIELDS), *ASK, env=bhxh)
        assert asked.returncode == 0, asked.stderr
        assert gsp("subscription", "approve", "bo-y-te-bhxh:population.citizen", env=owner).returncode == 0
        registry = load_registry(runtime, 200)
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 1 and h.get("registry_records") == len(registry)
                        and h.get("linkage") is None)
        requests = requests_about(registry)
        status, answered = post(runtime["api_url"], bhxh["GSP_TOKEN"], {"requests": requests})
        assert status == 200, answered
        assert answered["answers"] == Verifier(CITIZEN, [SUBSCRIBER]).verify(requests, BHXH_FIELDS, registry.get)

        (tmp_path / "broken.jsonl").write_text(json.dumps(requests[0]) + "\n{not json\n")
        broken = gsp("verify", str(tmp_path / "broken.jsonl"), env=bhxh)
        assert broken.returncode == 2 and broken.stdout == "", broken
        assert broken.stderr.startswith(f"gsp: error: {tmp_path / 'broken.jsonl'} line 2 is not JSON")
        assert len(broken.stderr.splitlines()) == 1
        missing = gsp("verify", str(tmp_path / "absent.jsonl"), env=bhxh)
        assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
        (tmp_path / "people.jsonl").write_text(json.dumps(requests[0]) + "\n")
        refused = gsp("verify", "--subscription", "bo-y-te-bhxh:telecom.subscriber", str(tmp_path / "people.jsonl"),
                      env=bhxh)
        assert refused.returncode == 2
        assert "holds no active verify subscription 'bo-y-te-bhxh:telecom.subscriber'" in refused.stderr
