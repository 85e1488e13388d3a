"""The whole platform as separate processes, killed at random, and every stage counted: the fault suite and the soak.

`Platform` starts what an operator runs: `gsp serve` (embedded broker, control plane, stream
workers), one `gsp connect run` per source table (citizens and telecom subscribers, in a SQLite
source database), an agency's subscription approved through the API, and `gsp sink run` writing
the agency's share topic to its own SQLite table. A feeder inserts rows into the source tables
while it runs. `kill` sends SIGKILL to one process; connectors and the sink are started again
by this harness, stream workers by `gsp serve`'s own supervisor.

`Platform.counts` then reads every topic from the beginning and counts distinct event ids and
messages per stage: source rows -> raw (+ held back by the connector) -> clean (+ quarantined)
-> match -> the agency's share topic -> the agency's table. Lost at a stage is what its input
had and it has not; duplicates are messages beyond the distinct ids (delivery is at-least-once).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from gsp.http.client import ApiClient
from gsp.runtime.embedded import free_port, stop_process
from gsp.runtime.topic_read import read_whole
from gsp.tools.demo import CITIZEN, SOURCES, SUBSCRIBER
from gsp.tools.synth.generate import generate
from schemas import topics
from schemas.codec import Codec, CodecError
from schemas.envelope import Verdict
from schemas.registry import RegistryClient

__all__ = ["Counts", "Platform", "soak"]

CONSUMER = ("VN/GOV/bo-cong-an/c06", "Cục Cảnh sát QLHC về TTXH (C06), Bộ Công an")
OWNER = ("VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong", "Cục Viễn thông, Bộ Khoa học và Công nghệ")
TABLES = {CITIZEN: "citizen", SUBSCRIBER: "subscriber"}
VICTIMS = ("connector:population.citizen", "connector:telecom.subscriber", "worker", "sink")


@dataclass
class Counts:
    """Per stage: distinct records and messages; ``lost`` per stage, ``duplicates_per_10k`` on the share topic."""

    fed: dict[str, int]
    stages: dict[str, dict[str, int]] = field(default_factory=dict)   # stage -> {"distinct", "messages"}
    lost: dict[str, int] = field(default_factory=dict)
    sink_rows: int = 0

    @property
    def duplicates_per_10k(self) -> float:
        share = self.stages.get("share", {"distinct": 0, "messages": 0})
        return 10_000 * (share["messages"] - share["distinct"]) / max(1, share["distinct"])

    def as_json(self) -> dict[str, Any]:
        return {"fed": self.fed, "stages": self.stages, "lost": self.lost, "sink_rows": self.sink_rows,
                "duplicates_per_10k_on_share": round(self.duplicates_per_10k, 1)}


class _Child:
    """A `gsp` command run as its own process, restartable; its output appended to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "gsp", *self.args], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process, grace_s=10)


class Platform:
    """One platform in ``home``; use as a context manager (everything is stopped at the end)."""

    def __init__(self, home: Path, *, records: int, seed: int = 11, settings: dict[str, str] | None = None,
                 say: Callable[[str], None] = lambda line: None) -> None:
        self.home = home
        self.records = records
        self.say = say
        self.rng = random.Random(seed)
        self.synthetic = generate(records, seed=seed)
        self.env = {**os.environ, "GSP_HOME": str(home), "GSP_API_PORT": str(free_port()), **(settings or {})}
        self.env.pop("GSP_TOKEN", None)
        self.children: dict[str, _Child] = {}
        self.fed = {CITIZEN: 0, SUBSCRIBER: 0}
        self.kills: list[str] = []
        self._feeding = threading.Event()
        self._feeder: threading.Thread | None = None
        self.sources = sa.create_engine(f"sqlite:///{home / 'sources.db'}")
        self.sink_url = f"sqlite:///{home / 'agency.db'}"
        self.runtime: dict[str, Any] = {}

    # -- start -------------------------------------------------------------------------------------------

    def __enter__(self) -> Platform:
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            self._serve()
            self._subscribe()
            self._create_source_tables()
            for dataset in (CITIZEN, SUBSCRIBER):
                self._connector(dataset)
            self._sink()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def _serve(self) -> None:
        serve = self.children["serve"] = _Child(["serve"], self.env, self.home / "serve.log")
        serve.start()
        runtime_file = self.home / "runtime.json"
        deadline = time.monotonic() + 120
        while not runtime_file.exists() or not (self.home / "admin.token").exists():
            if time.monotonic() > deadline or (serve.process is not None and serve.process.poll() is not None):
                raise RuntimeError(f"gsp serve did not start; see {serve.log}")
            time.sleep(0.2)
        self.runtime = json.loads(runtime_file.read_text())
        self.admin_token = (self.home / "admin.token").read_text().strip()
        self.env["GSP_API_URL"] = self.runtime["api_url"]
        self.say(f"platform up: {self.runtime['api_url']}, kafka {self.runtime['bootstrap']}")

    def _client(self, token: str) -> ApiClient:
        return ApiClient(self.runtime["api_url"], token=token)

    def _subscribe(self) -> None:
        """The agency's subscription: every verdict, so every subscriber record that is matched is delivered."""
        admin = self._client(self.admin_token)
        tokens = {}
        for agency, name, grant in ((CONSUMER[0], CONSUMER[1], {"role": "consumer"}),
                                    (OWNER[0], OWNER[1], {"role": "owner", "datasets": [SUBSCRIBER]})):
            admin.post("/api/agencies", {"agency": agency, "name": name})
            tokens[agency] = admin.post("/api/credentials", {"agency": agency, "grants": [grant]})["token"]
        asked = self._client(tokens[CONSUMER[0]]).post("/api/subscriptions", {
            "dataset": SUBSCRIBER, "fields": ["msisdn", "carrier", "verdict"], "verdicts": [v.value for v in Verdict],
            "purpose": "Kiểm thử chịu lỗi", "legal_basis": "Luật Căn cước 2023"})
        path = f"/api/subscriptions/{urllib.parse.quote(asked['subscription_id'], safe='')}"
        self._client(tokens[OWNER[0]]).post(f"{path}/versions/{asked['versions'][-1]['version']}/approve", {})
        self.subscription = self._client(tokens[CONSUMER[0]]).get(path)
        self.share_topic = str(self.subscription["topic"])
        self.say(f"subscription {asked['subscription_id']} approved -> {self.share_topic}")

    def _create_source_tables(self) -> None:
        metadata = sa.MetaData()
        self.tables = {}
        for dataset, rows in ((CITIZEN, self.synthetic.citizens), (SUBSCRIBER, self.synthetic.subscribers)):
            columns = [c for c in rows[0] if c != "updated_at"]
            self.tables[dataset] = sa.Table(
                TABLES[dataset], metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("updated_at", sa.BigInteger, nullable=False, index=True), *[sa.Column(c, sa.Text) for c in columns])
        metadata.create_all(self.sources)

    def _connector(self, dataset: str) -> None:
        source = SOURCES[dataset]
        config = self.home / f"connector-{dataset}.json"
        config.write_text(json.dumps({"name": source.name, "dataset": dataset, "database_url": f"sqlite:///{self.home / 'sources.db'}",
                                      "table": source.table, "key_column": source.key_column, "columns": source.columns,
                                      "poll_interval_s": 0.2}))
        child = self.children[f"connector:{dataset}"] = _Child(["connect", "run", str(config)], self.env,
                                                               self.home / f"connector-{dataset}.log")
        child.start()

    def _sink(self) -> None:
        config = self.home / "sink.json"
        config.write_text(json.dumps({"name": "c06-thue-bao", "topic": self.share_topic, "database_url": self.sink_url,
                                      "table": "thue_bao"}))
        child = self.children["sink"] = _Child(["sink", "run", str(config)], self.env, self.home / "sink.log")
        child.start()

    # -- run ---------------------------------------------------------------------------------------------

    def feed(self, *, rows_per_s: float) -> None:
        """Insert the generated rows (citizens first, in step with subscribers) at about ``rows_per_s``, in a thread."""
        self._feeding.set()

        def run() -> None:
            chunk = max(1, int(rows_per_s / 10))
            at = 0
            while self._feeding.is_set() and at < self.records:
                with self.sources.begin() as conn:
                    for dataset, rows in ((CITIZEN, self.synthetic.citizens), (SUBSCRIBER, self.synthetic.subscribers)):
                        now_ms = int(time.time() * 1000)
                        batch = [{**row, "updated_at": now_ms} for row in rows[at:at + chunk]]
                        conn.execute(sa.insert(self.tables[dataset]), batch)
                        self.fed[dataset] += len(batch)
                at += chunk
                time.sleep(0.1)
            self._feeding.clear()

        self._feeder = threading.Thread(target=run, name="feeder", daemon=True)
        self._feeder.start()

    def stop_feeding(self) -> None:
        self._feeding.clear()
        self.wait_fed(timeout_s=30)

    @property
    def feeding(self) -> bool:
        return self._feeding.is_set()

    def wait_fed(self, timeout_s: float) -> None:
        if self._feeder is not None:
            self._feeder.join(timeout_s)

    def kill(self, victim: str | None = None) -> str:
        """SIGKILL one process (chosen at random unless named); the harness restarts connectors and the sink."""
        victim = victim or self.rng.choice(VICTIMS)
        if victim == "worker":
            self.wait_worker_up(timeout_s=60)  # a previous kill's restart is done: this one hits a working worker
            pid = self.worker_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        else:
            child = self.children[victim]
            child.kill()
            child.start()
        self.kills.append(victim)
        return victim

    def kill_broker(self) -> int:
        """SIGKILL the embedded broker (a child of `gsp serve` listening on the runtime's port): its pid."""
        serve = self.children["serve"].process
        assert serve is not None
        port = self.runtime["bootstrap"].rsplit(":", 1)[1]
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == serve.pid and f"--listener-url tcp://127.0.0.1:{port}" in command:
                os.kill(int(entry.name), signal.SIGKILL)
                self.kills.append("broker")
                return int(entry.name)
        raise RuntimeError("no embedded broker among gsp serve's children")

    def control_health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.runtime["api_url"] + "/health", timeout=5) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:  # not ok: 503 with the same body
            return dict(json.load(exc))

    def wait_worker_up(self, *, timeout_s: float) -> None:
        """Until the stream worker answers /health with ok (after a restart), or the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            health = self.worker_health()
            if health is not None and health.get("status") == "ok":
                return
            time.sleep(0.2)
        raise RuntimeError(f"the stream worker is not healthy after {timeout_s:.0f}s: {self.worker_health()}")

    def worker_pid(self) -> int | None:
        health = self.worker_health()
        return int(health["pid"]) if health and "pid" in health else None

    def worker_health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self.runtime["workers"][0] + "/health", timeout=2) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            return dict(json.load(exc))
        except (OSError, ValueError):
            return None

    def pids(self) -> dict[str, int]:
        """Every process of the platform by role (for resident memory)."""
        out = {name: c.process.pid for name, c in self.children.items() if c.process and c.process.poll() is None}
        if (worker := self.worker_pid()) is not None:
            out["worker"] = worker
        return out

    # -- count -------------------------------------------------------------------------------------------

    def sink_rows(self) -> int:
        engine = sa.create_engine(self.sink_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM thue_bao")).scalar_one())
        except sa.exc.OperationalError:  # the sink has not created its table yet
            return 0
        finally:
            engine.dispose()

    def settle(self, *, timeout_s: float, say_every_s: float = 5.0) -> Counts:
        """Once nothing is fed any more: count until every stage has everything its input had, or the time is up."""
        deadline = time.monotonic() + timeout_s
        shown = 0.0
        counts = self.counts()
        while time.monotonic() < deadline and (any(counts.lost.values()) or counts.sink_rows
                                                 < counts.stages["share"]["distinct"]):
            if time.monotonic() - shown >= say_every_s:
                shown = time.monotonic()
                self.say(f"settling: lost so far {counts.lost}, sink {counts.sink_rows}")
            time.sleep(1.0)
            counts = self.counts()
        return counts

    def counts(self) -> Counts:
        registry = RegistryClient(self.runtime["api_url"], token=self.admin_token)
        codec = Codec(resolve=registry.schema_by_id)
        bootstrap = self.runtime["bootstrap"]
        ids: dict[str, tuple[set[str], int]] = {}
        for dataset in (CITIZEN, SUBSCRIBER):
            for stage, topic in (("raw", topics.raw(dataset)), ("quarantine", topics.quarantine(dataset)),
                                 ("clean", topics.clean(dataset)), ("match", topics.match(dataset))):
                ids[f"{stage}:{dataset}"] = _event_ids(bootstrap, topic, codec, stage)
        ids["share"] = _event_ids(bootstrap, self.share_topic, codec, "share")
        counts = Counts(fed=dict(self.fed))
        for name, (seen, messages) in ids.items():
            counts.stages[name] = {"distinct": len(seen), "messages": messages}
        quarantine = {d: _by_stage(bootstrap, topics.quarantine(d), codec) for d in (CITIZEN, SUBSCRIBER)}
        for dataset in (CITIZEN, SUBSCRIBER):
            raw = ids[f"raw:{dataset}"][0]
            counts.lost[f"connector:{dataset}"] = self.fed[dataset] - len(raw | quarantine[dataset]["connector"])
            counts.lost[f"clean:{dataset}"] = len(raw - ids[f"clean:{dataset}"][0] - quarantine[dataset]["clean"])
        clean_subscribers = ids[f"clean:{SUBSCRIBER}"][0]
        counts.lost["match"] = len(clean_subscribers - ids[f"match:{SUBSCRIBER}"][0] - quarantine[SUBSCRIBER]["match"])
        counts.lost["share"] = len(ids[f"match:{SUBSCRIBER}"][0]) - len(ids["share"][0])
        counts.sink_rows = self.sink_rows()
        counts.lost["sink"] = len(ids["share"][0]) - counts.sink_rows
        return counts

    def close(self) -> None:
        self._feeding.clear()
        for name, child in reversed(list(self.children.items())):
            if name != "serve":
                child.stop()
        if "serve" in self.children:
            serve = self.children["serve"]
            if serve.process is not None and serve.process.poll() is None:
                serve.process.send_signal(signal.SIGINT)
                try:
                    serve.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    serve.process.kill()
                    serve.process.wait(timeout=10)
        self.sources.dispose()


def _messages(bootstrap: str, topic: str, *, timeout_s: float = 60.0) -> list[Any]:
    """Every message of ``topic`` now (what was read by ``timeout_s`` if the topic could not be read whole)."""
    return read_whole(bootstrap, topic, timeout_s=timeout_s, client_id="gsp-faults")[0]


def _event_ids(bootstrap: str, topic: str, codec: Codec, stage: str) -> tuple[set[str], int]:
    """Distinct event ids on a topic (the agency's own ids on a share topic), and its message count."""
    seen: set[str] = set()
    messages = _messages(bootstrap, topic)
    for message in messages:
        if message.value is None:
            continue
        try:
            _, value = codec.decode(message.value)
        except CodecError:
            continue
        header = value.get("header") or {}
        if isinstance(header, dict) and header.get("event_id"):
            seen.add(str(header["event_id"]))
    return seen, len(messages)


def _by_stage(bootstrap: str, topic: str, codec: Codec) -> dict[str, set[str]]:
    """Quarantined event ids by the stage that held them back (connector or clean)."""
    out: dict[str, set[str]] = {"connector": set(), "clean": set(), "match": set()}
    for message in _messages(bootstrap, topic):
        try:
            _, issue = codec.decode(message.value)
        except CodecError:
            continue
        out.setdefault(str(issue.get("stage")), set()).add(str(issue["header"]["event_id"]))
    return out


def resident_mb(pid: int) -> float | None:
    """Resident memory of a process, in MB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def soak(home: Path, *, minutes: float, rows_per_s: float, kill_every_s: float, as_json: bool = False,
         sample_every_s: float = 30.0) -> int:
    """`gsp bench --soak`: the whole flow under steady load with periodic kills; memory over time, counts at the end."""
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    records = max(1, int(rows_per_s * minutes * 60))

    def say(line: str) -> None:
        print(f"gsp soak: {line}", file=sys.stderr, flush=True)

    samples: list[dict[str, Any]] = []
    with Platform(home, records=records, say=say) as platform:
        platform.feed(rows_per_s=rows_per_s)
        started = last_kill = last_sample = time.monotonic()
        end = started + minutes * 60
        while time.monotonic() < end:
            now = time.monotonic()
            if now - last_sample >= sample_every_s:  # the first after a while: not processes still starting
                last_sample = now
                rss = {name: mb for name, pid in platform.pids().items() if (mb := resident_mb(pid)) is not None}
                samples.append({"minute": round((now - started) / 60, 2), "rss_mb": {k: round(v, 1) for k, v in rss.items()},
                                "fed": sum(platform.fed.values()), "sink_rows": platform.sink_rows()})
                say(f"{samples[-1]['minute']:.1f} min: fed {samples[-1]['fed']}, agency rows "
                    f"{samples[-1]['sink_rows']}, resident MB " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
            if kill_every_s and now - last_kill >= kill_every_s:
                last_kill = now
                say(f"kill -9 {platform.kill()}")
            time.sleep(1.0)
        platform.stop_feeding()
        say("load stopped; waiting for every stage to finish")
        counts = platform.settle(timeout_s=600, say_every_s=15)
    report = {"minutes": minutes, "rows_per_s": rows_per_s, "kills": platform.kills, "memory": samples,
              **counts.as_json()}
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        print(f"soak: {minutes} min at {rows_per_s} rows/s per table, {len(platform.kills)} kills "
              f"({', '.join(sorted(set(platform.kills))) or 'none'})")
        print("resident MB, first -> last sample: " + ", ".join(
            f"{name} {samples[0]['rss_mb'].get(name, 0):.0f} -> {samples[-1]['rss_mb'].get(name, 0):.0f}"
            for name in samples[-1]["rss_mb"]))
        print("lost per stage: " + ", ".join(f"{k} {v}" for k, v in counts.lost.items()))
        print(f"agency rows {counts.sink_rows}; duplicates on the agency's topic per 10,000: "
              f"{counts.duplicates_per_10k:.1f}")
    return 0 if not any(counts.lost.values()) else 1


def early_kill(home: Path, *, records: int = 1500, seed: int = 1, as_json: bool = False) -> int:
    """`gsp bench --early-kill`: the stream worker killed with SIGKILL the moment its first match results reach
    the broker (before or around its first offset commits), then every stage counted. Exit status 1 if a record
    was lost: the window where Faust's consumer used to skip records (streams.consumer, docs/architecture.md)."""
    def say(line: str) -> None:
        print(f"gsp early-kill: {line}", file=sys.stderr, flush=True)

    counts = kill_worker_early(home, records=records, seed=seed, say=say)
    if as_json:
        print(json.dumps(counts.as_json(), indent=1))
    else:
        print("lost per stage: " + ", ".join(f"{k} {v}" for k, v in counts.lost.items()))
    return 0 if not any(counts.lost.values()) else 1


def kill_worker_early(home: Path, *, records: int, seed: int, say: Callable[[str], None]) -> Counts:
    """A fresh platform in ``home``; the worker killed as its first match results reach the broker; the counts."""
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    with Platform(home, records=records, seed=seed, say=say) as platform:
        match = [TopicPartition(topics.match(SUBSCRIBER), p) for p in range(int(platform.env.get("GSP_PARTITIONS", 4)))]
        consumer = KafkaConsumer(bootstrap_servers=platform.runtime["bootstrap"], client_id="gsp-early-kill")
        platform.feed(rows_per_s=records / 20)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and not sum(consumer.end_offsets(match).values()):
                time.sleep(0.02)
        finally:
            consumer.close()
        say(f"first match results on the broker; kill -9 {platform.kill('worker')}")
        platform.wait_fed(timeout_s=120)
        return platform.settle(timeout_s=180, say_every_s=15)
