"""The metrics contract, proved by a real Prometheus (Debian's package) scraping a running platform.

`gsp serve` with one worker, a `gsp connect run` SQL source and a `gsp sink run` SQL sink, each a
process on loopback; Prometheus scrapes them every second and evaluates deploy/prometheus/alerts.yaml
every second. Every series the Grafana dashboard, the alert rules and the KEDA triggers name must
exist, and at idle no alert may fire or be pending.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from gsp.governance.topology import ensure_topics
from gsp.runtime.embedded import free_port
from gsp.tools.demo import SOURCES
from gsp.tools.synth import generate
from schemas import topics
from schemas.registry import RegistryClient
from streams.clean import clean_citizen
from tests.connectors.sharing import SHARE_SCHEMA, publish
from tests.gsp.runtime.test_serve import serving
from tests.gsp.tools.test_synth import as_citizen
from tests.test_deploy import DEPLOY, dashboard_panels, load_yaml, promql_names

PROMETHEUS = "/usr/bin/prometheus"
CITIZEN = "population.citizen"
SHARE_TOPIC = "share.so-y-te-contract.participant.v1"
# Series that only a process this test does not start would export, by metric family prefix.
NOT_STARTED = {
    "gsp_webhook_": "a webhook sink (`gsp sink run` of type webhook): the test runs a SQL sink",
    "gsp_connector_files_total": "a file-drop source (`gsp connect run` of type file): the test runs a SQL source",
    "gsp_connect_worker_": "distributed connector workers (`gsp connect worker`): the test runs standalone ones",
    # Labelled by the agency of a subscription, and this test has none: the series appear with the first one.
    "gsp_feed_": "the pull feed, per agency", "gsp_share_delivered_total": "deliveries, per agency",
    "gsp_verifications_total": "verification answers, per agency",
}


def get(url: str, *, timeout_s: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def until(what: str, check: Callable[[], Any], *, timeout_s: float) -> Any:
    """``check()``'s first truthy value, polled every 0.5 s; AssertionError with the last value after the timeout."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            last = check()
            if last:
                return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout_s} s (last: {last!r})")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def used_names() -> dict[str, set[str]]:
    """Metric name -> where deploy/ uses it: the dashboard, the alert rules and the KEDA prometheus triggers."""
    exprs: list[tuple[str, str]] = []
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gsp.json").read_text(encoding="utf-8"))
    exprs += [("dashboard", t["expr"]) for p in dashboard_panels(dashboard["panels"]) for t in p.get("targets", [])]
    (rules,) = load_yaml(DEPLOY / "prometheus" / "alerts.yaml")
    exprs += [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in load_yaml(path):
            if isinstance(doc, dict) and doc.get("kind") == "ScaledObject":
                exprs += [(f"KEDA {doc['metadata']['name']}", t["metadata"]["query"])
                          for t in doc["spec"]["triggers"] if t["type"] == "prometheus"]
    names: dict[str, set[str]] = {}
    for where, expr in exprs:
        for name in promql_names(expr)[0]:
            names.setdefault(name, set()).add(where)
    return names


def clean_citizens(n: int) -> list[dict[str, Any]]:
    """``n`` citizens the clean stage passes without a finding, updated now (fresh for the quality checks)."""
    now_ms = int(time.time() * 1000)
    rows = [{**r, "updated_at": now_ms} for r in generate(3 * n, seed=11).citizens]
    return [r for r in rows if not clean_citizen(as_citizen(r)).findings][:n]


def citizen_table(database: Path, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(f"sqlite:///{database}")
    table = sa.Table("citizen", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("updated_at", sa.BigInteger, nullable=False),
                     *[sa.Column(c, sa.Text) for c in rows[0] if c != "updated_at"])
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    engine.dispose()


@contextlib.contextmanager
def processes(logs: Path) -> Iterator[Callable[..., subprocess.Popen[Any]]]:
    """start(name, *args, **popen): a process logging to ``logs/name.log``; every one is stopped at the end:
    SIGINT, then SIGKILL if it does not exit."""
    started: list[subprocess.Popen[Any]] = []

    def start(name: str, *args: str, **popen: Any) -> subprocess.Popen[Any]:
        with open(logs / f"{name}.log", "w") as log:  # the child holds its own descriptor
            started.append(subprocess.Popen(args, stderr=log, **{"stdout": subprocess.DEVNULL, **popen}))
        return started[-1]

    start.started = started  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for process in reversed(started):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def prometheus_config(path: Path, jobs: dict[str, list[str]]) -> None:
    path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "alerts.yaml")],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()],
    }))


def test_every_series_deploy_uses_exists_and_no_alert_fires_at_idle(tmp_path: Path) -> None:
    assert os.access(PROMETHEUS, os.X_OK), "install Debian's package prometheus (make test does)"
    citizens = clean_citizens(30)
    assert len(citizens) == 30
    database = tmp_path / "sources.db"
    citizen_table(database, citizens)
    source = SOURCES[CITIZEN]
    (tmp_path / "connector.json").write_text(json.dumps({
        "name": "citizens-sql", "dataset": CITIZEN, "database_url": f"sqlite:///{database}", "table": source.table,
        "key_column": source.key_column, "columns": dict(source.columns)}))
    (tmp_path / "sink.json").write_text(json.dumps({
        "name": "participants-sql", "topic": SHARE_TOPIC, "database_url": f"sqlite:///{tmp_path / 'agency.db'}"}))
    env = {**os.environ, "GSP_HOME": str(tmp_path / "home"), "GSP_API_PORT": str(free_port())}
    env.pop("GSP_TOKEN", None)
    (tmp_path / "home").mkdir()
    ports = {"connector": free_port(), "sink": free_port(), "prometheus": free_port()}

    with processes(tmp_path) as start:
        server = start("serve", sys.executable, "-m", "gsp", "serve", "--workers", "1", env=env,
                       stdout=subprocess.PIPE, text=True)
        runtime = serving(server, tmp_path / "home", tmp_path / "serve.log")
        registry = RegistryClient(runtime["api_url"], token=runtime["token"])
        share_schema_id = registry.register(topics.subject(SHARE_TOPIC), SHARE_SCHEMA)
        ensure_topics(runtime["bootstrap"], {SHARE_TOPIC: (1, {})})
        for name, command in (("connector", "connect"), ("sink", "sink")):
            start(name, sys.executable, "-m", "gsp", command, "run", str(tmp_path / f"{name}.json"),
                  "--port", str(ports[name]), env=env)
        publish(runtime["bootstrap"], SHARE_TOPIC, range(5), schema_id=share_schema_id)

        config = tmp_path / "prometheus.yml"
        prometheus_config(config, {
            "gsp-control-plane": [runtime["api_url"].removeprefix("http://")],
            "gsp-workers": [w.removeprefix("http://") for w in runtime["workers"]],
            "gsp-channels": [f"127.0.0.1:{ports['connector']}", f"127.0.0.1:{ports['sink']}"]})
        start("prometheus", PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
              f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--log.level=warn")
        prometheus = Prometheus(f"http://127.0.0.1:{ports['prometheus']}")

        def all_up() -> bool:
            targets = get(f"{prometheus.url}/api/v1/targets")["data"]["activeTargets"]
            for process in start.started:  # type: ignore[attr-defined]
                assert process.poll() is None, f"{process.args} exited: see its log in {tmp_path}"
            return len(targets) == 4 and all(t["health"] == "up" for t in targets)

        until("every target up", all_up, timeout_s=60)
        # The data moved: the connector published every row, the sink wrote every event, the worker holds the registry.
        until("citizens published", lambda: prometheus.value(
            'sum(gsp_connector_records_total{connector="citizens-sql", outcome="published"})') == 30, timeout_s=60)
        until("share events written", lambda: prometheus.value(
            'sum(gsp_connector_records_total{connector="participants-sql", outcome="written"})') == 5, timeout_s=60)
        until("registry filled", lambda: prometheus.value("sum(gsp_registry_records)") == 30, timeout_s=60)
        # At idle the worker is behind on nothing; its registry changelog (30 records, never committed: the table
        # reads it by seeking) is not lag.
        until("no lag at idle", lambda: prometheus.value("sum(gsp_consumer_lag_records)") == 0, timeout_s=30)
        assert not prometheus.query('gsp_consumer_lag_records{topic=~".*changelog.*"}')

        missing = {name: sorted(where) for name, where in used_names().items()
                   if not prometheus.query(f'count({{__name__="{name}"}})')
                   and not any(name.startswith(prefix) for prefix in NOT_STARTED)}
        assert not missing, " ".join(sorted(missing))

        # The up gauges and Kafka Connect's states, set by the runners while their loops run.
        for connector in ("citizens-sql", "participants-sql"):
            assert prometheus.value(f'gsp_connector_up{{connector="{connector}"}}') == 1, connector
            assert prometheus.value(f'gsp_connector_task_status{{connector="{connector}", task="0", state="RUNNING"}}') == 1
            assert prometheus.value(f'gsp_connector_offset_commits_total{{connector="{connector}", outcome="success"}}')
            assert prometheus.value(f'gsp_connector_offset_commits_total{{connector="{connector}", outcome="failure"}}') == 0
        assert prometheus.value('gsp_connector_source_records_polled_total{connector="citizens-sql"}') == 30
        assert prometheus.value('gsp_connector_sink_records_read_total{connector="participants-sql"}') == 5
        # The control plane labels requests by route template, and exports its process metrics.
        assert prometheus.value('sum(gsp_http_requests_total{route="/metrics", method="GET", status="200"})')
        routes = {r["metric"]["route"] for r in prometheus.query("gsp_http_request_seconds_count")}
        assert "/subjects/{subject}/versions" in routes and not any("share." in r for r in routes), routes
        assert prometheus.value('count(process_cpu_seconds_total)') == 4

        # A few evaluations at idle: nothing fires, nothing is pending.
        rules = get(f"{prometheus.url}/api/v1/rules")["data"]["groups"]
        assert len(rules) >= 4 and all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
        evaluated = max(g["lastEvaluation"] for g in rules)
        until("another evaluation", lambda: all(g["lastEvaluation"] > evaluated for g in
                                                get(f"{prometheus.url}/api/v1/rules")["data"]["groups"]), timeout_s=10)
        time.sleep(5)
        alerts = get(f"{prometheus.url}/api/v1/alerts")["data"]["alerts"]
        assert not alerts, [(a["labels"]["alertname"], a["state"], a["labels"]) for a in alerts]
