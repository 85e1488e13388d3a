"""The webhook sink against a real receiver on loopback: signed batches, retries, dead letters, SSRF guard, rate limit."""

import json
import os
import random
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from connectors.base import SinkFailed
from connectors.webhook import sign, verify
from connectors.webhook_sink import TargetRefused, WebhookMetrics, WebhookSink
from gsp.governance.topology import ensure_topics
from gsp.tools.webhook_receiver import Fault, WebhookReceiver
from schemas import envelope, topics
from schemas.registry import RegistryClient
from tests.connectors.sharing import SHARE_SCHEMA, publish

SECRET = b"whsec-bhxh-test"
TOPIC = "share.bhxh.subscriber.v1"
DeadLetters = list[tuple[bytes, dict[str, str]]]


def events(numbers: range) -> list[dict[str, Any]]:
    return [{"header": envelope.header("telecom.test", f"k{i}", "1", 0), "msisdn": f"09{i:08d}", "match_score": 0.5}
            for i in numbers]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_sink() -> Iterator[Callable[..., WebhookSink]]:
    """A loopback sink (http and private targets allowed, short waits), closed after the test."""
    made: list[WebhookSink] = []

    def make(url: str, dead_letters: DeadLetters, **options: Any) -> WebhookSink:
        secret = options.pop("secret", SECRET)
        settings: dict[str, Any] = {"allow_http": True, "allow_private_targets": True, "rate_per_s": 1000.0,
                                    "timeout_s": 2.0, "backoff_base_s": 0.05, "backoff_cap_s": 0.4, **options}
        sink = WebhookSink(url, secret, name="bhxh", topic=TOPIC,
                           dead_letter=lambda body, headers: dead_letters.append((body, headers)), **settings)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def deliver(sink: WebhookSink, batches: list[list[dict[str, Any]]]) -> None:
    for batch in batches:
        sink.write_batch(batch)
        sink.flush()


def test_every_event_arrives_once_in_signed_json_batches(receiver: WebhookReceiver,
                                                         make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    sink = make_sink(receiver.url, dead)
    deliver(sink, [events(range(i, i + 100)) for i in range(0, 300, 100)])
    assert len(receiver.event_ids) == 300 and len(receiver.events) == 300
    assert receiver.refused == 0 and not dead
    assert [a.status for a in receiver.arrivals] == [200, 200, 200]
    first = receiver.events[0]
    assert first["msisdn"] == "0900000000" and first["header"]["source_key"] == "k0"
    assert sink.health()["state"] == "ok" and sink.health()["delivered_batches"] == 3


def test_failed_posts_are_retried_and_duplicates_come_only_from_retries(
        receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    registry = CollectorRegistry()
    sink = make_sink(receiver.url, dead, timeout_s=0.3, metrics=WebhookMetrics.create(registry))
    # a 500, a slow answer the sender gives up on (the receiver kept the batch), a 429, a 503
    receiver.answer(Fault(500), Fault(200, delay_s=1.0), Fault(429, retry_after="0"), Fault(503))
    deliver(sink, [events(range(i, i + 25)) for i in range(0, 100, 25)])
    assert len(receiver.event_ids) == 100 and not dead
    assert len(receiver.events) > 100  # the slow answer's batch came twice
    batches_of: dict[str, set[str]] = {}
    for arrival in receiver.arrivals:
        for event_id in arrival.event_ids:
            batches_of.setdefault(event_id, set()).add(arrival.batch_id)
    assert all(len(batch_ids) == 1 for batch_ids in batches_of.values())  # a duplicate is a retry of its own batch
    twice = [i for i, n in Counter(e["header"]["event_id"] for e in receiver.events).items() if n > 1]
    assert len(twice) == 25
    for outcome, count in {"server_error": 2, "timeout": 1, "throttled": 1, "delivered": 4}.items():
        assert registry.get_sample_value("gsp_webhook_attempts_total", {"sink": "bhxh", "outcome": outcome}) == count


def test_the_back_off_grows_with_full_jitter(receiver: WebhookReceiver,
                                             make_sink: Callable[..., WebhookSink]) -> None:
    runs = []
    for seed in range(12):
        dead: DeadLetters = []
        sink = make_sink(receiver.url, dead, max_attempts=6, backoff_base_s=0.1, backoff_cap_s=100.0,
                         rng=random.Random(seed), sleep=lambda _: None)
        receiver.answer(*[Fault(500)] * 6)
        deliver(sink, [events(range(seed * 2, seed * 2 + 2))])
        assert len(sink.delays) == 5 and len(dead) == 1
        assert all(0 <= delay <= 0.1 * 2 ** i for i, delay in enumerate(sink.delays))
        runs.append(sink.delays)
    means = [sum(run[i] for run in runs) / len(runs) for i in range(5)]
    assert means == sorted(means) and means[-1] > 4 * means[0]
    assert len({tuple(run) for run in runs}) == len(runs)  # jittered: no two runs wait alike


def test_a_permanently_failing_endpoint_ends_in_the_dead_letter_after_max_attempts(
        receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    registry = CollectorRegistry()
    sink = make_sink(receiver.url, dead, max_attempts=4, metrics=WebhookMetrics.create(registry))
    receiver.answer(*[Fault(500)] * 10)
    deliver(sink, [events(range(10))])  # returns normally: the batch is in the dead letter
    assert len(receiver.arrivals) == 4 and not receiver.event_ids
    [(body, headers)] = dead
    assert headers["reason"] == "exhausted" and headers["attempts"] == "4" and headers["error"] == "http 500"
    assert headers["endpoint"] == receiver.url and headers["topic"] == TOPIC
    batch = json.loads(body)
    assert batch["topic"] == TOPIC and batch["batch_id"] == headers["batch_id"]
    assert sorted(e["header"]["source_key"] for e in batch["events"]) == sorted(f"k{i}" for i in range(10))
    assert registry.get_sample_value("gsp_webhook_dead_lettered_total", {"sink": "bhxh", "reason": "exhausted"}) == 1
    assert sink.health()["state"] == "failing" and sink.health()["last_error"] == "http 500"


def test_a_client_error_is_not_retried(receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    receiver.answer(Fault(404))
    deliver(make_sink(receiver.url, dead), [events(range(3))])
    assert len(receiver.arrivals) == 1
    assert dead[0][1]["reason"] == "rejected" and dead[0][1]["attempts"] == "1"
    assert dead[0][1]["error"] == "http 404 (not retried)"


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried(
        receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    deliver(make_sink(receiver.url, dead, secret=b"not-the-agency-secret"), [events(range(3))])
    assert receiver.refused == 1 and not receiver.event_ids
    assert dead[0][1]["error"] == "http 401 (not retried)"


def test_a_429_is_retried_after_its_retry_after_up_to_the_cap(
        receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    sink = make_sink(receiver.url, dead, retry_after_cap_s=0.3)
    receiver.answer(Fault(429, retry_after="1"))
    deliver(make_sink(receiver.url, dead), [events(range(2))])
    first, second = receiver.arrivals
    assert second.at - first.at >= 0.9
    receiver.answer(Fault(429, retry_after="3600"))
    deliver(sink, [events(range(2, 4))])
    assert sink.delays == [0.3] and len(receiver.event_ids) == 4 and not dead


def test_a_failed_dead_letter_raises_sink_failed_and_the_replay_delivers(
        receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    def broker_down(body: bytes, headers: dict[str, str]) -> None:
        raise OSError("broker unreachable")

    sink = WebhookSink(receiver.url, SECRET, name="bhxh", topic=TOPIC, dead_letter=broker_down, max_attempts=2,
                       allow_http=True, allow_private_targets=True, backoff_base_s=0.01)
    try:
        receiver.answer(Fault(500), Fault(500))
        sink.write_batch(events(range(5)))
        with pytest.raises(SinkFailed, match="dead letter failed: broker unreachable"):
            sink.flush()
        sink.write_batch(events(range(5)))  # what the runner does after SinkFailed: the same events again
        sink.flush()
    finally:
        sink.close()
    assert len(receiver.event_ids) == 5


def test_the_signature_verifies_and_a_tampered_body_or_an_old_timestamp_is_refused() -> None:
    body = b'{"topic":"share.bhxh.subscriber.v1","events":[]}'
    now = 1_750_000_000
    header = sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, body, header, now=now + 10)
    assert not verify(SECRET, body + b" ", header, now=now)
    assert not verify(b"another secret", body, header, now=now)
    assert not verify(SECRET, body, header, now=now + 301)
    assert not verify(SECRET, body, header, now=now - 301)
    assert verify(SECRET, body, header, now=now + 599, window_s=600)
    assert not verify(SECRET, body, None) and not verify(SECRET, body, "t=1,v1=") and not verify(SECRET, body, "v1=ab")
    rotated = f"t={now},v1={'0' * 64},v1={header.split('v1=')[1]}"
    assert verify(SECRET, body, rotated, now=now)


@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://192.168.1.1/hook",
                                 "https://169.254.169.254/latest/meta-data", "https://[::1]/hook",
                                 "https://localhost:8443/hook", "https://100.64.0.1/", "https://[fc00::1]/",
                                 "https://[fe80::1]/", "https://0.0.0.0/", "https://224.0.0.1/",
                                 "https://[::ffff:127.0.0.1]/"])
def test_the_ssrf_guard_refuses_non_public_targets_unless_allowed(url: str) -> None:
    with pytest.raises(TargetRefused, match="address"):
        WebhookSink(url, SECRET, name="bhxh", topic=TOPIC, dead_letter=lambda body, headers: None)
    WebhookSink(url, SECRET, name="bhxh", topic=TOPIC, dead_letter=lambda body, headers: None,
                allow_private_targets=True).close()


def test_http_is_refused_unless_allowed() -> None:
    with pytest.raises(TargetRefused, match="not https"):
        WebhookSink("http://93.184.216.34/hook", SECRET, name="bhxh", topic=TOPIC, dead_letter=lambda b, h: None,
                    resolver=lambda host, port: [host])
    WebhookSink("http://93.184.216.34/hook", SECRET, name="bhxh", topic=TOPIC, dead_letter=lambda b, h: None,
                resolver=lambda host, port: [host], allow_http=True).close()
    with pytest.raises(TargetRefused, match="credentials"):
        WebhookSink("https://user:pw@93.184.216.34/", SECRET, name="bhxh", topic=TOPIC, dead_letter=lambda b, h: None)


def test_a_host_that_turns_private_after_start_is_refused_before_sending() -> None:
    answers = iter([["93.184.216.34"], ["10.0.0.1"]])  # DNS answers: at start, then at the first attempt
    dead: DeadLetters = []
    sink = WebhookSink("https://hooks.bhxh.example/gsp", SECRET, name="bhxh", topic=TOPIC,
                       dead_letter=lambda body, headers: dead.append((body, headers)),
                       resolver=lambda host, port: next(answers))
    deliver(sink, [events(range(3))])
    sink.close()
    [(_, headers)] = dead
    assert headers["reason"] == "unsafe_target" and headers["attempts"] == "1"
    assert "10.0.0.1, a private address" in headers["error"]


def test_the_rate_limit_holds(receiver: WebhookReceiver, make_sink: Callable[..., WebhookSink]) -> None:
    dead: DeadLetters = []
    sink = make_sink(receiver.url, dead, rate_per_s=20.0)
    started = time.monotonic()
    deliver(sink, [events(range(i, i + 1)) for i in range(30)])
    elapsed = time.monotonic() - started
    assert len(receiver.event_ids) == 30 and elapsed >= 29 / 20 * 0.95
    times = [a.at for a in receiver.arrivals]
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 21


def test_sink_process_delivers_to_a_webhook_and_dead_letters_what_it_cannot(
        bootstrap: str, tmp_path: Path, sqlite_engine: sa.Engine, receiver: WebhookReceiver,
        serve_registry: Callable[[sa.Engine], AbstractContextManager[str]]) -> None:
    topic = f"share.t{uuid.uuid4().hex[:8]}.subscriber.v1"
    ensure_topics(bootstrap, {topic: (2, {})})
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_bytes(SECRET + b"\n")
    config = tmp_path / "sink.json"
    config.write_text(json.dumps({"type": "webhook", "topic": topic, "url": receiver.url,
                                  "secret_file": str(secret_file), "allow_http": True, "allow_private_targets": True,
                                  "max_attempts": 2, "max_records": 50, "timeout_s": 2}))
    receiver.answer(Fault(500), Fault(500))  # the first batch fails twice: dead-lettered
    with serve_registry(sqlite_engine) as registry_url:
        schema_id = RegistryClient(registry_url).register(topics.subject(topic), SHARE_SCHEMA)
        publish(bootstrap, topic, range(0, 300), schema_id=schema_id)
        env = {**os.environ, "GSP_KAFKA_BOOTSTRAP": bootstrap, "GSP_SCHEMA_REGISTRY_URL": registry_url,
               "GSP_HOME": str(tmp_path / "home")}
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "gsp", "sink", "run", str(config), "--port", str(port)],
                                   env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            dead_letters = read_dead_letters(bootstrap, f"dlq.{topic}", deadline)
            dead_ids = {e["header"]["event_id"] for body, _ in dead_letters for e in json.loads(body)["events"]}
            assert receiver.wait_for(300 - len(dead_ids), timeout_s=max(1.0, deadline - time.monotonic()))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
                health = json.load(answer)["webhook"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                metrics = answer.read().decode()
            assert health["endpoint"] == receiver.url and health["dead_lettered_batches"] == 1
            assert health["last_failure_at"] and health["last_error"] == "http 500"
            assert f'gsp_webhook_dead_lettered_total{{reason="exhausted",sink="{topic}"}} 1.0' in metrics
            assert "gsp_webhook_request_seconds_bucket" in metrics
            process.terminate()
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            stderr = process.stderr.read() if process.stderr else ""
            if process.stderr:
                process.stderr.close()
    [(_, headers)] = dead_letters
    assert headers["reason"] == "exhausted" and headers["attempts"] == "2" and headers["endpoint"] == receiver.url
    assert dead_ids and not dead_ids & receiver.event_ids
    assert len(receiver.event_ids | dead_ids) == 300  # every event: delivered or dead-lettered
    assert receiver.refused == 0 and "delivered" in stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_dead_letters(bootstrap: str, topic: str, deadline: float) -> list[tuple[bytes, dict[str, str]]]:
    """The first dead letter on ``topic`` (waiting for the topic to appear), as (value, headers)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=1000)
    try:
        while topic not in (consumer.topics() or set()):
            assert time.monotonic() < deadline, f"{topic} never appeared"
            time.sleep(0.2)
        consumer.subscribe([topic])
        while time.monotonic() < deadline:
            for message in consumer:
                return [(message.value, {k: v.decode() for k, v in message.headers})]
        raise AssertionError(f"nothing on {topic}")
    finally:
        consumer.close()


def test_a_bad_webhook_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "sink.json"
    config.write_text(json.dumps({"type": "webhook", "topic": "share.a.b.v1", "url": "https://10.0.0.1/hook",
                                  "secret_file": str(tmp_path / "missing.secret"), "table": "x"}))
    done = subprocess.run([sys.executable, "-m", "gsp", "sink", "run", str(config)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GSP_HOME": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "unknown keys table" in done.stderr and str(config) in done.stderr


def test_a_webhook_config_refusing_its_target_is_one_line(tmp_path: Path) -> None:
    secret = tmp_path / "webhook.secret"
    secret.write_text("s3cret\n")
    config = tmp_path / "sink.json"
    config.write_text(json.dumps({"type": "webhook", "topic": "share.a.b.v1", "url": "https://169.254.169.254/",
                                  "secret_file": str(secret)}))
    done = subprocess.run([sys.executable, "-m", "gsp", "sink", "run", str(config)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GSP_HOME": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "link-local address" in done.stderr and str(config) in done.stderr



def test_https_delivery_verifies_the_certificate_of_the_name(make_sink: Callable[..., WebhookSink],
                                                             tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = WebhookReceiver(SECRET, tls=context)
    server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        dead: DeadLetters = []
        deliver(make_sink(server.url, dead, allow_http=False, ca_file=str(ca_file)), [events(range(5))])
        assert len(server.event_ids) == 5 and not dead
        untrusted = make_sink(server.url, dead, allow_http=False, max_attempts=2)  # the system's CAs: refused
        deliver(untrusted, [events(range(5, 7))])
        assert len(server.event_ids) == 5 and dead[0][1]["reason"] == "exhausted"
        assert "certificate" in dead[0][1]["error"].lower() or "ssl" in dead[0][1]["error"].lower()
    finally:
        server.stop()
