"""`gsp bench`: records/s of each piece of the platform next to a baseline measured in the same run.

Every figure pairs a piece with the simplest thing that does the same work
(see gsp/tools/bench/README.md), both measured here, on this machine, in this run;
the ratio is piece / baseline. Kafka figures use an embedded broker on
loopback, also when GSP_KAFKA_BOOTSTRAP is set: a benchmark never writes to a
real cluster. Every loop is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import fastavro
import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sql_source import SqlSource, map_columns
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from gsp.governance.control import ControlPlane
from gsp.governance.identity import agency_slug
from gsp.governance.topology import ensure_topics
from gsp.runtime.embedded import running_broker
from gsp.tools.bench.capacity import Inputs as CapacityInputs
from gsp.tools.bench.capacity import model as capacity_model
from gsp.tools.bench.capacity import render as render_capacity
from gsp.tools.bench.cleaning import bench_cleaning
from gsp.tools.bench.faust_agents import measure_all
from gsp.tools.bench.latency import measure_latency
from gsp.tools.bench.splink_compare import compare_with_splink
from gsp.tools.bench.splink_compare import render as render_splink
from gsp.tools.bench.verification import render as render_verification
from gsp.tools.bench.verification import run_verification
from gsp.tools.demo import (
    CITIZEN,
    CONSUMER,
    DEMO_SUBSCRIPTION,
    SOURCES,
    SUBSCRIBER,
    DemoOptions,
    run_demo,
    write_sources,
)
from gsp.tools.synth import Synthetic, generate
from schemas import envelope, topics
from schemas.codec import Codec, CodecError, contract
from schemas.datasets import dataset as declared
from schemas.envelope import Verdict
from schemas.settings import Settings, kafka_producer_config
from streams import ledger
from streams import share as sharing
from streams.linkage import Model
from streams.matching import DEFAULT_MODEL, Linker
from streams.stages import CleanStage, MatchStage, Out, RegistryStage, ShareStage, Where

__all__ = ["run_bench"]

# Pure figures need no registry: local ids, far from any the registry hands out.
_IDS = {"citizen": 900_001, "subscriber": 900_002, "issue": 900_003, "result": 900_004, "share": 900_005,
        "ledger": 900_006}
_CONTRACTS = {"citizen": "vn.gsp.population.Citizen", "subscriber": "vn.gsp.telecom.Subscriber",
              "issue": "vn.gsp.quality.QualityIssue", "result": "vn.gsp.match.MatchResult"}
_WHERE = Where("bench", 0, 0)


def _figure(label: str, n: int, seconds: float, baseline: str, base_n: int, base_seconds: float,
            **extra: Any) -> dict[str, Any]:
    rate, base_rate = n / seconds, base_n / base_seconds
    return {"label": label, "records": n, "elapsed_s": round(seconds, 4), "records_per_s": round(rate, 1),
            "us_per_record": round(1e6 / rate, 2), "baseline": baseline, "baseline_records_per_s": round(base_rate, 1),
            "ratio": round(rate / base_rate, 3), **extra}


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _best(work: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of three runs with garbage collection paused, as timeit does: for the pure figures."""
    gc.collect()
    gc.disable()
    try:
        return min((_timed(work) for _ in range(3)), key=lambda run: float(run[0]))
    finally:
        gc.enable()


def _event(dataset: str, row: dict[str, Any], i: int) -> dict[str, Any]:
    """A generated row as its dataset's contract, mapped and stamped as the connector does: events of the same size."""
    d = DATASETS[dataset]
    key = str(row[d.source_columns.get(d.key, d.key)])
    header = envelope.header(d.source_system, key, f"{row['updated_at']}:{i + 1}", int(time.time() * 1000))
    return {**map_columns(row, d.source_columns), "header": header}


def _citizen(row: dict[str, Any], i: int) -> dict[str, Any]:
    return _event(CITIZEN, row, i)


def _subscriber(row: dict[str, Any], i: int) -> dict[str, Any]:
    return _event(SUBSCRIBER, row, i)


def _encoded(codec: Codec, schema_id: int, records: list[dict[str, Any]]) -> list[Out]:
    out = []
    for record in records:
        with contextlib.suppress(CodecError):  # a NULL in a required column: the connector quarantines it first
            out.append(("", record["header"]["source_key"].encode(), codec.encode(schema_id, record)))
    return out


def _plain(node: Any) -> Any:
    """A schema without logical types, as the codec reads it (timestamps stay int milliseconds)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != "logicalType"}
    return [_plain(x) for x in node] if isinstance(node, list) else node


def _codec_figures(codec: Codec, citizens: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    encode_s, events = _best(lambda: [codec.encode(_IDS["citizen"], c) for c in citizens])
    decode_s, _ = _best(lambda: [codec.decode(e) for e in events])
    # Bare fastavro on the same records: what the codec's framing and error handling cost.
    parsed = fastavro.parse_schema(_plain(contract("vn.gsp.population.Citizen")), _write_hint=False)

    def write(record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()
    raw_encode_s, bodies = _best(lambda: [write(c) for c in citizens])
    raw_decode_s, _ = _best(lambda: [fastavro.schemaless_reader(io.BytesIO(b), parsed, None) for b in bodies])
    n, size = len(citizens), sum(map(len, events)) / len(events)
    return {
        "codec_encode": _figure("codec encode, Citizen", n, encode_s, "fastavro schemaless_writer", n, raw_encode_s,
                                bytes_per_record=round(size, 1)),
        "codec_decode": _figure("codec decode, Citizen", n, decode_s, "fastavro schemaless_reader", n, raw_decode_s,
                                bytes_per_record=round(size, 1)),
    }


def _round_trip_s(codec: Codec, events: list[bytes]) -> float:
    """Baseline of a stage: decode and re-encode its input, the codec work no bytes-to-bytes stage avoids."""
    return float(_best(lambda: [codec.encode(*codec.decode(e)) for e in events])[0])


def _cleaning_figures(synthetic: Synthetic) -> dict[str, dict[str, Any]]:
    """Cost of each dataset's cleaning contract per record, next to NFC-normalising every text field."""
    rows = {CITIZEN: [_citizen(r, i) for i, r in enumerate(synthetic.citizens)],
            SUBSCRIBER: [r for r in (_subscriber(r, i) for i, r in enumerate(synthetic.subscribers))
                         if r["subscriber_name"] is not None]}
    measured = bench_cleaning(rows)

    def nfc(record: dict[str, Any]) -> dict[str, Any]:
        return {k: unicodedata.normalize("NFC", v) if isinstance(v, str) else v for k, v in record.items()}

    figures = {}
    def baseline(dataset: str) -> Callable[[], Any]:
        return lambda: [nfc(r) for r in rows[dataset]]

    for dataset, m in measured.items():
        base_s, _ = _best(baseline(dataset))
        n = int(m["records"])
        figures[f"clean_contract_{dataset.split('.')[1]}"] = _figure(
            f"cleaning contract, {dataset}", n, n * float(m["us_per_record"]) / 1e6,
            "NFC of every text field, same rows", n, base_s)
    return figures


def _stage_figures(codec: Codec, synthetic: Synthetic) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Stage logic over pre-encoded events, no Kafka; also the events, to pre-fill topics for the Kafka figures."""
    citizens = _encoded(codec, _IDS["citizen"], [_citizen(r, i) for i, r in enumerate(synthetic.citizens)])
    subscribers = _encoded(codec, _IDS["subscriber"], [_subscriber(r, i) for i, r in enumerate(synthetic.subscribers)])
    clean_c = CleanStage.for_dataset(DATASETS[CITIZEN], codec, clean_schema_id=_IDS["citizen"], issue_schema_id=_IDS["issue"])
    clean_s = CleanStage.for_dataset(DATASETS[SUBSCRIBER], codec, clean_schema_id=_IDS["subscriber"],
                                     issue_schema_id=_IDS["issue"])
    clean_s_time, cleaned = _best(lambda: [clean_c.process(k, v, _WHERE) for _, k, v in citizens]
                                   + [clean_s.process(k, v, _WHERE) for _, k, v in subscribers])
    raw = [v for *_, v in citizens + subscribers]
    clean_citizens = [out for out in cleaned if out[0] == clean_c.clean_topic]
    clean_subscribers = [v for t, _, v in cleaned if t == clean_s.clean_topic]
    to_registry = RegistryStage(codec, declared(CITIZEN), [declared(SUBSCRIBER)])
    registry = dict(change for _, _, v in clean_citizens if (change := to_registry.process(v)) is not None)
    match_stage = MatchStage(codec, declared(SUBSCRIBER), result_schema_id=_IDS["result"], lookup=registry.get)

    def match(value: bytes) -> bytes:
        return match_stage.process(value)[0][0][2]
    match_s, results = _best(lambda: [match(v) for v in clean_subscribers])
    linked = _linked_match_figures(codec, registry, clean_subscribers)
    request = {k: v for k, v in DEMO_SUBSCRIPTION.items() if k in ("fields", "row_filter")}
    agency = agency_slug(CONSUMER[0])
    share_schema = sharing.projected_schema(SUBSCRIBER, agency, request["fields"],  # type: ignore[arg-type]
                                            contract("vn.gsp.common.EventHeader"))
    codec.add(_IDS["share"], share_schema)
    subscription = sharing.Subscription.from_event({
        **request, "subscription_id": f"{agency}:{SUBSCRIBER}", "agency": agency, "dataset": SUBSCRIBER,
        "topic": topics.share(agency, SUBSCRIBER), "schema_id": _IDS["share"],
        "pseudonym_key": "5e" * 32, "key_version": 1})
    share_stage = ShareStage(codec, lambda dataset: [subscription])
    share_s, shared = _best(lambda: [share_stage.process(v) for v in results])
    codec.add(_IDS["ledger"], contract("vn.gsp.control.LedgerFact"))
    reported_s, _ = _best(lambda: _share_reported(codec, share_stage, results))
    baseline = "codec decode + encode of the same events"
    return {
        "stage_clean": _figure("clean stage (citizens + subscribers)", len(raw), clean_s_time, baseline, len(raw),
                               _round_trip_s(codec, raw), quarantined=len(raw) - len(clean_citizens) - len(clean_subscribers)),
        "stage_match": _figure("match stage (in-memory registry)", len(results), match_s, baseline, len(results),
                               _round_trip_s(codec, clean_subscribers)),
        **linked,
        "stage_share": _figure("share stage (one subscription)", len(results), share_s, baseline, len(results),
                               _round_trip_s(codec, results), delivered=sum(map(len, shared))),
        "stage_share_ledger": _figure("share stage + audit ledger facts (per batch of 500)", len(results), reported_s,
                                      "share stage alone, same run", len(results), share_s),
    }, {"subscribers": subscribers, "clean_citizens": clean_citizens,
        "share_subscription": _share_event(subscription, share_schema),
        "results": [(topics.match(SUBSCRIBER), k, v) for k, v in zip(
            (codec.decode(r)[1]["source_key"].encode() for r in results), results, strict=True)]}


def _share_event(subscription: sharing.Subscription, schema: dict[str, Any]) -> dict[str, Any]:
    """The Subscription event a worker would read, for the Faust share benchmark's child process."""
    return {"subscription_id": subscription.subscription_id, "agency": subscription.agency,
            "dataset": subscription.dataset, "fields": list(subscription.fields),
            "row_filter": {k: list(v) for k, v in subscription.row_filter.items()},
            "verdicts": list(subscription.verdicts), "topic": f"bench.{subscription.topic}",
            "schema_id": subscription.schema_id, "schema": json.dumps(schema), "version": 1,
            "pseudonym_key": subscription.pseudonym_key.hex(), "key_version": subscription.key_version}


def _share_reported(codec: Codec, stage: ShareStage, results: list[bytes]) -> int:
    """The share stage with what the agent adds for the ledger: the facts of each batch of 500, encoded."""
    facts = 0
    for at in range(0, len(results), 500):
        shared = [item for value in results[at:at + 500] for item in stage.process(value)]
        ways = [{"match.telecom.subscriber.v1": f"0:{at + i}"} for i in range(len(shared))]
        for _, fact in ledger.facts(shared, [(0, at + i) for i in range(len(shared))], ways, at_ms=0, actor="bench"):
            codec.encode(_IDS["ledger"], fact)
            facts += 1
    return facts


def _linked_match_figures(codec: Codec, registry: dict[str, dict[str, Any]], values: list[bytes]) -> dict[str, dict[str, Any]]:
    """The match stage with the probabilistic matcher: its cost over the exact check, what micro-batches
    save, and the memory a worker's registry replica takes per citizen."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    linker = Linker(Model.load(DEFAULT_MODEL))
    for personal_id, entry in registry.items():
        linker.apply_entry(personal_id, entry)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    stage = MatchStage(codec, declared(SUBSCRIBER), result_schema_id=_IDS["result"], lookup=linker.entry, linker=linker)
    items = values

    def batched(size: int) -> list[Any]:
        return [out for at in range(0, len(items), size) for out in stage.process_batch(items[at:at + size])]

    exact = MatchStage(codec, declared(SUBSCRIBER), result_schema_id=_IDS["result"], lookup=linker.entry)
    exact_s, _ = _best(lambda: [out for at in range(0, len(items), 500) for out in exact.process_batch(items[at:at + 500])])
    batch_s, out = _best(lambda: batched(500))
    single_s, _ = _best(lambda: batched(1))
    searched = sum(1 for _, verdict in out if verdict in (Verdict.POSSIBLE, Verdict.NO_MATCH))
    return {
        "stage_match_linked": _figure("match stage + matcher, micro-batches of 500", len(out), batch_s,
                                      "the same, exact check only (no matcher)", len(out), exact_s, searched=searched,
                                      registry_bytes_per_citizen=round(held / max(len(registry), 1))),
        "stage_match_single": _figure("match stage + matcher, one record at a time", len(out), single_s,
                                      "the same in micro-batches of 500", len(out), batch_s),
    }


def _send_all(producer: KafkaProducer, topic: str, events: list[Out]) -> None:
    futures = [producer.send(topic, key=k, value=v) for _, k, v in events]
    producer.flush()
    if any(f.failed() for f in futures):
        raise UserError(f"the broker did not acknowledge every event sent to {topic}")


def _kafka_figures(settings: Settings, bootstrap: str, synthetic: Synthetic, events: dict[str, Any],
                   workdir: Path, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    n, d = len(synthetic.subscribers), DATASETS[SUBSCRIBER]
    control = ControlPlane(sa.create_engine(f"sqlite:///{workdir / 'control.db'}"), bootstrap=bootstrap,
                           partitions=settings.partitions)
    # The connector's producer, and a fresh one with the same configuration for the baseline.
    producer, raw_producer = (KafkaProducer(**kafka_producer_config(settings, bootstrap)) for _ in range(2))
    renamed = {t: f"bench.{t}" for t in (topics.raw(SUBSCRIBER), topics.quarantine(SUBSCRIBER), topics.clean(SUBSCRIBER))}
    produced, clean_citizens = "bench.producer.telecom.subscriber.v1", f"bench.{topics.clean(CITIZEN)}"
    matched, shared_to = f"bench.{topics.match(SUBSCRIBER)}", events["share_subscription"]["topic"]
    runner: SourceRunner | None = None
    try:
        control.start()
        ensure_topics(bootstrap, {t: (settings.partitions, {})
                                  for t in [*renamed.values(), produced, clean_citizens, matched, shared_to]})
        engine = sa.create_engine(f"sqlite:///{workdir / 'sources.db'}")
        write_sources(engine, synthetic)
        raw, issue = (control.registry.get_version(topics.subject(t(SUBSCRIBER)), "latest").id
                      for t in (topics.raw, topics.quarantine))
        target = Target.of(d, schema_id=raw, quarantine_schema_id=issue, topic=renamed[topics.raw(SUBSCRIBER)],
                           quarantine_topic=renamed[topics.quarantine(SUBSCRIBER)])
        runner = SourceRunner(SqlSource(engine, replace(SOURCES[SUBSCRIBER], name="bench-telecom-subscriber")), target,
                              producer=producer, codec=Codec(resolve=lambda i: control.registry.schema_by_id(i).schema),
                              offsets=OffsetStore(bootstrap, producer), metrics=ConnectorMetrics.create(CollectorRegistry()))
        say(f"connector: publishing {n} subscribers from SQLite to the embedded broker at {bootstrap}")
        runner.start()
        started = time.perf_counter()
        while runner.run_once() and time.perf_counter() - started < 120 + n / 500:
            pass
        connector_s = time.perf_counter() - started
        if runner.published + runner.quarantined != n:
            raise UserError(f"the connector handled {runner.published + runner.quarantined} of {n} rows before its deadline")
        say(f"connector baseline: kafka-python producer sending {n} pre-encoded subscribers")
        subscribers = [events["subscribers"][i % len(events["subscribers"])] for i in range(n)]
        raw_s, _ = _timed(lambda: _send_all(raw_producer, produced, subscribers))
        _send_all(raw_producer, clean_citizens, events["clean_citizens"])
        _send_all(raw_producer, matched, events["results"])
    finally:
        if runner is not None:
            runner.close()
        producer.close()
        raw_producer.close()
        control.close()
    figures = {"connector_publish": _figure(
        "connector publish (SourceRunner, SQLite)", n, connector_s, "kafka-python producer, same values + flush", n,
        raw_s, quarantined=runner.quarantined, bytes_per_record=round(sum(len(v) for *_, v in subscribers) / n, 1))}
    base = {"bootstrap": bootstrap, "partitions": settings.partitions, "session_timeout_s": settings.session_timeout_s,
            "heartbeat_interval_s": settings.heartbeat_interval_s, "linger_ms": settings.linger_ms,
            "schemas": {str(_IDS[k]): _CONTRACTS[k] for k in ("citizen", "subscriber", "issue", "result")}}
    share = {"topic": matched, "records": len(events["results"]), "subscription": events["share_subscription"],
             "ledger_schema_id": _IDS["ledger"]}
    runs = {"iterate": {"topic": produced, "records": n},
            "clean": {"topic": produced, "records": n, "dataset": SUBSCRIBER, "out_topics": renamed,
                      "ids": {"clean": _IDS["subscriber"], "issue": _IDS["issue"]}},
            "registry": {"topic": clean_citizens, "records": len(events["clean_citizens"])},
            "share": share, "share_ledger": share}
    results = measure_all(base, runs, workdir=workdir, timeout_s=90 + n / 200, say=say)
    plain = results["iterate"]
    for mode, label in (("clean", "Faust clean agent (stage, batched send)"),
                        ("registry", "Faust registry agent (batched table writes)")):
        r = results[mode]
        figures[f"faust_{mode}"] = _figure(label, r["records"], r["elapsed_s"], "plain Faust iteration, same run",
                                           plain["records"], plain["elapsed_s"], join_s=r["join_s"],
                                           send_failures=r["send_failures"])
    without, with_ledger = results["share"], results["share_ledger"]
    figures["faust_share"] = _figure("Faust share agent (one subscription, no ledger)", without["records"],
                                     without["elapsed_s"], "plain Faust iteration, same run", plain["records"],
                                     plain["elapsed_s"], send_failures=without["send_failures"])
    figures["faust_share_ledger"] = _figure(
        "Faust share agent + audit ledger (acks awaited, one fact per batch)", with_ledger["records"],
        with_ledger["elapsed_s"], "the share agent without the ledger, same run", without["records"],
        without["elapsed_s"], send_failures=with_ledger["send_failures"])
    figures["faust_iterate"] = {**_figure("Faust plain iteration", plain["records"], plain["elapsed_s"],
                                          "docs/architecture.md anchor 11-15k (not measured)", 13_000, 1.0), "baseline_measured": False}
    return figures


def _end_to_end(settings: Settings, records: int, workdir: Path, plain_rate: float, err: TextIO) -> dict[str, Any]:
    buffer = io.StringIO()
    run_demo(replace(settings, kafka_bootstrap=None, home=workdir / "demo-home"),
             DemoOptions(records=records // 2, json=True, workdir=workdir / "demo"), out=buffer, err=err)
    s = json.loads(buffer.getvalue())
    published = sum(s["published"].values())
    # Faust agent-events per record: all are cleaned; then indexed (citizens), matched (linked datasets) or shared.
    matched = sum(sum(verdicts.values()) for verdicts in s["match"].values())
    hops = (published + sum(s["cleaned"].values()) + matched) / published
    return {**_figure("end to end (gsp demo: connectors, Faust, sink)", published, s["elapsed_s"],
                      f"Faust ceiling: plain iteration / {hops:.2f} hops",
                      round(plain_rate / hops), 1.0), "hops": round(hops, 2), "agrees_with_truth": s["agrees_with_truth"],
            "differences": s["differences"]}


def run_bench(settings: Settings, *, records: int = 20_000, as_json: bool = False, splink: bool = True,
              latency_seconds: float = 30.0, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Every figure of gsp/tools/bench/README.md; ``splink``: also FEBRL4 against Splink (makes its own venv once)."""
    if records < 100:
        raise UserError("--records must be at least 100")
    say = functools.partial(print, "bench:", file=err, flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="gsp-bench-"))
    try:
        say(f"generating {records} citizens and subscribers (seed 7)")
        synthetic = generate(records, seed=7)
        codec = Codec()
        for key, name in _CONTRACTS.items():
            codec.add(_IDS[key], contract(name))
        say("codec and stage logic, no Kafka")
        stages, events = _stage_figures(codec, synthetic)
        figures = {**_codec_figures(codec, [_citizen(r, i) for i, r in enumerate(synthetic.citizens)]), **stages,
                   **_cleaning_figures(synthetic)}
        with running_broker(replace(settings, kafka_bootstrap=None, home=workdir / "broker")) as bootstrap:
            figures.update(_kafka_figures(settings, bootstrap, synthetic, events, workdir, say))
        say(f"end to end: gsp demo with {records // 2} citizens and {records // 2} subscribers")
        figures["end_to_end"] = _end_to_end(settings, records, workdir, figures["faust_iterate"]["records_per_s"], err)
        say(f"latency: {latency_seconds:g} s at half of {figures['end_to_end']['records_per_s']:,.0f} records/s")
        figures["latency"] = measure_latency(replace(settings, kafka_bootstrap=None),
                                             max_rate=figures["end_to_end"]["records_per_s"], seconds=latency_seconds,
                                             workdir=workdir / "latency", err=err, citizens=max(100, records // 4))
        # Verifications/s through each path next to the rules alone: its own section, its own unit.
        verification = run_verification(records, say=say, workdir=workdir)
        versus_splink = compare_with_splink(workdir / "febrl4", err=err) if splink else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cpus = os.cpu_count() or 1
    capacity = capacity_model(CapacityInputs(
        bytes_per_entry=figures["stage_match_linked"]["registry_bytes_per_citizen"],
        records_per_core_s=figures["end_to_end"]["records_per_s"] / cpus))
    report = {"records": records, "cpus": cpus, "python": platform.python_version(),
              "broker": "embedded Tansu on loopback", "figures": figures, "verification": verification,
              "capacity": capacity, "matching_vs_splink": versus_splink}
    out.write(json.dumps(report, ensure_ascii=False) + "\n" if as_json else _render(report))
    agreed = all(f.get("agrees_with_rules", True) for f in verification.values())
    return 0 if figures["end_to_end"]["agrees_with_truth"] and agreed else 1


def _render(report: dict[str, Any]) -> str:
    lines = [f"GSP bench: {report['records']} records, {report['cpus']} CPUs, Python {report['python']}, {report['broker']}", "",
             f"  {'piece':<50} {'records/s':>10} {'µs/rec':>8}   {'baseline (same run)':<44} {'records/s':>10} {'ratio':>6}"]
    for f in report["figures"].values():
        lines.append(f"  {f['label']:<50} {f['records_per_s']:>10,.0f} {f['us_per_record']:>8.1f}   "
                     f"{f['baseline'][:44]:<44} {f['baseline_records_per_s']:>10,.0f} {f['ratio']:>6.2f}")
    e2e = report["figures"]["end_to_end"]
    agree = "agree" if e2e["agrees_with_truth"] else "DO NOT agree"
    lines += ["", f"  end to end: {e2e['records']} records in {e2e['elapsed_s']}s; counts {agree} with the generator's truth"]
    linked = report["figures"].get("stage_match_linked")
    if linked:
        lines.append(f"  matcher: {linked['searched']} of {linked['records']} subscribers searched; the registry replica takes "
                     f"{linked['registry_bytes_per_citizen']:,} B per citizen in every worker")
    lat = report["figures"]["latency"]
    lines.append(f"  latency, source row committed -> agency's table, at {lat['offered_rate']:,.0f} rows/s (half the "
                 f"end-to-end maximum): p50 {lat['p50_s']} s, p90 {lat['p90_s']} s, p99 {lat['p99_s']} s, max "
                 f"{lat['max_s']} s; {lat['delivered']} of {lat['offered']} delivered; p99 under 2 s: "
                 f"{'yes' if lat['p99_under_2s'] else 'NO'}")
    if report.get("verification"):
        lines += ["", render_verification(report["verification"]).rstrip("\n")]
    lines += ["", render_capacity(report["capacity"]).rstrip("\n"),
              "    (the inputs: registry_bytes_per_citizen of stage_match_linked; end_to_end records/s / CPUs)"]
    if report.get("matching_vs_splink"):
        lines += ["", "  " + render_splink(report["matching_vs_splink"]).replace("\n", "\n  ")]
    return "\n".join(lines) + "\n"
