"""`gsp serve` as a user runs it: agencies enrolled, a subscription requested and approved with the CLI."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer

from gsp.runtime.embedded import free_port
from schemas.codec import Codec, contract, schema_id_of
from schemas.registry import RegistryClient
from tests.topics import read_topic

OWNER = "VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong"   # the declared owner of telecom.subscriber


def gsp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gsp", *args], capture_output=True, text=True, timeout=60, env=env)


def test_a_subscription_approved_with_the_cli_reaches_the_worker(tmp_path: Path) -> None:
    env = {**os.environ, "GSP_HOME": str(tmp_path), "GSP_API_PORT": str(free_port())}
    env.pop("GSP_TOKEN", None)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        runtime = serving(server, tmp_path, tmp_path / "serve.log")
        owner = {**env, "GSP_TOKEN": enrol(env, OWNER, "Cục Viễn thông", "owner:telecom.subscriber")}
        consumer = {**env, "GSP_TOKEN": enrol(env, "VN/GOV/bo-y-te/so-y-te", "Sở Y tế", "consumer")}
        steward = {**env, "GSP_TOKEN": enrol(env, "VN/GOV/gsp/stewards", "Tổ quản trị dữ liệu", "steward:*")}
        ask = ["--dataset", "telecom.subscriber", "--purpose", "Đối soát", "--legal-basis", "Luật Căn cước 2023"]
        requested = gsp("subscription", "request", *ask, "--fields", "msisdn,personal_id", "--where", "carrier=Viettel",
                        env=consumer)
        assert requested.returncode == 0, requested.stderr
        refused = gsp("subscription", "request", *ask, "--fields", "msisdn,cccd", env=consumer)
        assert refused.returncode == 2 and "unknown field 'cccd'" in refused.stderr and "Traceback" not in refused.stderr
        approved = gsp("subscription", "approve", "bo-y-te-so-y-te:telecom.subscriber", env=owner)
        assert approved.returncode == 0, approved.stderr
        listed = gsp("subscription", "list", env=consumer)
        assert "bo-y-te-so-y-te:telecom.subscriber" in listed.stdout and "share.bo-y-te-so-y-te.subscriber.v1" in listed.stdout
        anonymous = gsp("subscription", "list", env=env | {"GSP_HOME": str(tmp_path / "elsewhere"),
                                                          "GSP_API_URL": runtime["api_url"]})
        assert anonymous.returncode == 2 and "GSP_TOKEN" in anonymous.stderr

        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 1)
        # Every server binds the loopback address unless GSP_API_HOST / GSP_OPS_HOST say otherwise.
        for url in (runtime["api_url"], runtime["workers"][0]):
            assert listening_address(int(url.rsplit(":", 1)[1].split("/")[0])) == "127.0.0.1", url
        scraped = b""
        for _ in range(50):  # the worker sets its gauges every second, on its own loop
            with urllib.request.urlopen(runtime["workers"][0] + "/metrics", timeout=5) as response:
                scraped = response.read()
            if b"gsp_subscriptions 1.0" in scraped:
                break
            time.sleep(0.1)
        assert b"gsp_subscriptions 1.0" in scraped
        assert RegistryClient(runtime["api_url"], token=consumer["GSP_TOKEN"]).latest(
            "share.bo-y-te-so-y-te.subscriber.v1-value")[1] == 1
        check_bad_bytes_are_quarantined_and_the_pipeline_goes_on(runtime)
        check_a_steward_can_discard_them_with_the_cli(steward)
        check_a_killed_worker_is_restarted_and_nothing_is_lost(runtime)
        check_a_connector_runs_as_its_own_process(runtime, env, tmp_path)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()
    assert not (tmp_path / "runtime.json").exists()


def check_bad_bytes_are_quarantined_and_the_pipeline_goes_on(runtime: dict[str, str]) -> None:
    bootstrap = runtime["bootstrap"]
    registry = RegistryClient(runtime["api_url"], token=runtime["token"])
    schema_id, _, _ = registry.latest("raw.telecom.subscriber.v1-value")
    codec = Codec(resolve=registry.schema_by_id)
    header = {"event_id": "e-after-garbage", "source_system": "telecom.test", "source_key": "0987654321",
              "source_version": "1", "ingested_at": int(time.time() * 1000)}
    valid = codec.encode(schema_id, {"header": header, "msisdn": "0987654321", "carrier": "Viettel",
                                     "subscriber_name": "Đỗ Minh Anh", "id_number": "001099000123",
                                     "birth_date": "1999", "address": None, "updated_at": 1})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    # Same key, so the same partition: the valid event comes after the garbage in one ordered log.
    for value in (b"\x00\x00\x00\x00\x01not avro at all", b"plain text", None, valid):  # None: a tombstone
        producer.send("raw.telecom.subscriber.v1", key=b"0987654321", value=value)
    producer.flush()
    producer.close()
    issues = [codec.decode(m.value)[1] for m in read_topic(bootstrap, "quarantine.telecom.subscriber.v1",
                                                           until=lambda ms: len(ms) >= 3)]
    assert sorted(i["rule"] for i in issues) == ["avro.decode", "avro.decode", "tombstone"]
    assert {i["original"] for i in issues} == {b"\x00\x00\x00\x00\x01not avro at all", b"plain text", b""}
    [cleaned] = [codec.decode(m.value)[1] for m in read_topic(bootstrap, "clean.telecom.subscriber.v1",
                                                               until=lambda ms: len(ms) >= 1)]
    assert cleaned["header"]["event_id"] == "e-after-garbage"


def check_a_steward_can_discard_them_with_the_cli(env: dict[str, str]) -> None:
    listed: list[str] = []
    for _ in range(100):  # the control plane indexes the quarantine topics in the background
        result = gsp("quarantine", "list", "--dataset", "telecom.subscriber", "--rule", "avro.decode", env=env)
        listed = result.stdout.splitlines()
        if len(listed) == 3:  # the header row and the two undecodable records (the third is a tombstone)
            break
        time.sleep(0.2)
    assert len(listed) == 3, listed
    event_id = listed[1].split("\t")[0]
    shown = json.loads(gsp("quarantine", "show", event_id, env=env).stdout)
    assert shown["rule"] == "avro.decode" and shown["original"]["format"] in ("text", "base64")
    refused = gsp("quarantine", "discard", event_id, "--reason", "", env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    done = gsp("quarantine", "discard", event_id, "--reason", "not an event: sent by a test", env=env)
    assert done.returncode == 0 and f"discarded {event_id}" in done.stdout
    again = gsp("quarantine", "discard", event_id, "--reason", "twice", env=env)
    assert again.returncode == 2
    left = gsp("quarantine", "list", "--dataset", "telecom.subscriber", "--rule", "avro.decode", env=env).stdout
    assert event_id not in left and len(left.splitlines()) == 2


@contextlib.contextmanager
def served(home: Path, **settings: str) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """A `gsp serve` in ``home`` with these GSP_* settings, as a user starts it: (its environment for CLI
    commands as the admin, its runtime file with the admin token); stopped with Ctrl-C at the end."""
    env = {**os.environ, "GSP_HOME": str(home), "GSP_API_PORT": str(free_port()), **settings}
    env.pop("GSP_TOKEN", None)
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log,
                              text=True)
    try:
        yield env, serving(server, home, home / "serve.log")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()


def serving(server: subprocess.Popen[str], home: Path, log: Path) -> dict[str, Any]:
    """The runtime file of a `gsp serve` once it says it serves, and the admin token its first start announces."""
    lines = [server.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
    assert lines[0].startswith("gsp: created the first admin credential in"), (lines, log.read_text()[-2000:])
    assert lines[1].startswith("gsp: control plane"), (lines, log.read_text()[-2000:])
    assert ((home / "admin.token").stat().st_mode & 0o777) == 0o600
    return {**json.loads((home / "runtime.json").read_text()), "token": (home / "admin.token").read_text().strip()}


def enrol(env: dict[str, str], agency: str, name: str, role: str) -> str:
    """Register ``agency`` and issue it a credential with ``role``, as the admin: its token."""
    registered = gsp("agency", "register", agency, "--name", name, env=env)
    assert registered.returncode == 0, registered.stderr
    issued = gsp("credential", "issue", "--agency", agency, "--role", role, "--token-only", env=env)
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


def wait_for_worker(runtime: dict[str, Any], ready: Callable[[dict[str, Any]], bool]) -> None:
    health: dict[str, Any] = {}
    for _ in range(150):
        try:
            with urllib.request.urlopen(runtime["workers"][0] + "/health", timeout=1) as response:
                health = json.load(response)
        except OSError:
            pass
        if ready(health):
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker never got there: {health}")


def listening_address(port: int) -> str | None:
    """The IPv4 address a listening socket on ``port`` is bound to, from the kernel's table."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            return ".".join(str(b) for b in reversed(bytes.fromhex(address)))
    return None


def worker_pid(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as response:
            return int(json.load(response)["pid"])
    except (OSError, ValueError, KeyError):
        return None


def clean_event_ids(bootstrap: str, prefix: str, want: int, timeout_s: float) -> set[str]:
    """The distinct event ids with ``prefix`` on the clean topic: a restarted worker may clean a record
    twice (at least once), so the wait is for ``want`` distinct ids, not ``want`` messages."""
    codec, seen, read = Codec(), set(), [0]

    def enough(messages: list[Any]) -> bool:
        for message in messages[read[0]:]:
            if prefix.encode() in message.value:  # cheap filter before decoding
                if not codec.knows(schema_id_of(message.value)):
                    codec.add(schema_id_of(message.value), contract("vn.gsp.telecom.Subscriber"))
                seen.add(codec.decode(message.value)[1]["header"]["event_id"])
        read[0] = len(messages)
        return len(seen) >= want

    enough(read_topic(bootstrap, "clean.telecom.subscriber.v1", until=enough, timeout_s=timeout_s))
    return seen


def check_a_killed_worker_is_restarted_and_nothing_is_lost(runtime: dict[str, Any]) -> None:
    bootstrap, worker_url = runtime["bootstrap"], runtime["workers"][0]
    registry = RegistryClient(runtime["api_url"], token=runtime["token"])
    schema_id, _, _ = registry.latest("raw.telecom.subscriber.v1-value")
    codec = Codec(resolve=registry.schema_by_id)
    prefix, count = f"kill-{uuid.uuid4().hex[:6]}", 4000
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for i in range(count):
        msisdn = f"09{i:08d}"
        header = {"event_id": f"{prefix}-{i}", "source_system": "telecom.test", "source_key": msisdn,
                  "source_version": "1", "ingested_at": int(time.time() * 1000)}
        producer.send("raw.telecom.subscriber.v1", key=msisdn.encode(), value=codec.encode(schema_id, {
            "header": header, "msisdn": msisdn, "carrier": "Viettel", "subscriber_name": "Đỗ Minh Anh",
            "id_number": "001099000123", "birth_date": "1999", "address": None, "updated_at": 1}))
    producer.flush()
    producer.close()
    pid = worker_pid(worker_url)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # mid-stream: some records processed, some not, offsets partly committed
    restarted = None
    for _ in range(300):
        restarted = worker_pid(worker_url)
        if restarted is not None and restarted != pid:
            break
        time.sleep(0.2)
    assert restarted is not None and restarted != pid, "the worker was not restarted"
    seen = clean_event_ids(bootstrap, prefix, count, timeout_s=120)
    assert seen == {f"{prefix}-{i}" for i in range(count)}


def check_a_connector_runs_as_its_own_process(runtime: dict[str, Any], env: dict[str, str], tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'carrier.db'}")
    metadata = sa.MetaData()
    table = sa.Table("thue_bao", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("updated_at", sa.BigInteger), sa.Column("so_thue_bao", sa.Text),
                     *[sa.Column(c, sa.Text) for c in ("carrier", "subscriber_name", "id_number", "birth_date", "address")])
    metadata.create_all(engine)
    keys = [f"0912{i:06d}" for i in range(50)]
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [{"updated_at": 1000 + i, "so_thue_bao": key, "carrier": "VinaPhone",
                                         "subscriber_name": "Vũ Thị Lan" if i else None, "id_number": "001185000001",
                                         "birth_date": "1985", "address": None} for i, key in enumerate(keys)])
    config = tmp_path / "connector.json"
    config.write_text(json.dumps({"name": "vinaphone-thue-bao", "dataset": "telecom.subscriber",
                                  "database_url": f"sqlite:///{tmp_path / 'carrier.db'}", "table": "thue_bao",
                                  "key_column": "so_thue_bao", "columns": {"msisdn": "so_thue_bao"}}))
    done = gsp("connect", "run", str(config), "--once", env=env)
    assert done.returncode == 0, done.stderr
    assert "vinaphone-thue-bao: published 49, quarantined 1" in done.stderr
    raw = {m.key.decode() for m in read_topic(runtime["bootstrap"], "raw.telecom.subscriber.v1")} & set(keys)
    assert raw == set(keys[1:])  # the row with a NULL name went to quarantine instead
    again = gsp("connect", "run", str(config), "--once", env=env)  # the stored position: nothing to publish twice
    assert "published 0, quarantined 0" in again.stderr
    config.write_text(json.dumps({"name": "x", "dataset": "telecom.subscriber", "database_url": "sqlite://",
                                  "table": "thue_bao", "key_colum": "so_thue_bao"}))
    bad = gsp("connect", "run", str(config), "--once", env=env)
    assert bad.returncode == 2 and "unknown keys key_colum; missing keys key_column" in bad.stderr
