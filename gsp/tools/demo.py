"""`gsp demo`: a synthetic population and telecom registry through the whole platform.

Sources (SQLite) -> SQL connectors -> raw topics -> clean -> registry table /
match -> share -> SQL sink, on the embedded broker; then a summary compared
with what the generator knows the outcome must be.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sink_runner import SinkRunner
from connectors.sql_sink import SqlSink
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from gsp.governance.control import ControlPlane
from gsp.governance.identity import Grant, IdentityStore, Role
from gsp.http.audit import who_saw
from gsp.http.client import ApiClient
from gsp.runtime.credentials import PLATFORM_AGENCY
from gsp.runtime.database import control_engine
from gsp.runtime.embedded import running_broker
from gsp.runtime.lag import group_lag
from gsp.runtime.serve import check_datasets, check_linkage_model
from gsp.runtime.services import ControlServices
from gsp.runtime.supervisor import WorkerProcess
from gsp.tools.observer import Observer
from gsp.tools.synth import Synthetic, generate
from schemas import topics
from schemas.codec import Codec
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config
from streams.share import Subscription

__all__ = ["DemoOptions", "demo_workdir", "run_demo"]

CITIZEN, SUBSCRIBER = "population.citizen", "telecom.subscriber"
# The scenario's agencies: the police's population data centre asks for verified subscribers of two carriers;
# the telecom authority, the declared owner of telecom.subscriber, decides.
CONSUMER = ("VN/GOV/bo-cong-an/c06", "Cục Cảnh sát quản lý hành chính về trật tự xã hội (C06), Bộ Công an")
DEMO_SUBSCRIPTION = {"dataset": SUBSCRIBER,
                     "fields": ["msisdn", "carrier", "personal_id", "subscriber_name", "verdict"],
                     "row_filter": {"carrier": ["Viettel", "VinaPhone"]},
                     "purpose": "Đối soát thông tin thuê bao di động với Cơ sở dữ liệu quốc gia về dân cư",
                     "legal_basis": "Luật Căn cước 2023; Luật Viễn thông 2023 (xác thực thông tin thuê bao)"}


def _source(dataset: str, table: str) -> SqlSourceConfig:
    """The demo's source table of a dataset; which column holds which field is the dataset's declaration."""
    d = DATASETS[dataset]
    return SqlSourceConfig(name=dataset.replace(".", "-"), table=table, key_column=d.source_columns.get(d.key, d.key),
                           columns=dict(d.source_columns))


SOURCES = {CITIZEN: _source(CITIZEN, "citizen"), SUBSCRIBER: _source(SUBSCRIBER, "subscriber")}


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    records: int = 10_000
    seed: int = 7
    duration_s: float = 300.0
    json: bool = False
    workdir: Path | None = None
    keep: bool = False  # keep the temporary workdir (a given workdir is always kept)


def write_sources(engine: sa.Engine, synthetic: Synthetic) -> None:
    """The generated rows as two source tables with timestamp and incrementing columns."""
    metadata = sa.MetaData()
    for table, rows in (("citizen", synthetic.citizens), ("subscriber", synthetic.subscribers)):
        columns = [c for c in rows[0] if c != "updated_at"]
        t = sa.Table(table, metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                     sa.Column("updated_at", sa.BigInteger, nullable=False, index=True),
                     *[sa.Column(c, sa.Text) for c in columns])
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(t), rows)


class _Progress:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = 0.0

    def show(self, line: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.5 if self._tty else 5.0):
            return
        self._last = now
        self._out.write(("\r" + line + "\x1b[K") if self._tty else line + "\n")
        self._out.flush()

    def done(self) -> None:
        if self._tty:
            self._out.write("\n")


@contextlib.contextmanager
def demo_workdir(options: DemoOptions) -> Iterator[tuple[Path, bool]]:
    """The folder of the demo's source and agency databases and worker log, and whether it stays afterwards.

    A given ``workdir`` is the user's and stays. A temporary one is removed when the demo ends unless
    ``keep``, and stays when the demo fails: the error may point at the worker's log in it."""
    if options.workdir is not None:
        try:
            options.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot use --workdir {options.workdir}: {exc.strerror}") from None
        yield options.workdir, True
        return
    workdir = Path(tempfile.mkdtemp(prefix="gsp-demo-"))
    remove = not options.keep
    try:
        yield workdir, options.keep
    except Exception:
        remove = False  # the error may point at the worker's log in it (Ctrl-C and SIGTERM still remove it)
        raise
    finally:
        if remove:
            shutil.rmtree(workdir, ignore_errors=True)


def run_demo(settings: Settings, options: DemoOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if options.records < 10:
        raise UserError("--records must be at least 10")
    check_linkage_model(settings)
    check_datasets(settings)
    progress = _Progress(err)
    with demo_workdir(options) as (workdir, kept):
        progress.show(f"generating {options.records} citizens and subscribers (seed {options.seed}) …", force=True)
        synthetic = generate(options.records, seed=options.seed)
        source_engine = sa.create_engine(f"sqlite:///{workdir / 'sources.db'}")
        write_sources(source_engine, synthetic)
        started = time.monotonic()
        with running_broker(settings) as bootstrap:
            summary = _run(settings, options, bootstrap, workdir, synthetic, source_engine, progress, started)
        source_engine.dispose()
    summary.update(workdir=str(workdir), workdir_kept=kept, home=str(settings.home.resolve()))
    progress.done()
    out.write(json.dumps(summary, ensure_ascii=False) + "\n" if options.json else _render(summary))
    return 0 if summary["agrees_with_truth"] else 1


def _run(settings: Settings, options: DemoOptions, bootstrap: str, workdir: Path, synthetic: Synthetic,
         source_engine: sa.Engine, progress: _Progress, started: float) -> dict[str, Any]:
    metrics_registry = CollectorRegistry()
    # The control plane's own database (GSP_DATABASE_URL), so `gsp quality report` sees the demo's scorecards.
    settings.home.mkdir(parents=True, exist_ok=True)
    services = ControlServices(settings, bootstrap=bootstrap, engine=control_engine(settings.resolved_database_url),
                               metrics=metrics_registry)
    services.start()
    control, codec = services.control, services.codec
    worker = WorkerProcess(settings, bootstrap=bootstrap, registry_url=services.registry_url, home=workdir,
                           token=services.worker_token)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    closers: list[Callable[[], None]] = []  # clients opened below, closed however the run ends
    producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))
    try:
        worker.start()
        progress.show("registering the agencies; the consumer requests, the owner approves …", force=True)
        event = _subscribe(services, settings, closers)
        subscription = Subscription.from_event(event)
        progress.show("starting the stream worker (consumer-group join) …", force=True)
        worker.wait_until(lambda h: h["assigned_partitions"] > 0 and h["subscriptions"] >= 1, timeout_s=90, what="ready")
        conn_metrics = ConnectorMetrics.create(metrics_registry)
        sink = SqlSink(sa.create_engine(f"sqlite:///{workdir / 'agency.db'}"), name=subscription.topic,
                       table=subscription.topic.replace(".", "_").replace("-", "_"), schema=json.loads(event["schema"]))
        sink_runner = SinkRunner(sink, topic=subscription.topic, consumer_config=kafka_consumer_config(settings, bootstrap),
                                 codec=codec, metrics=conn_metrics)
        closers.append(sink_runner.close)
        observer = Observer(bootstrap, codec, subscriptions=[subscription])
        closers.append(observer.close)
        recorder = services.recorder
        assert recorder is not None
        threads = [threading.Thread(target=sink_runner.run, args=(stop,), name="sink", daemon=True)]
        for t in threads:
            t.start()
        ready_s = time.monotonic() - started
        pipeline_started = time.monotonic()
        offsets = OffsetStore(bootstrap, producer)
        closers.append(offsets.close)  # its watcher (the runners share it)
        runners = {d: _source_runner(d, source_engine, control, codec, producer, offsets, conn_metrics) for d in SOURCES}
        deadline = pipeline_started + options.duration_s

        def state() -> dict[str, Any]:
            observer.poll(50)
            worker.check_alive()
            snap = observer.snapshot()
            snap["published"] = {d: r.published + r.quarantined for d, r in runners.items()}
            snap["delivered"] = {subscription.subscription_id: sink_runner.written}
            return snap

        def show(snap: dict[str, Any], phase: str) -> None:
            q = sum(sum(c.values()) for c in snap["quarantined"].values())
            progress.show(f"[{time.monotonic() - pipeline_started:5.1f}s] {phase}: published {sum(snap['published'].values())}"
                          f"  cleaned {sum(snap['cleaned'].values())}  quarantined {q}"
                          f"  matched {sum(snap['match'].values())}  delivered {sink_runner.written}")

        # The registry is the master: load it before verifying subscribers against it.
        for phase, dataset in (("loading the population registry", CITIZEN), ("verifying telecom subscribers", SUBSCRIBER)):
            runner = runners[dataset]
            runner.start()
            while runner.run_once() and time.monotonic() < deadline:
                show(state(), phase)
            while time.monotonic() < deadline:
                snap = state()
                show(snap, phase)
                handled = snap["cleaned"][dataset] + sum(snap["quarantined"][dataset].values())
                if handled >= snap["published"][dataset]:
                    break
            if dataset == CITIZEN:
                while time.monotonic() < deadline and group_lag(bootstrap, settings.app_id, topics.clean(CITIZEN)) > 0:
                    show(state(), "indexing the registry")
                    time.sleep(0.2)
                # The matcher's replica is read from the registry table's changelog: let it hold every
                # cleaned citizen (consumer lag alone is not enough: the embedded broker's end offsets are off).
                cleaned = state()["cleaned"][CITIZEN]
                worker.wait_until(lambda h, cleaned=cleaned: h["linkage"] is None or (
                    h["linkage"]["ready"] and h["linkage"]["registry_entries"] >= cleaned),
                    timeout_s=max(1.0, deadline - time.monotonic()), what="caught up with the registry for matching")
        while time.monotonic() < deadline:
            snap = state()
            show(snap, "sharing")
            if (sum(snap["match"].values()) >= snap["cleaned"][SUBSCRIBER]
                    and sink_runner.written >= snap["covered"].get(subscription.subscription_id, 0)
                    and sink.count() >= snap["covered"].get(subscription.subscription_id, 0)):
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - pipeline_started
        while observer.poll(200) and time.monotonic() < deadline + 10:  # the review topic, written with the results
            pass
        snap = state()
        snap["delivered"] = {subscription.subscription_id: sink.count()}
        # Workers publish quality every 2 s: wait for the tallies of every published record, then snapshot.
        quality_deadline = time.monotonic() + 15
        while time.monotonic() < quality_deadline and any(recorder.records(d) < n for d, n in snap["published"].items()):
            time.sleep(0.2)
        # And for the stewards' desk to hold every quarantined record.
        while time.monotonic() < quality_deadline and any(
                sum(services.desk.counts().get(d, {}).values()) < sum(snap["quarantined"][d].values())
                for d in snap["published"]):
            time.sleep(0.2)
        snap["audit"] = _audit(services, sink, subscription, until=time.monotonic() + 30)
        recorded = {d: recorder.record(d) for d in snap["published"]}
        snap["quality"] = {d: json.loads(row["scores"]) for d, row in recorded.items()}
        snap["findings"] = {d: dict(sorted(json.loads(row["rules"]).items())) for d, row in recorded.items()}
        return _summary(options, snap, synthetic, subscription, elapsed=elapsed, startup_s=ready_s,
                        timed_out=time.monotonic() >= deadline, workdir=workdir, sink_table=sink.table_name)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        for close in closers:
            close()
        worker.stop()
        producer.close()
        services.stop()


def _audit(services: ControlServices, sink: SqlSink, subscription: Subscription, *, until: float) -> dict[str, Any]:
    """What the audit ledger says of the run: every delivered row recorded, the chains intact, who saw one
    delivered person, and the way of one delivered record."""
    ledger = services.ledger
    delivered = sink.count()
    while ledger.delivered(subscription.subscription_id) < delivered and time.monotonic() < until:
        time.sleep(0.2)  # the control plane enters the workers' reports in the background
    ledger.checkpoint()
    report = ledger.verify()
    row = sink.sample()  # the first by event id, a keyed hash: a different row each run
    person = who_saw(ledger, row["personal_id"]) if row is not None and row.get("personal_id") else None
    way = services.lineage.of(row["event_id"]) if row is not None else []
    return {"recorded": ledger.delivered(subscription.subscription_id), "delivered": delivered,
            "verified": report.ok, "entries": sum(report.chains.values()), "heads": report.heads,
            "findings": [str(f) for f in report.findings], "person": person,
            "person_id": row.get("personal_id") if row is not None else None,
            "lineage": way[0] if way else None, "lineage_of": row["event_id"] if row is not None else None,
            "lineage_source_key_agrees": bool(way) and row is not None and way[0]["source"]["key"] == row["source_key"]}


def _source_runner(dataset: str, engine: sa.Engine, control: ControlPlane, codec: Codec, producer: KafkaProducer,
                   offsets: OffsetStore, metrics: ConnectorMetrics) -> SourceRunner:
    target = Target.of(DATASETS[dataset], schema_id=control.schema_id(topics.subject(topics.raw(dataset))),
                       quarantine_schema_id=control.schema_id(topics.subject(topics.quarantine(dataset))))
    return SourceRunner(SqlSource(engine, SOURCES[dataset]), target, producer=producer, codec=codec,
                        offsets=offsets, metrics=metrics)


def _subscribe(services: ControlServices, settings: Settings, closers: list[Callable[[], None]]) -> dict[str, Any]:
    """The scenario's subscription, as agencies get one: through the API, the admin registering both agencies
    and issuing their credentials (revoked when the demo ends), the consumer requesting, the owner approving.
    The Subscription event the data plane received is returned."""
    store = services.control.identities
    admin_token = settings.credential()
    if admin_token is None:  # GSP_HOME's admin token file was removed: a credential for this run only
        issued = store.issue(PLATFORM_AGENCY, grants=[Grant(Role.ADMIN)], label="gsp demo: admin")
        admin_token = issued.token
        closers.append(_revoker(store, issued.key_id))
    admin = ApiClient(services.api.url, token=admin_token)
    owner_agency = DATASETS[SUBSCRIBER].owner
    admin.post("/api/agencies", {"agency": owner_agency, "name": "Cục Viễn thông, Bộ Khoa học và Công nghệ"})
    admin.post("/api/agencies", {"agency": CONSUMER[0], "name": CONSUMER[1]})
    tokens = {}
    for name, agency, grant in (("consumer", CONSUMER[0], {"role": "consumer"}),
                                ("owner", owner_agency, {"role": "owner", "datasets": [SUBSCRIBER]})):
        issued = admin.post("/api/credentials", {"agency": agency, "grants": [grant], "label": "gsp demo"})
        tokens[name] = issued["token"]
        closers.append(_revoker(store, issued["key_id"]))
    requested = ApiClient(services.api.url, token=tokens["consumer"]).post("/api/subscriptions", DEMO_SUBSCRIPTION)
    path = f"/api/subscriptions/{urllib.parse.quote(requested['subscription_id'], safe='')}"
    version = requested["versions"][-1]["version"]
    ApiClient(services.api.url, token=tokens["owner"]).post(
        f"{path}/versions/{version}/approve", {"reason": "Đúng mục đích, đúng căn cứ pháp lý"})
    return next(e for e in services.control.published_subscriptions()
                if e["subscription_id"] == requested["subscription_id"])


def _revoker(store: IdentityStore, key_id: str) -> Callable[[], None]:
    def revoke() -> None:
        store.revoke(key_id)
    return revoke


def _summary(options: DemoOptions, snap: dict[str, Any], synthetic: Synthetic, subscription: Subscription, *,
             elapsed: float, startup_s: float, timed_out: bool, workdir: Path, sink_table: str) -> dict[str, Any]:
    truth = synthetic.truth.to_json()
    allowed = subscription.row_filter.get("carrier", ())
    truth["delivered"] = {subscription.subscription_id: sum(n for c, n in synthetic.truth.matched_by_carrier.items()
                                                            if c in allowed)}
    truth["published"] = {CITIZEN: synthetic.truth.citizens, SUBSCRIBER: synthetic.truth.subscribers}
    # The search must propose the very person the generator derived the record from.
    proposals = Counter("right" if synthetic.links.get(key) == pid else "wrong" for key, pid in snap["proposed"].items())
    snap["proposals"] = {"right": proposals["right"], "wrong": proposals["wrong"]}
    truth["proposals"] = {"right": len(synthetic.links), "wrong": 0}
    differences = [f"{key}: pipeline {snap[key]} != truth {truth[key]}"
                   for key in ("published", "quarantined", "match", "review", "proposals", "delivered")
                   if snap[key] != truth[key]]
    differences += [f"findings of {dataset}: pipeline {rule} {snap['findings'][dataset].get(rule, 0)} != truth {n}"
                    for dataset, rules in truth["findings"].items() for rule, n in rules.items()
                    if snap["findings"][dataset].get(rule, 0) != n]
    audit = snap["audit"]
    if audit["recorded"] < audit["delivered"] or not audit["verified"]:
        differences.append(f"audit ledger: {audit['recorded']} of {audit['delivered']} delivered rows recorded, "
                           f"chains {'intact' if audit['verified'] else 'BROKEN: ' + '; '.join(audit['findings'])}")
    if audit["delivered"] and not (audit["person"] and audit["person"]["deliveries"]
                                   and audit["lineage_source_key_agrees"]):
        differences.append("audit ledger: the person query or the lineage of a delivered record did not answer")
    published = sum(snap["published"].values())
    return {
        "records": options.records, "seed": options.seed,
        "published": snap["published"], "cleaned": snap["cleaned"], "quarantined": snap["quarantined"],
        "match": snap["match"], "review": snap["review"], "proposals": snap["proposals"], "delivered": snap["delivered"], "findings": snap["findings"],
        "quality": snap["quality"], "truth": truth,
        "agrees_with_truth": not differences and not timed_out, "differences": differences, "timed_out": timed_out,
        "startup_s": round(startup_s, 2), "elapsed_s": round(elapsed, 2),
        "records_per_s": round(published / elapsed, 1) if elapsed else 0.0,
        "agency_database": str(workdir / "agency.db"), "agency_table": sink_table, "audit": audit,
    }


def _render_audit(a: dict[str, Any]) -> list[str]:
    lines = [f"  audit ledger: {a['recorded']} deliveries recorded for {a['delivered']} rows, {a['entries']} entries, "
             f"{a['heads']} heads: " + ("every chain verified" if a["verified"] else "TAMPERED: " + "; ".join(a["findings"]))]
    if a["person"] is not None:
        lines.append(f"      who saw {a['person_id']}:")
        for d in a["person"]["deliveries"]:
            lines.append(f"        {d['agency']} received {', '.join(d['fields'])} ({d['records']} record(s), "
                         f"{d['subscription_id']} v{d['version']}, {d['channel']})")
            lines.append(f"          purpose: {d['purpose']}")
            lines.append(f"          legal basis: {d['legal_basis']}")
    if a["lineage"] is not None:
        way = a["lineage"]
        lines.append(f"      lineage of {a['lineage_of']}: {way['source']['system']} key {way['source']['key']} "
                     f"version {way['source']['version']}")
        lines += [f"        {topic:<42} {where}" for topic, where in way["record"]["positions"].items()]
    return lines


def _gsp_command() -> str:
    """How to type `gsp` in the user's shell: plain when it is on PATH, else the path of the one running
    (after `make demo` it is .venv/bin/gsp, and the virtualenv is not activated)."""
    if shutil.which("gsp"):
        return "gsp"
    script = Path(sys.argv[0])
    if script.name == "gsp" and script.exists():
        return shlex.quote(os.path.relpath(script) if not str(script).startswith("/") else str(script))
    return f"{shlex.quote(sys.executable)} -m gsp"


def _render(s: dict[str, Any]) -> str:
    lines = [f"GSP demo: {s['records']} citizens and {s['records']} telecom subscribers (seed {s['seed']})", ""]
    for dataset, n in s["published"].items():
        q = s["quarantined"][dataset]
        lines.append(f"  {dataset:<20} published {n:>7}   cleaned {s['cleaned'][dataset]:>7}   quarantined {sum(q.values()):>5}")
        lines += [f"      quarantine  {rule:<22} {count:>6}" for rule, count in q.items()]
    lines.append("")
    lines.append("  match (telecom.subscriber vs population registry):")
    lines += [f"      {verdict:<12} {count:>7}" for verdict, count in s["match"].items()]
    lines.append(f"      review queue {s['review']:>7}  (POSSIBLE, and MISMATCH likely the same person)")
    lines.append(f"      proposals    {s['proposals']['right']:>7} of the right person, {s['proposals']['wrong']} wrong")
    lines.append("")
    where = s["agency_database"] if s["workdir_kept"] else "removed with the demo's temporary folder; --keep keeps it"
    for sub, n in s["delivered"].items():
        lines.append(f"  delivered to {sub}: {n} rows in {s['agency_table']} ({where})")
    lines += ["", *_render_audit(s["audit"])]
    lines.append("")
    lines.append("  findings of the clean stage, by rule (fixes, warnings, rejections):")
    for dataset, rules in s["findings"].items():
        lines.append(f"      {dataset:<20} " + ", ".join(f"{rule} {n}" for rule, n in rules.items()))
    lines.append("")
    lines.append("  quality (đúng, đủ, sạch, sống):")
    for dataset, dims in s["quality"].items():
        lines.append(f"      {dataset:<20} " + "  ".join(f"{d} {v:.3f}" for d, v in dims.items() if v is not None))
    lines.append("")
    verdict = "agree exactly with the generator's truth" if s["agrees_with_truth"] else "DO NOT agree with the truth"
    lines.append(f"  counts {verdict}")
    lines += [f"      {d}" for d in s["differences"]]
    if s["timed_out"]:
        lines.append("      stopped by --duration before every record passed every stage")
    lines.append(f"  {s['elapsed_s']}s after a {s['startup_s']}s start-up: {s['records_per_s']} records/s end to end")
    # Commands that work once the demo has stopped: the scorecards and the desks live in GSP_HOME.
    home = f"GSP_HOME={shlex.quote(s['home'])}"
    gsp = _gsp_command()
    lines += ["", f"  the scorecards and the stewards' queues are kept in {s['home']}:",
              f"      {home} {gsp} quality report",
              f"      {home} {gsp} serve        and in another shell:  {home} {gsp} review list"]
    if s["workdir_kept"]:
        lines.append(f"  sources, agency database and worker log: {s['workdir']}")
    return "\n".join(lines) + "\n"
