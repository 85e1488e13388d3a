"""`gsp demo`: the seed's systems through the whole platform, on one machine.

The population registry, its change events, three carriers, EVN and Vietnam Social Security publish
through SQL, outbox and file-drop connectors (`gsp.tools.intake`); the stream worker cleans, matches
against the registry and shares; four ministries, two provinces and the national public service portal
receive their approved fields and rows through an SQL sink, a signed webhook, the HTTP pull feed or
Kafka (`gsp.tools.channels`, `gsp.tools.scenario`). The summary compares every count with what the
generator (`gsp.tools.synth.seed`) knows the outcome must be.

`SOURCES` and `write_sources` are the two-table sources of `gsp.tools.synth.generate`, which the fault
tools and the benchmark use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sql_sink import SqlSink
from connectors.sql_source import SqlSourceConfig
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from gsp.governance.control import ControlPlane
from gsp.governance.identity import ALL, Grant, IdentityStore, Role
from gsp.http.audit import who_saw
from gsp.http.client import ApiClient
from gsp.runtime.credentials import PLATFORM_AGENCY
from gsp.runtime.database import control_engine
from gsp.runtime.embedded import running_broker
from gsp.runtime.lag import group_lag
from gsp.runtime.serve import check_datasets, check_linkage_model
from gsp.runtime.services import ControlServices
from gsp.runtime.supervisor import WorkerProcess
from gsp.tools.channels import Delivery, KafkaChannel, PullChannel, sql_channel, webhook_channel
from gsp.tools.intake import Intake, write_intake
from gsp.tools.observer import Observer
from gsp.tools.scenario import AGENCIES, SUBSCRIPTIONS, Request
from gsp.tools.synth import Synthetic
from gsp.tools.synth.seed import Seed, generate_seed
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
    keep_running: bool = False  # after the summary, keep the platform running for the console until Ctrl-C or SIGTERM


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
        progress.show(f"generating {options.records} citizens and the seed's sources (seed {options.seed}) …", force=True)
        seed = generate_seed(options.records, seed=options.seed)
        source_engine = sa.create_engine(f"sqlite:///{workdir / 'sources.db'}")
        intakes = write_intake(seed.tables, engine=source_engine, drop=workdir / "drop")
        started = time.monotonic()

        def show_summary(summary: dict[str, Any]) -> None:
            summary.update(workdir=str(workdir), workdir_kept=kept, home=str(settings.home.resolve()))
            progress.done()
            out.write(json.dumps(summary, ensure_ascii=False) + "\n" if options.json else _render(summary))
            out.flush()

        with running_broker(settings) as bootstrap:
            summary = _run(settings, options, bootstrap, workdir, seed, intakes, progress, started,
                           held=(show_summary, err) if options.keep_running else None)
        source_engine.dispose()
    if not options.keep_running:
        show_summary(summary)
    return 0 if summary["agrees_with_truth"] else 1


@dataclass
class _Channel:
    request: Request
    subscription: Subscription
    delivery: Delivery


def _run(settings: Settings, options: DemoOptions, bootstrap: str, workdir: Path, seed: Seed, intakes: list[Intake],
         progress: _Progress, started: float,
         held: tuple[Callable[[dict[str, Any]], None], TextIO] | None = None) -> dict[str, Any]:
    """The demo's run and its summary. ``held`` (--keep-running): how to show the summary, and the stream of the
    ready line; the platform then keeps running, for the console, until Ctrl-C or SIGTERM."""
    metrics_registry = CollectorRegistry()
    # The control plane's own database (GSP_DATABASE_URL), so `gsp quality report` sees the demo's scorecards.
    settings.home.mkdir(parents=True, exist_ok=True)
    services = ControlServices(settings, bootstrap=bootstrap, engine=control_engine(settings.resolved_database_url),
                               metrics=metrics_registry)
    services.start()
    control, codec = services.control, services.codec
    worker = WorkerProcess(settings, bootstrap=bootstrap, registry_url=services.registry_url, home=workdir,
                           token=services.worker_token)
    closers: list[Callable[[], None]] = []  # clients and channels opened below, closed however the run ends
    producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))
    try:
        worker.start()
        progress.show(f"registering {len(AGENCIES)} agencies; {len(SUBSCRIPTIONS)} requests, each approved by the "
                      "dataset's owner …", force=True)
        tokens, events = _subscribe(services, settings, closers)
        progress.show("starting the stream worker (consumer-group join) …", force=True)
        worker.wait_until(lambda h: h["assigned_partitions"] > 0 and h["subscriptions"] >= len(events), timeout_s=90,
                          what="ready")
        conn_metrics = ConnectorMetrics.create(metrics_registry)
        consumer_config = kafka_consumer_config(settings, bootstrap)
        channels: list[_Channel] = []
        audited: SqlSink | None = None
        for request, event in zip(SUBSCRIPTIONS, events, strict=True):
            subscription = Subscription.from_event(event)
            delivery: Delivery
            if request.channel == "sql":
                delivery, sink = sql_channel(subscription.topic, json.loads(event["schema"]),
                                             database=workdir / f"{_slug(request.agency)}.db",
                                             consumer_config=consumer_config, codec=codec, metrics=conn_metrics)
                audited = audited or sink
            elif request.channel == "webhook":
                delivery = webhook_channel(subscription.topic, consumer_config=consumer_config, codec=codec,
                                           metrics=conn_metrics, producer=producer)
            elif request.channel == "pull":
                delivery = PullChannel(services.api.url, tokens[request.agency, "consumer"], subscription.subscription_id)
            else:
                delivery = KafkaChannel(bootstrap, subscription.topic, codec)
            closers.append(delivery.close)
            channels.append(_Channel(request, subscription, delivery))
        assert audited is not None, "the scenario has an SQL subscription"
        observer = Observer(bootstrap, codec, subscriptions=[c.subscription for c in channels])
        closers.append(observer.close)
        recorder = services.recorder
        assert recorder is not None
        ready_s = time.monotonic() - started
        pipeline_started = time.monotonic()
        offsets = OffsetStore(bootstrap, producer)
        closers.append(offsets.close)  # its watcher (the runners share it)
        runners = [(intake, _runner(intake, control, codec, producer, offsets, conn_metrics)) for intake in intakes]
        deadline = pipeline_started + options.duration_s

        def state() -> dict[str, Any]:
            observer.poll(50)
            worker.check_alive()
            snap = observer.snapshot()
            published: Counter[str] = Counter()
            for intake, runner in runners:
                published[intake.table.dataset] += runner.published + runner.quarantined
            snap["published"] = {d: published[d] for d in seed.truth.published}
            snap["delivered"] = {c.subscription.subscription_id: c.delivery.delivered() for c in channels}
            return snap

        def show(snap: dict[str, Any], phase: str) -> None:
            q = sum(sum(c.values()) for c in snap["quarantined"].values())
            progress.show(f"[{time.monotonic() - pipeline_started:5.1f}s] {phase}: published {sum(snap['published'].values())}"
                          f"  cleaned {sum(snap['cleaned'].values())}  quarantined {q}"
                          f"  matched {sum(sum(v.values()) for v in snap['match'].values())}"
                          f"  delivered {sum(snap['delivered'].values())}")

        def handled(snap: dict[str, Any], dataset: str) -> bool:
            return snap["cleaned"][dataset] + sum(snap["quarantined"][dataset].values()) >= snap["published"][dataset]

        # The registry is the master: load it before verifying anything against it.
        registry = [(i, r) for i, r in runners if i.table.dataset == CITIZEN]
        for _, runner in registry:
            runner.start()
            while runner.run_once() and time.monotonic() < deadline:
                show(state(), "loading the population registry")
        while time.monotonic() < deadline and not handled(state(), CITIZEN):
            show(state(), "loading the population registry")
            time.sleep(0.05)
        while time.monotonic() < deadline and group_lag(bootstrap, settings.app_id, topics.clean(CITIZEN)) > 0:
            show(state(), "indexing the registry")
            time.sleep(0.2)
        # The matcher's replica is read from the registry table's changelog: let it hold every cleaned citizen
        # (consumer lag alone is not enough: the embedded broker's end offsets are off).
        cleaned = state()["cleaned"][CITIZEN]
        worker.wait_until(lambda h: h["linkage"] is None or (h["linkage"]["ready"] and h["linkage"]["registry_entries"] >= cleaned),
                          timeout_s=max(1.0, deadline - time.monotonic()), what="caught up with the registry for matching")
        # Then every other source at once, as the ministries' systems would publish.
        others = [r for i, r in runners if i.table.dataset != CITIZEN]
        for runner in others:
            runner.start()
        busy = list(others)
        while busy and time.monotonic() < deadline:
            busy = [r for r in busy if r.run_once()]
            show(state(), "publishing the ministries' sources")
        while time.monotonic() < deadline:
            snap = state()
            show(snap, "cleaning, matching and sharing")
            if (all(handled(snap, d) for d in snap["published"])
                    and all(sum(snap["match"][d].values()) >= snap["cleaned"][d] for d in snap["match"])
                    and all(snap["delivered"][s] >= snap["covered"].get(s, 0) for s in snap["delivered"])):
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - pipeline_started
        while observer.poll(200) and time.monotonic() < deadline + 10:  # the review topics, written with the results
            pass
        snap = state()
        # Workers publish quality every 2 s: wait for the tallies of every published record, then snapshot.
        quality_deadline = time.monotonic() + 15
        while time.monotonic() < quality_deadline and any(recorder.records(d) < n for d, n in snap["published"].items()):
            time.sleep(0.2)
        # And for the stewards' desk to hold every quarantined record.
        while time.monotonic() < quality_deadline and any(
                sum(services.desk.counts().get(d, {}).values()) < sum(snap["quarantined"][d].values())
                for d in snap["published"]):
            time.sleep(0.2)
        c06 = next(c for c in channels if c.request.channel == "sql")
        snap["audit"] = _audit(services, audited, c06.subscription, until=time.monotonic() + 30)
        recorded = {d: recorder.record(d) for d in snap["published"]}
        snap["quality"] = {d: json.loads(row["scores"]) for d, row in recorded.items()}
        snap["findings"] = {d: dict(sorted(json.loads(row["rules"]).items())) for d, row in recorded.items()}
        portal = next((c.delivery for c in channels if isinstance(c.delivery, KafkaChannel)), None)
        snap["prefill"] = portal.prefill() if portal is not None else None
        summary = _summary(options, snap, seed, channels, intakes, elapsed=elapsed, startup_s=ready_s,
                           timed_out=time.monotonic() >= deadline, audited=audited,
                           workdir=workdir, audit_agency=c06.request.agency)
        if held is not None:
            show_summary, ready = held
            summary["console"] = _console(services, tokens, workdir, closers)
            show_summary(summary)
            _hold(summary["console"]["url"], ready, worker, [r for _, r in runners])
        return summary
    finally:
        for close in reversed(closers):
            close()
        worker.stop()
        producer.close()
        services.stop()


def _console(services: ControlServices, tokens: dict[tuple[str, str], str], workdir: Path,
             closers: list[Callable[[], None]]) -> dict[str, str]:
    """The console's address, and a credential per role in <workdir>/console-credentials.json (0600), revoked when
    the demo ends like the scenario's: "consumer" is C06 and "other_consumer" Vietnam Social Security, each with an
    approved subscription; "owner" owns telecom.subscriber and "owner:<dataset>" each dataset of a known owner."""
    store = services.control.identities

    def issue(agency: str, grant: Grant) -> str:
        issued = store.issue(agency, grants=[grant], label="gsp demo: console", created_by="gsp demo")
        closers.append(_revoker(store, issued.key_id))
        return issued.token

    first, second = SUBSCRIPTIONS[0], next(r for r in SUBSCRIPTIONS if r.agency != SUBSCRIPTIONS[0].agency)
    portal = next((r.agency for r in SUBSCRIPTIONS if r.channel == "kafka"), PLATFORM_AGENCY)
    creds = {"admin": issue(PLATFORM_AGENCY, Grant(Role.ADMIN)),
             "steward": issue(PLATFORM_AGENCY, Grant(Role.STEWARD, (ALL,))),
             "ops": issue(PLATFORM_AGENCY, Grant(Role.OPS)),
             "portal": issue(portal, Grant(Role.PORTAL)),
             "consumer": tokens[first.agency, "consumer"], "other_consumer": tokens[second.agency, "consumer"]}
    agencies = {"admin": PLATFORM_AGENCY, "steward": PLATFORM_AGENCY, "ops": PLATFORM_AGENCY, "portal": portal,
                "consumer": first.agency, "other_consumer": second.agency}
    owners: dict[str, list[str]] = {}
    for d in DATASETS.values():
        if d.owner in AGENCIES:
            owners.setdefault(d.owner, []).append(d.name)
    for owner, datasets in owners.items():
        token = issue(owner, Grant(Role.OWNER, tuple(sorted(datasets))))
        for dataset in datasets:
            creds[f"owner:{dataset}"], agencies[f"owner:{dataset}"] = token, owner
    creds["owner"], agencies["owner"] = creds[f"owner:{SUBSCRIBER}"], agencies[f"owner:{SUBSCRIBER}"]
    url = f"{services.api.url}/console"
    path = workdir / "console-credentials.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": url, "tokens": creds, "agencies": agencies}, f, ensure_ascii=False, indent=2)
    # kafka: for a `gsp connect worker` joining the demo (the console's operations page shows its tasks)
    return {"url": url, "credentials_file": str(path), "kafka": services.connect.offsets.bootstrap}


def _hold(url: str, ready: TextIO, worker: WorkerProcess, runners: list[SourceRunner]) -> None:
    """--keep-running: the broker, control plane, worker, connectors and channels go on until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    ready.write(f"gsp demo: ready; console at {url}\n")
    ready.flush()
    try:
        while not stop.wait(1.0):
            try:
                worker.check_alive()
            except UserError:
                if stop.wait(1.0):  # a Ctrl-C in the terminal reaches the worker too: it stopped with us
                    break
                raise
            for runner in runners:  # the sources' new rows, as the connectors would publish them
                runner.run_once()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    ready.write("gsp demo: stopping\n")
    ready.flush()


def _slug(agency: str) -> str:
    return "-".join(agency.split("/")[2:])


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
    return {"subscription": subscription.subscription_id,
            "recorded": ledger.delivered(subscription.subscription_id), "delivered": delivered,
            "verified": report.ok, "entries": sum(report.chains.values()), "heads": report.heads,
            "findings": [str(f) for f in report.findings], "person": person,
            "person_id": row.get("personal_id") if row is not None else None,
            "lineage": way[0] if way else None, "lineage_of": row["event_id"] if row is not None else None,
            "lineage_source_key_agrees": bool(way) and row is not None and way[0]["source"]["key"] == row["source_key"]}


def _runner(intake: Intake, control: ControlPlane, codec: Codec, producer: KafkaProducer, offsets: OffsetStore,
            metrics: ConnectorMetrics) -> SourceRunner:
    """A connector of one source table: its dataset's topics, the table's own source system."""
    dataset = intake.table.dataset
    target = Target.of(DATASETS[dataset], schema_id=control.schema_id(topics.subject(topics.raw(dataset))),
                       quarantine_schema_id=control.schema_id(topics.subject(topics.quarantine(dataset))))
    return SourceRunner(intake.open(), replace(target, source_system=intake.table.source_system), producer=producer,
                        codec=codec, offsets=offsets, metrics=metrics)


def _subscribe(services: ControlServices, settings: Settings, closers: list[Callable[[], None]],
               ) -> tuple[dict[tuple[str, str], str], list[dict[str, Any]]]:
    """The scenario's subscriptions, as agencies get them: through the API, the admin registering every agency and
    issuing its credentials (revoked when the demo ends), each consumer requesting, each dataset's owner approving.
    Returns the credentials by (agency, role) and the Subscription events the data plane received, in order."""
    store = services.control.identities
    admin_token = settings.credential()
    if admin_token is None:  # GSP_HOME's admin token file was removed: a credential for this run only
        issued = store.issue(PLATFORM_AGENCY, grants=[Grant(Role.ADMIN)], label="gsp demo: admin")
        admin_token = issued.token
        closers.append(_revoker(store, issued.key_id))
    admin = ApiClient(services.api.url, token=admin_token)
    for known in AGENCIES.values():
        admin.post("/api/agencies", {"agency": known.id, "name": known.name})
    owned: dict[str, list[str]] = {}
    for request in SUBSCRIPTIONS:
        owned.setdefault(DATASETS[request.dataset].owner, []).append(request.dataset)
    wanted = [(r.agency, "consumer", {"role": "consumer"}) for r in SUBSCRIPTIONS] + [
        (owner, "owner", {"role": "owner", "datasets": sorted(set(datasets))}) for owner, datasets in owned.items()]
    tokens: dict[tuple[str, str], str] = {}
    for agency, role, grant in wanted:
        if (agency, role) not in tokens:
            issued = admin.post("/api/credentials", {"agency": agency, "grants": [grant], "label": "gsp demo"})
            tokens[agency, role] = issued["token"]
            closers.append(_revoker(store, issued["key_id"]))
    ids = []
    for request in SUBSCRIPTIONS:
        body = {"dataset": request.dataset, "fields": request.fields, "row_filter": request.row_filter,
                "purpose": request.purpose, "legal_basis": request.legal_basis,
                **({"verdicts": request.verdicts} if request.verdicts else {})}
        requested = ApiClient(services.api.url, token=tokens[request.agency, "consumer"]).post("/api/subscriptions", body)
        path = f"/api/subscriptions/{urllib.parse.quote(requested['subscription_id'], safe='')}"
        version = requested["versions"][-1]["version"]
        ApiClient(services.api.url, token=tokens[DATASETS[request.dataset].owner, "owner"]).post(
            f"{path}/versions/{version}/approve", {"reason": "Đúng mục đích, đúng căn cứ pháp lý"})
        ids.append(requested["subscription_id"])
    published = {e["subscription_id"]: e for e in services.control.published_subscriptions()}
    return tokens, [published[i] for i in ids]


def _revoker(store: IdentityStore, key_id: str) -> Callable[[], None]:
    def revoke() -> None:
        store.revoke(key_id)
    return revoke


def _summary(options: DemoOptions, snap: dict[str, Any], seed: Seed, channels: list[_Channel], intakes: list[Intake], *,
             elapsed: float, startup_s: float, timed_out: bool, audited: SqlSink, workdir: Path,
             audit_agency: str) -> dict[str, Any]:
    t = seed.truth
    truth = t.to_json()
    truth["published"] = dict(t.published)
    truth["quarantined"] = {d: dict(sorted(t.quarantined.get(d, {}).items())) for d in snap["quarantined"]}
    truth["match"] = {d: dict(sorted(t.match.get(d, {}).items())) for d in snap["match"]}
    truth["review"] = {d: t.review(d) for d in snap["review"]}
    truth["delivered"] = {c.subscription.subscription_id: t.delivered(c.request.dataset, c.request.row_filter,
                                                                      c.request.verdicts) for c in channels}
    # The search must propose the very person the generator derived the record from.
    snap["proposals"], truth["proposals"] = {}, {}
    for d, proposed in snap["proposed"].items():
        right = Counter("right" if t.links.get(d, {}).get(key) == pid else "wrong" for key, pid in proposed.items())
        snap["proposals"][d] = {"right": right["right"], "wrong": right["wrong"]}
        truth["proposals"][d] = {"right": len(t.links.get(d, {})), "wrong": 0}
    differences = [f"{key}: pipeline {snap[key]} != truth {truth[key]}"
                   for key in ("published", "quarantined", "match", "review", "proposals", "delivered")
                   if snap[key] != truth[key]]
    differences += [f"findings of {dataset}: pipeline {rule} {snap['findings'][dataset].get(rule, 0)} != truth {n}"
                    for dataset, rules in t.findings.items() for rule, n in rules.items()
                    if snap["findings"].get(dataset, {}).get(rule, 0) != n]
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
        "sources": [{"table": i.table.name, "dataset": i.table.dataset, "source_system": i.table.source_system,
                     "intake": i.kind, "where": i.where, "rows": len(i.table.rows)} for i in intakes],
        "subscriptions": [{"subscription_id": c.subscription.subscription_id, "agency": c.request.agency,
                           "agency_name": AGENCIES[c.request.agency].name, "dataset": c.request.dataset,
                           "fields": c.request.fields, "row_filter": c.request.row_filter, "channel": c.request.channel,
                           "where": getattr(c.delivery, "where", ""), "delivered": snap["delivered"][c.subscription.subscription_id]}
                          for c in channels],
        "published": snap["published"], "cleaned": snap["cleaned"], "quarantined": snap["quarantined"],
        "match": snap["match"], "review": snap["review"], "proposals": snap["proposals"], "delivered": snap["delivered"],
        "findings": snap["findings"], "quality": snap["quality"], "truth": truth, "prefill": snap["prefill"],
        "agrees_with_truth": not differences and not timed_out, "differences": differences, "timed_out": timed_out,
        "startup_s": round(startup_s, 2), "elapsed_s": round(elapsed, 2),
        "records_per_s": round(published / elapsed, 1) if elapsed else 0.0,
        "agency_database": str(workdir / f"{_slug(audit_agency)}.db"), "agency_table": audited.table_name,
        "audit": audit,
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
    lines = [f"GSP demo: {s['records']} citizens and the seed's sources (seed {s['seed']})", "",
             "  sources (intake -> dataset):"]
    lines += [f"      {x['source_system']:<20} {x['rows']:>7} rows  {x['intake']:<7} -> {x['dataset']}" for x in s["sources"]]
    lines.append("")
    for dataset, n in s["published"].items():
        q = s["quarantined"][dataset]
        lines.append(f"  {dataset:<22} published {n:>7}   cleaned {s['cleaned'][dataset]:>7}   quarantined {sum(q.values()):>5}")
        lines += [f"      quarantine  {rule:<22} {count:>6}" for rule, count in q.items()]
        if dataset in s["match"]:
            lines.append("      match " + ", ".join(f"{v} {n}" for v, n in s["match"][dataset].items())
                         + f"; review queue {s['review'][dataset]}; proposals {s['proposals'][dataset]['right']} of the "
                         f"right person, {s['proposals'][dataset]['wrong']} wrong")
    lines += ["", "  subscriptions (agency <- dataset, filter, channel: records received / truth):"]
    for sub in s["subscriptions"]:
        rows = " ".join(f"{k}={'|'.join(v)}" for k, v in sub["row_filter"].items()) or "all rows"
        lines.append(f"      {sub['agency_name']}")
        lines.append(f"          <- {sub['dataset']} ({rows}) via {sub['channel']}: {sub['delivered']} / "
                     f"{s['truth']['delivered'][sub['subscription_id']]}")
    if s["prefill"]:
        form = ", ".join(f"{k}: {v}" for k, v in s["prefill"].items())
        lines.append(f"      the portal prefills a form: {form}")
    where = s["agency_database"] if s["workdir_kept"] else "removed with the demo's temporary folder; --keep keeps it"
    lines.append(f"      C06's rows: table {s['agency_table']} in {where}")
    lines += ["", *_render_audit(s["audit"])]
    lines.append("")
    lines.append("  findings of the clean stage, by rule (fixes, warnings, rejections):")
    for dataset, rules in s["findings"].items():
        lines.append(f"      {dataset:<22} " + ", ".join(f"{rule} {n}" for rule, n in rules.items()))
    lines.append("")
    lines.append("  quality (đúng, đủ, sạch, sống):")
    for dataset, dims in s["quality"].items():
        lines.append(f"      {dataset:<22} " + "  ".join(f"{d} {v:.3f}" for d, v in dims.items() if v is not None))
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
    if s.get("console"):
        lines += ["", f"  the console: {s['console']['url']}   (running until Ctrl-C)",
                  f"      sign in with a token from {s['console']['credentials_file']} (one per role)"]
    lines += ["", f"  the scorecards and the stewards' queues are kept in {s['home']}:",
              f"      {home} {gsp} quality report",
              f"      {home} {gsp} serve        and in another shell:  {home} {gsp} review list"]
    if s["workdir_kept"]:
        lines.append(f"  sources, agency databases and worker log: {s['workdir']}")
    return "\n".join(lines) + "\n"
