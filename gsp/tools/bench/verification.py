"""Verification without data: verifications per second through each path, next to the rules alone.

    python -m gsp.tools.bench.verification [--records 20000] [--batch 1000] [--json]

Data: `gsp.tools.synth.generate(records, seed=7)`: its citizens are the registry, its telecom
subscribers (with their dirt: names without diacritics, wrong years, unknown ids, ...) the requests,
asking personal_id, full_name, birth_date and phone. Figures, each next to the first:

* ``verify_rules``: `streams.verify.Verifier.verify` over every request against a worker's registry
  replica (`streams.matching.Linker`, filled as the worker fills it), in batches of ``--batch``, no
  Kafka; baseline: the stream's three-field check alone (`streams.matching.check`) on the same values,
  uncleaned: what cleaning the requests and the mask cost on top of the match logic. With it, the
  bytes per citizen of that replica with and without the extra fields verification compares
  (``replica_bytes_per_citizen``, tracemalloc; entries decoded from JSON as a worker reads them).
* ``verify_kafka``: the agency's own path. `gsp serve` with one stream worker on an embedded broker in
  a throwaway GSP_HOME (never GSP_KAFKA_BOOTSTRAP: a benchmark writes to no real cluster); the
  registry loaded through the pipeline (raw -> clean -> registry table -> replica); then every request
  produced on ``verify.<agency>.requests.v1`` in messages of ``--batch``, timed from the first send
  to the last reply read on ``verify.<agency>.replies.v1`` (by a consumer whose fetches wait at most
  50 ms, as a client waiting for answers should set it).
* ``verify_http``: ``POST /api/verifications`` with ``--batch`` requests each, one after another,
  as `gsp verify` sends them (the control plane forwards them to the worker over Kafka).

Both paths get one untimed warm-up batch first (the worker's consumer-group join and its discovery
of the agency's topic are not verification). Every answer from both paths is compared with the
rules' (``agrees_with_rules``). Progress goes to stderr; a table (or one JSON object with
``--json``) to stdout. `gsp bench` runs it too, at its ``--records``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from connectors.sql_source import map_columns
from gsp.errors import UserError
from gsp.http.client import ApiClient
from gsp.runtime.embedded import free_port
from gsp.tools.synth import Synthetic, generate
from schemas import envelope, topics
from schemas.codec import Codec, CodecError
from schemas.datasets import dataset
from schemas.registry import RegistryClient
from schemas.settings import ADMIN_TOKEN_FILE
from streams.clean import clean_citizen
from streams.linkage import Model
from streams.linkage.text import parse_name, province_code, token_forms
from streams.matching import DEFAULT_MODEL, Linker, RegistryEntries, check
from streams.verify import Verifier

__all__ = ["main", "run_verification"]

OWNER, CONSUMER = "VN/GOV/bo-cong-an/c06", "VN/GOV/bo-y-te/bhxh"  # the registry's declared owner; an agency
SLUG = "bo-y-te-bhxh"
FIELDS = ("personal_id", "full_name", "birth_date", "phone")
_ENV_OFF = ("GSP_KAFKA_BOOTSTRAP", "GSP_SCHEMA_REGISTRY_URL", "GSP_DATABASE_URL", "GSP_TOKEN", "GSP_API_URL",
            "GSP_HOME", "GSP_API_PORT")


def _figure(label: str, n: int, seconds: float, baseline: str, base_n: int, base_seconds: float,
            **extra: Any) -> dict[str, Any]:
    """The shape of every `gsp bench` figure (see gsp/tools/bench/platform.py)."""
    rate, base_rate = n / seconds, base_n / base_seconds
    return {"label": label, "records": n, "elapsed_s": round(seconds, 4), "records_per_s": round(rate, 1),
            "us_per_record": round(1e6 / rate, 2), "baseline": baseline, "baseline_records_per_s": round(base_rate, 1),
            "ratio": round(rate / base_rate, 3), **extra}


def _requests(synthetic: Synthetic) -> list[dict[str, Any]]:
    return [{"request_id": f"r{i}", "personal_id": row["id_number"], "full_name": row["subscriber_name"],
             "birth_date": row["birth_date"], "phone": row["msisdn"]} for i, row in enumerate(synthetic.subscribers)]


def _citizens(synthetic: Synthetic) -> list[dict[str, Any]]:
    """The generated citizens as the population connector publishes them."""
    d = dataset("population.citizen")
    now = int(time.time() * 1000)
    return [{**map_columns(row, d.source_columns),
             "header": envelope.header(d.source_system, str(row["personal_id"]), str(i), now)}
            for i, row in enumerate(synthetic.citizens)]


def _entries(citizens: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(personal id, registry entry) of each clean citizen, as the registry stage makes them."""
    entries = RegistryEntries(dataset("population.citizen"), [dataset("telecom.subscriber")])
    return [entries.entry(cleaned.record) for cleaned in map(clean_citizen, citizens) if cleaned.rejection is None]


def _clear_name_caches() -> None:
    for cached in (parse_name, token_forms, province_code):
        cached.cache_clear()


def _replica(entries: list[tuple[str, dict[str, Any]]]) -> Linker:
    """The registry as a worker holds it."""
    linker = Linker(Model.load(DEFAULT_MODEL))
    for personal_id, entry in entries:
        linker.apply_entry(personal_id, entry)
    return linker


def _replica_bytes(entries: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Bytes per citizen of a worker's replica without and with the extra fields verification compares (phone,
    province_code), by tracemalloc, the entries decoded from JSON as the worker reads the registry changelog
    (so their strings are the replica's own) and the name caches, which are the process's, cleared."""
    wire = [(personal_id, json.dumps(entry)) for personal_id, entry in entries]
    model = Model.load(DEFAULT_MODEL)
    out = {}
    for label, extras in (("without_extras", False), ("with_extras", True)):
        _clear_name_caches()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            linker = Linker(model, extras=extras)
            for personal_id, text in wire:
                linker.apply_entry(personal_id, json.loads(text))
            _clear_name_caches()
            out[label] = round((tracemalloc.get_traced_memory()[0] - before) / max(len(wire), 1))
        finally:
            tracemalloc.stop()
        del linker
    return out


def _best(work: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of three runs, garbage collection paused: for the pure figure."""
    gc.collect()
    gc.disable()
    try:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            result = work()
            runs.append((time.perf_counter() - started, result))
        return min(runs, key=lambda run: float(run[0]))
    finally:
        gc.enable()


def _rules(requests: list[dict[str, Any]], linker: Linker, batch: int
           ) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """The rules' figure, their seconds and their answers."""
    verifier = Verifier(dataset("population.citizen"), [dataset("telecom.subscriber")])
    seconds, answers = _best(lambda: [a for at in range(0, len(requests), batch)
                                      for a in verifier.verify(requests[at:at + batch], FIELDS, linker.entry)])
    values = [(r["personal_id"] or "", r["full_name"] or "", r["birth_date"] or "") for r in requests]
    check_s, _ = _best(lambda: [check(p, n, b, linker.entry) for p, n, b in values])
    n = len(requests)
    return _figure("verify: rules alone (streams.verify)", n, seconds, "the three-field check alone, uncleaned",
                   n, check_s, registry=linker.entries,
                   verdicts={v: sum(1 for a in answers if a.get("verdict", "error") == v)
                             for v in ("MATCHED", "MISMATCH", "NOT_FOUND", "error")}), seconds, answers


# --- a gsp serve of its own ----------------------------------------------------------------------------------------


@contextmanager
def _serving(home: Path, say: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """`gsp serve` with one worker in ``home`` on its own embedded broker: its runtime file and admin token."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_OFF}
    env.update(GSP_HOME=str(home), GSP_API_PORT=str(free_port()))
    log = (home / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log,
                              text=True)
    try:
        assert server.stdout is not None
        for _ in range(5):  # the first start announces the admin token, then where it serves
            line = server.stdout.readline()
            if not line or line.startswith("gsp: control plane"):
                break
        if server.poll() is not None or not (home / "runtime.json").exists():
            raise UserError(f"gsp serve did not start; see {home / 'serve.log'}")
        runtime = json.loads((home / "runtime.json").read_text())
        say(f"gsp serve: control plane {runtime['api_url']}, kafka {runtime['bootstrap']}, one worker")
        yield {**runtime, "token": (home / ADMIN_TOKEN_FILE).read_text().strip()}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if server.stdout is not None:
            server.stdout.close()
        log.close()


def _health(worker: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(worker + "/health", timeout=2) as response:
            found: dict[str, Any] = json.load(response)
            return found
    except (OSError, ValueError):
        return {}


def _wait(ready: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise UserError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.2)


def _enrol(runtime: dict[str, Any]) -> str:
    """The registry's owner approves the agency's verify subscription: the agency's consumer token."""
    admin = ApiClient(runtime["api_url"], token=runtime["token"])
    tokens = {}
    for agency, name, grant in ((OWNER, "Trung tâm dữ liệu quốc gia về dân cư",
                                 {"role": "owner", "datasets": ["population.citizen"]}),
                                (CONSUMER, "Bảo hiểm xã hội Việt Nam", {"role": "consumer"})):
        admin.post("/api/agencies", {"agency": agency, "name": name})
        tokens[agency] = admin.post("/api/credentials", {"agency": agency, "grants": [grant], "label": "bench"})["token"]
    asked = ApiClient(runtime["api_url"], token=tokens[CONSUMER]).post("/api/subscriptions", {
        "dataset": "population.citizen", "mode": "verify", "fields": list(FIELDS),
        "purpose": "đo tốc độ xác thực", "legal_basis": "kiểm thử"})
    ApiClient(runtime["api_url"], token=tokens[OWNER]).post(
        f"/api/subscriptions/{asked['subscription_id']}/versions/1/approve", {})
    return tokens[CONSUMER]


def _load(runtime: dict[str, Any], citizens: list[dict[str, Any]], held: int, say: Callable[[str], None]) -> None:
    """Publish the citizens to the raw topic and wait until the worker's replica holds the ``held`` clean ones."""
    registry = RegistryClient(runtime["api_url"], token=runtime["token"])
    schema_id, _, _ = registry.latest(topics.subject(topics.raw("population.citizen")))
    codec = Codec(resolve=registry.schema_by_id)
    producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"], linger_ms=5)
    try:
        for citizen in citizens:
            try:
                value = codec.encode(schema_id, citizen)
            except CodecError:  # a NULL in a required column: the connector holds such rows back
                continue
            producer.send(topics.raw("population.citizen"), key=citizen["header"]["source_key"].encode(), value=value)
        producer.flush()
    finally:
        producer.close()
    say(f"registry: {len(citizens)} citizens published; waiting for the worker's replica to hold the {held} clean ones")
    worker = runtime["workers"][0]
    _wait(lambda: (_health(worker).get("linkage") or {}).get("registry_entries") == held
          and _health(worker).get("subscriptions") == 1, "the worker's registry and subscription", 120 + held / 200)


class _Agency:
    """The agency's side of its topics: a producer of requests and a reader of replies."""

    def __init__(self, runtime: dict[str, Any], token: str) -> None:
        registry = RegistryClient(runtime["api_url"], token=token)
        self._schema_id, _, _ = registry.latest(topics.subject(topics.verify_requests(SLUG)))
        self._codec = Codec(resolve=registry.schema_by_id)
        self._producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"], linger_ms=5, max_request_size=8 << 20)
        # As a client waiting for answers would read: a fetch returns within 50 ms (kafka-python's default is 500).
        self._consumer = KafkaConsumer(bootstrap_servers=runtime["bootstrap"], enable_auto_commit=False,
                                       fetch_max_wait_ms=50)
        tps = [TopicPartition(topics.verify_replies(SLUG), p)
               for p in sorted(self._consumer.partitions_for_topic(topics.verify_replies(SLUG)) or [])]
        self._consumer.assign(tps)
        self._consumer.seek_to_end(*tps)
        for tp in tps:
            self._consumer.position(tp)

    def ask(self, batches: list[list[dict[str, Any]]], timeout_s: float) -> list[dict[str, Any]]:
        """Send every batch, read every reply: the answers, in request order."""
        ids = [uuid.uuid4().hex for _ in batches]
        for cid, batch in zip(ids, batches, strict=True):
            self._producer.send(topics.verify_requests(SLUG), key=cid.encode(), value=self._codec.encode(
                self._schema_id, {"correlation_id": cid, "requests": [
                    {"request_id": r["request_id"], "fields": {k: v for k, v in r.items() if k != "request_id"}}
                    for r in batch]}))
        self._producer.flush()
        replies: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(replies) < len(ids):
            if time.monotonic() > deadline:
                raise UserError(f"{len(ids) - len(replies)} of {len(ids)} verification replies missing after "
                                f"{timeout_s:.0f} s")
            for messages in self._consumer.poll(timeout_ms=200).values():
                for m in messages:
                    if m.key is not None and m.key.decode() in ids:
                        replies[m.key.decode()] = self._codec.decode(m.value)[1]
        return [_as_json(a) for cid in ids for a in replies[cid]["answers"]]

    def close(self) -> None:
        self._producer.close()
        self._consumer.close()


def _as_json(answer: dict[str, Any]) -> dict[str, Any]:
    """A reply's answer as the HTTP API gives it (no empty fields), to compare the paths."""
    if answer.get("error"):
        return {"request_id": answer["request_id"], "error": answer["error"]}
    return {"request_id": answer["request_id"], "verdict": answer["verdict"], "mask": answer["mask"]}


def _through_platform(synthetic: Synthetic, requests: list[dict[str, Any]], held: int, batch: int, workdir: Path,
                      say: Callable[[str], None]) -> tuple[tuple[float, list[dict[str, Any]]],
                                                           tuple[float, list[dict[str, Any]]]]:
    """(seconds, answers) of the Kafka path and of the HTTP path, on one `gsp serve`."""
    batches = [requests[at:at + batch] for at in range(0, len(requests), batch)]
    with _serving(workdir, say) as runtime:
        token = _enrol(runtime)
        _load(runtime, _citizens(synthetic), held, say)
        agency = _Agency(runtime, token)
        try:
            say("kafka: a warm-up batch (group join, topic discovery), then "
                f"{len(requests)} requests in {len(batches)} messages")
            agency.ask([requests[:10]], timeout_s=120)
            started = time.perf_counter()
            kafka_answers = agency.ask(batches, timeout_s=120 + len(requests) / 100)
            kafka_s = time.perf_counter() - started
        finally:
            agency.close()
        api = ApiClient(runtime["api_url"], token=token, timeout_s=120)
        say(f"http: a warm-up call, then {len(batches)} POST /api/verifications of up to {batch} requests")
        api.post("/api/verifications", {"requests": requests[:10]})
        started = time.perf_counter()
        http_answers = [a for b in batches for a in api.post("/api/verifications", {"requests": b})["answers"]]
        http_s = time.perf_counter() - started
    return (kafka_s, kafka_answers), (http_s, http_answers)


def run_verification(records: int, *, batch: int = 1000, say: Callable[[str], None] | None = None,
                     workdir: Path | None = None) -> dict[str, dict[str, Any]]:
    """The three figures (see the module)."""
    say = say or functools.partial(print, "bench:", file=sys.stderr, flush=True)
    say(f"verification: {records} citizens as the registry, {records} subscribers as requests (seed 7)")
    synthetic = generate(records, seed=7)
    requests = _requests(synthetic)
    entries = _entries(_citizens(synthetic))
    linker = _replica(entries)
    rules, rules_s, expected = _rules(requests, linker, batch)
    rules["replica_bytes_per_citizen"] = _replica_bytes(entries)
    home = Path(tempfile.mkdtemp(prefix="gsp-bench-verify-", dir=workdir))
    try:
        (kafka_s, by_kafka), (http_s, by_http) = _through_platform(synthetic, requests, linker.entries, batch, home, say)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    n = len(requests)
    base = "verify: rules alone, same run"
    return {
        "verify_rules": rules,
        "verify_kafka": _figure(f"verify: Kafka path, messages of {batch}", n, kafka_s, base, n, rules_s,
                                agrees_with_rules=by_kafka == expected),
        "verify_http": _figure(f"verify: HTTP path, POSTs of {batch}", n, http_s, base, n, rules_s,
                               agrees_with_rules=by_http == expected),
    }


def render(figures: dict[str, dict[str, Any]]) -> str:
    lines = [f"  {'verification':<50} {'verif./s':>10} {'µs/verif':>8}   {'baseline (same run)':<44} {'/s':>10} {'ratio':>6}"]
    for f in figures.values():
        lines.append(f"  {f['label']:<50} {f['records_per_s']:>10,.0f} {f['us_per_record']:>8.1f}   "
                     f"{f['baseline'][:44]:<44} {f['baseline_records_per_s']:>10,.0f} {f['ratio']:>6.2f}")
    agree = all(f.get("agrees_with_rules", True) for f in figures.values())
    rules = figures["verify_rules"]
    lines.append(f"  answers through Kafka and HTTP {'agree' if agree else 'DO NOT agree'} with the rules' "
                 f"({rules['registry']:,} citizens in the registry)")
    held = rules.get("replica_bytes_per_citizen")
    if held:
        lines.append(f"  the registry replica: {held['with_extras']:,} B per citizen with the fields verification "
                     f"compares, {held['without_extras']:,} B without")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m gsp.tools.bench.verification", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="registry citizens, and as many requests")
    parser.add_argument("--batch", type=int, default=1000, help="requests per Kafka message and per POST")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.records < 100 or not 1 <= args.batch <= 10_000:
        parser.error("--records must be at least 100 and --batch between 1 and 10000")
    figures = run_verification(args.records, batch=args.batch)
    out.write(json.dumps({"records": args.records, "batch": args.batch, "cpus": os.cpu_count(), "figures": figures},
                         ensure_ascii=False) + "\n" if args.json else render(figures))
    return 0 if all(f.get("agrees_with_rules", True) for f in figures.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
