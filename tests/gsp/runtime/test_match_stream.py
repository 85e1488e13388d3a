"""The matcher in the running platform: its registry index survives a worker restart, and a steward's
decision reaches the worker. Runs `gsp serve` and `gsp connect` as a user does."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer

from gsp.runtime.embedded import free_port
from gsp.tools.demo import SOURCES, write_sources
from gsp.tools.synth import Synthetic, generate
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient
from streams.clean import clean_citizen
from tests.gsp.runtime.test_serve import serving, worker_pid
from tests.gsp.tools.test_synth import as_citizen
from tests.topics import read_topic

SUBSCRIBER = "telecom.subscriber"


def health(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as response:
            return json.load(response)
    except (OSError, ValueError):
        return {}


def wait_for(url: str, ready: Any, what: str, timeout_s: float = 90) -> dict[str, Any]:
    state: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = health(url)
        if state and ready(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"worker not {what}: {state}")


def connect(dataset: str, database: Path, tmp_path: Path, env: dict[str, str]) -> None:
    source = SOURCES[dataset]
    config = tmp_path / f"{dataset}.json"
    config.write_text(json.dumps({"name": source.name, "dataset": dataset, "database_url": f"sqlite:///{database}",
                                  "table": source.table, "key_column": source.key_column, "columns": dict(source.columns)}))
    done = subprocess.run([sys.executable, "-m", "gsp", "connect", "run", str(config), "--once"], capture_output=True, check=False,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr


def match_results(bootstrap: str, codec: Codec, topic: str, source_key: str) -> list[dict[str, Any]]:
    def results(messages: list[Any]) -> list[dict[str, Any]]:
        return [r for r in (codec.decode(m.value)[1] for m in messages if m.key == source_key.encode())]

    return results(read_topic(bootstrap, topic, until=lambda ms: bool(results(ms)), timeout_s=60))


def test_the_registry_index_survives_a_worker_restart_and_decisions_reach_the_worker(tmp_path: Path) -> None:
    data: Synthetic = generate(400, seed=5)
    registered = [r for r in data.citizens if clean_citizen(as_citizen({**r, "updated_at": 0})).rejection is None]
    living = sum(1 for r in registered if r["status"] == "ALIVE")
    searched = [row for row in data.subscribers if row["msisdn"] in data.links]  # old CMNDs and unknown ids
    assert len(searched) >= 2
    first, second = searched[0], searched[1]
    database = tmp_path / "sources.db"
    write_sources(sa.create_engine(f"sqlite:///{database}"), Synthetic(data.citizens, [first], data.truth))

    env = {**os.environ, "GSP_HOME": str(tmp_path), "GSP_API_PORT": str(free_port())}
    env.pop("GSP_TOKEN", None)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        runtime = serving(server, tmp_path, tmp_path / "serve.log")
        bootstrap, url = runtime["bootstrap"], runtime["workers"][0]
        registry = RegistryClient(runtime["api_url"], token=runtime["token"])
        codec = Codec(resolve=registry.schema_by_id)

        connect("population.citizen", database, tmp_path, env)
        indexed = wait_for(url, lambda h: h["linkage"]["registry_entries"] == len(registered), "indexed")
        assert indexed["linkage"]["indexed"] == living  # the dead are kept in the table, not proposed

        pid = worker_pid(url)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(url, lambda h: h["pid"] != pid, "restarted")
        # Rebuilt from the registry table's changelog before the match agent decides anything.
        rebuilt = wait_for(url, lambda h: h["linkage"]["ready"], "ready after the restart")
        assert (rebuilt["linkage"]["registry_entries"], rebuilt["linkage"]["indexed"]) == (len(registered), living)

        connect(SUBSCRIBER, database, tmp_path, env)  # the first subscriber: an id the registry does not hold
        [result] = match_results(bootstrap, codec, topics.match(SUBSCRIBER), first["msisdn"])
        assert (result["verdict"], result["method"], result["personal_id"]) == ("POSSIBLE", "search",
                                                                                data.links[first["msisdn"]])
        [queued] = match_results(bootstrap, codec, topics.review(SUBSCRIBER), first["msisdn"])
        assert queued["header"]["event_id"] == result["header"]["event_id"]

        # A steward accepted the second pair before its record arrives: the worker applies it, nobody is asked.
        schema_id, _, _ = registry.latest(topics.subject(topics.REVIEW_DECISIONS))
        proposed = data.links[second["msisdn"]]
        decision = codec.encode(schema_id, {
            "header": {"event_id": str(uuid.uuid4()), "source_system": "gsp.review", "source_key": second["msisdn"],
                       "source_version": "1", "ingested_at": int(time.time() * 1000)},
            "dataset": SUBSCRIBER, "source_key": second["msisdn"], "personal_id": proposed, "decision": "ACCEPTED",
            "reason": "same person, old CMND", "decided_by": "steward", "decided_at": int(time.time() * 1000),
            "probability": 0.9, "levels": {}})
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topics.REVIEW_DECISIONS, key=topics.decision_key(SUBSCRIBER, second["msisdn"], proposed).encode(),
                      value=decision).get(timeout=30)
        producer.close()
        wait_for(url, lambda h: h["linkage"]["decisions"] == 1, "aware of the decision")
        with sa.create_engine(f"sqlite:///{database}").begin() as conn:
            conn.execute(sa.text("INSERT INTO subscriber (updated_at, msisdn, carrier, subscriber_name, id_number, "
                                 "birth_date, address) VALUES (:updated_at, :msisdn, :carrier, :subscriber_name, "
                                 ":id_number, :birth_date, :address)"), {**second, "updated_at": first["updated_at"] + 1})
        connect(SUBSCRIBER, database, tmp_path, env)
        [accepted] = match_results(bootstrap, codec, topics.match(SUBSCRIBER), second["msisdn"])
        assert (accepted["verdict"], accepted["method"], accepted["personal_id"]) == ("MATCHED", "review", proposed)
        assert match_results(bootstrap, codec, topics.review(SUBSCRIBER), first["msisdn"])  # still only the first
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()
