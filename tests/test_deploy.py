"""deploy/: every file parses, and it agrees with the code.

Metric and label names are read from the code's own metric bundles built against a
fresh registry, so renaming a metric or a label in streams/metrics.py or
connectors/metrics.py fails here until the alerts and the dashboard follow.
"""

import json
import re
import shutil
import subprocess
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy
import yaml
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.webhook_sink import WebhookMetrics
from gsp.cli import build_parser
from gsp.governance.catalog import platform_topics
from gsp.governance.identity import Role
from gsp.governance.metrics import OpenItems, SubscriptionRequests
from gsp.governance.subscriptions import OverdueRequests, Subscriptions
from gsp.http.feed import FeedMetrics
from gsp.http.metrics import HttpMetrics
from gsp.runtime.connect_worker import WorkerMetrics
from gsp.runtime.process import process_metrics
from gsp.runtime.services import ControlServices
from gsp.tools.scenario import INTAKE
from gsp.tools.synth.seed import generate_seed
from schemas import topics
from schemas.datasets import dataset
from schemas.settings import Settings
from streams.metrics import QualityCollector, StageMetrics
from streams.quality import QualityTally
from tests.credentials import Cast
from tests.gsp.cli.test_cli import gsp

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PARSED_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


def defined_metrics() -> tuple[set[str], set[str]]:
    """(sample names, label names) of every metric the code defines."""
    registry = CollectorRegistry()
    bundles = (StageMetrics.create(registry), ConnectorMetrics.create(registry), FeedMetrics.create(registry),
               WebhookMetrics.create(registry), HttpMetrics.create(registry), WorkerMetrics.create(registry))
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    samples = {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}
    # A labelled metric has no samples until a child exists, so its label names come
    # from the metric objects themselves.
    labels = {"le"} | {name for bundle in bundles for f in fields(bundle)
                       for name in getattr(bundle, f.name)._labelnames}
    # The quality collector reports at scrape time from the tallies, so it needs one observation to show.
    tally = QualityTally.for_dataset(dataset("telecom.subscriber"))
    tally.observe_connector_issue("schema.required", "subscriber_name")
    quality = CollectorRegistry()
    quality.register(QualityCollector({"telecom.subscriber": tally}))  # type: ignore[arg-type]
    # The control plane's overdue requests, counted at scrape time from its database.
    requests = Subscriptions(sqlalchemy.create_engine("sqlite://"), control=None)  # type: ignore[arg-type]
    quality.register(OverdueRequests(requests))
    # Its work queues and subscription requests by state, likewise.
    quality.register(SubscriptionRequests(requests))
    quality.register(OpenItems(quarantine=lambda: {}, review=lambda: {}))
    # Every process's own (process_*, python_info).
    process_metrics(quality)
    for family in quality.collect():
        for sample in family.samples:
            samples.add(sample.name)
            labels.update(sample.labels)
    return samples, labels


_GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
             "bool", "offset", "inf", "nan"}


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression (Grafana variables allowed) refers to."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\$\{?\w+\}?", "", e)
    labels: set[str] = set()
    for block in re.findall(r"\{([^}]*)\}", e):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", block))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    for block in re.findall(_GROUPING, e):
        labels.update(re.findall(r"[A-Za-z_]\w*", block))
    e = re.sub(_GROUPING, " ", e)
    e = re.sub(r"\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b", " ", e)
    names = {t for t in re.findall(r"\b([A-Za-z_]\w*)\b(?!\s*\()", e) if t.lower() not in _KEYWORDS}
    return names, labels


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def k8s(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    docs = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load_yaml(path)
            if isinstance(doc, dict) and doc.get("kind") == kind]
    return [d for d in docs if name is None or d["metadata"]["name"] == name]


def dashboard_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(dashboard_panels(panel.get("panels", [])))
    return out


def test_deploy_has_the_files_the_layout_promises() -> None:
    for path in ("compose/compose.yaml", "compose/Dockerfile", "k8s/kustomization.yaml",
                 "prometheus/alerts.yaml", "prometheus/prometheus.yml", "grafana/dashboards/gsp.json", "README.md"):
        assert (DEPLOY / path).is_file(), path


@pytest.mark.parametrize("path", PARSED_FILES, ids=[str(p.relative_to(DEPLOY)) for p in PARSED_FILES])
def test_every_yaml_and_json_file_under_deploy_parses(path: Path) -> None:
    if path.suffix == ".json":
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    else:
        docs = load_yaml(path)
        assert docs and all(isinstance(doc, dict) for doc in docs)


def test_promql_names_sees_a_renamed_metric_and_its_labels() -> None:
    names, labels = promql_names('sum by (dataset) (rate(gsp_stage_record_total{stage="clean", direction=~"in|out"}'
                                 '[$__rate_interval])) / on () group_left vector(1) > 0.5 and bool absent(x_total)')
    assert names == {"gsp_stage_record_total", "x_total"}
    assert labels == {"dataset", "stage", "direction"}
    samples, _ = defined_metrics()
    assert "gsp_stage_record_total" not in samples and "gsp_stage_records_total" in samples


def test_defined_metrics_are_the_ones_the_deploy_files_were_written_for() -> None:
    samples, labels = defined_metrics()
    assert {"gsp_stage_records_total", "gsp_consumer_lag_records", "gsp_connector_batch_seconds_bucket",
            "gsp_connector_batch_seconds_count", "gsp_connector_up"} <= samples
    assert {"stage", "dataset", "direction", "verdict", "agency", "topic", "connector", "outcome"} <= labels


def test_alert_rules_name_only_metrics_and_labels_the_code_defines() -> None:
    samples, labels = defined_metrics()
    (rules_file,) = load_yaml(DEPLOY / "prometheus" / "alerts.yaml")
    rules = [rule for group in rules_file["groups"] for rule in group["rules"]]
    assert len(rules) >= 5
    for rule in rules:
        names, used = promql_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= samples, (rule["alert"], names - samples)
        templated = {m for text in rule.get("annotations", {}).values() for m in re.findall(r"\$labels\.(\w+)", text)}
        assert used | templated <= labels | TARGET_LABELS, (rule["alert"], (used | templated) - labels)
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_alert_unit_tests_feed_only_metrics_the_code_defines() -> None:
    samples, labels = defined_metrics()
    (tests,) = load_yaml(DEPLOY / "prometheus" / "alerts_test.yaml")
    for case in tests["tests"]:
        for series in case["input_series"]:
            names, used = promql_names(series["series"])
            assert names <= samples, (case["name"], names)
            assert used <= labels | TARGET_LABELS, (case["name"], used)


def test_dashboard_names_only_metrics_and_labels_the_code_defines() -> None:
    samples, labels = defined_metrics()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gsp.json").read_text(encoding="utf-8"))
    targets = [t for panel in dashboard_panels(dashboard["panels"]) for t in panel.get("targets", [])]
    assert len(targets) >= 10
    seen: set[str] = set()
    for target in targets:
        names, used = promql_names(target["expr"])
        assert names, target["expr"]
        assert names <= samples, (target["expr"], names - samples)
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert used | legend <= labels | TARGET_LABELS, (target["expr"], (used | legend) - labels)
        seen |= names
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        for metric, label in re.findall(r"label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)", query):
            assert metric in samples and label in labels, variable["name"]
    # Every metric the code defines is on the dashboard somewhere.
    for sample in samples:
        family = re.sub(r"_(total|bucket|sum|count)$", "", sample)
        assert any(name.startswith(family) for name in seen), sample


def test_keda_scales_the_workers_on_their_group_within_the_partition_count() -> None:
    (env,) = k8s("ConfigMap", "gsp-env")
    (scaled,) = k8s("ScaledObject", "gsp-worker")
    spec = scaled["spec"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= int(env["data"]["GSP_PARTITIONS"])
    assert k8s("Deployment", spec["scaleTargetRef"]["name"])
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == env["data"]["GSP_APP_ID"] == "gsp-streams"
    assert meta["bootstrapServers"] == env["data"]["GSP_KAFKA_BOOTSTRAP"]
    assert int(meta["lagThreshold"]) > 0
    # The CRD types trigger metadata as a map of strings: an unquoted false or 10000 is rejected.
    assert all(isinstance(v, str) for v in meta.values()), meta


def test_env_names_only_variables_the_settings_read() -> None:
    known = {name for name, _ in Settings.documentation()}
    (env,) = k8s("ConfigMap", "gsp-env")
    assert set(env["data"]) <= known, set(env["data"]) - known
    assert "GSP_DATABASE_URL" not in env["data"]  # a secret: gsp-database
    (secret,) = load_yaml(DEPLOY / "k8s" / "secret.template.yaml")
    assert set(secret["stringData"]) == {"GSP_DATABASE_URL"}
    (compose,) = load_yaml(DEPLOY / "compose" / "compose.yaml")
    for name, service in compose["services"].items():
        gsp_env = {k for k in service.get("environment", {}) if k.startswith("GSP_")}
        assert gsp_env <= known, (name, gsp_env - known)


def test_topics_are_created_as_the_catalog_declares_them_before_anything_uses_them() -> None:
    script = (DEPLOY / "compose" / "create-topics.sh").read_text(encoding="utf-8")
    created = {m[0]: (m[1], m[2].strip()) for m in re.findall(r"^create (\S+) (\S+)(.*)$", script, re.M)}
    declared = platform_topics(partitions=7)
    assert set(created) == set(declared)
    for topic, (partitions, configs) in declared.items():
        assert created[topic][0] == ('"$PARTITIONS"' if partitions == 7 else str(partitions)), topic
        assert created[topic][1] == " ".join(f"--config {k}={v}" for k, v in configs.items()), topic

    (embedded,) = k8s("ConfigMap", "gsp-topics")
    assert embedded["data"]["create-topics.sh"] == script

    (compose,) = load_yaml(DEPLOY / "compose" / "compose.yaml")
    services = compose["services"]
    assert services["kafka-topics"]["environment"]["PARTITIONS"] == services["worker-1"]["environment"]["GSP_PARTITIONS"]
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for name in ("control-plane", "worker-1", "worker-2"):
        assert services[name]["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully", name


def test_deployed_servers_bind_an_address_their_probes_and_prometheus_reach() -> None:
    # Every server binds 127.0.0.1 by default; a pod or a container is probed and scraped from elsewhere.
    (env,) = k8s("ConfigMap", "gsp-env")
    assert env["data"]["GSP_API_HOST"] == env["data"]["GSP_OPS_HOST"] == "0.0.0.0"
    (compose,) = load_yaml(DEPLOY / "compose" / "compose.yaml")
    for name in ("control-plane", "worker-1", "worker-2"):
        environment = compose["services"][name]["environment"]
        assert environment["GSP_API_HOST"] == environment["GSP_OPS_HOST"] == "0.0.0.0", name
    assert (Settings().api_host, Settings().ops_host) == ("127.0.0.1", "127.0.0.1")


def test_deployments_probe_health_on_their_port() -> None:
    deployments = k8s("Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {"gsp-control-plane", "gsp-worker", "gsp-connect-worker"}
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"] for p in container["ports"]}
            for probe in ("livenessProbe", "readinessProbe"):
                get = container[probe]["httpGet"]
                assert get["path"] == "/health" and get["port"] in ports, (deployment["metadata"]["name"], probe)


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    assert shutil.which("promtool"), "promtool not found: install Debian package prometheus (make test does)"
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts_test.yaml"]):
        run = subprocess.run(["promtool", *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr


# --- connector workers, the example connectors and the rendered manifests -------------------------

CONNECTORS = sorted((DEPLOY / "connectors").glob("*.json"))
GSP_IMAGE = "gsp-platform"


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize deploy/k8s`: what `kubectl apply -k` would send (Debian's kubectl 1.20 renders it too)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not found: install Debian package kubernetes-client (make test does)"
    run = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return tuple(doc for doc in yaml.safe_load_all(run.stdout) if doc)


def rendered_one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in rendered() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def gsp_command(args: list[str], where: str) -> Any:
    """The CLI's own parser on a container's arguments: a renamed command or option fails here."""
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        raise AssertionError(f"{where}: `gsp {' '.join(args)}` is not a gsp command") from None
    assert callable(parsed.run), where
    return parsed


def python_script(command: list[str], where: str) -> None:
    """A `python -c` wait or seed script: it compiles and every `from X import Y` resolves."""
    assert command[:2] == ["python", "-c"] and len(command) == 3, where
    compile(command[2], where, "exec")
    for module, names in re.findall(r"^from (\S+) import (.+)$", command[2], re.M):
        imported = __import__(module, fromlist=["_"])
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(imported, name), (where, module, name)


def connector_files() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in CONNECTORS}


def compose_services() -> dict[str, dict[str, Any]]:
    (compose,) = load_yaml(DEPLOY / "compose" / "compose.yaml")
    return dict(compose["services"])


def test_kustomize_renders_the_connect_workers_their_scaler_and_the_create_connectors_job() -> None:
    docs = rendered()
    assert all(d["metadata"].get("namespace") == "gsp" for d in docs if d["kind"] != "Namespace")
    deployment = rendered_one("Deployment", "gsp-connect-worker")
    scaled = rendered_one("ScaledObject", "gsp-connect-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    job = rendered_one("Job", "gsp-create-connectors")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    # The Job creates every example connector, from the Secret kustomize generated out of deploy/connectors,
    # and replaces the config of one that exists (PUT /connectors/NAME/config), so it can run again.
    assert container["args"][:2] == ["connect", "create"]
    parsed = gsp_command(container["args"], "the create-connectors Job")
    assert parsed.update
    assert sorted(map(str, parsed.files)) == sorted(f"/etc/gsp/connectors/{name}" for name in connector_files())
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/gsp/connectors"]
    (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    secret = rendered_one("Secret", volume["secret"]["secretName"])  # the generated name, hash suffix included
    assert set(secret["data"]) == set(connector_files())
    env = {e["name"]: e for e in container["env"]}
    assert env["GSP_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "gsp-ops-token", "key": "GSP_TOKEN"}
    service = rendered_one("Service", "gsp-control-plane")
    assert env["GSP_API_URL"]["value"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_every_gsp_container_and_compose_service_runs_a_real_gsp_command() -> None:
    checked = []
    for doc in rendered():
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            if not container["image"].startswith(GSP_IMAGE):
                continue
            where = f"{doc['kind']} {doc['metadata']['name']}/{container['name']}"
            if container in pod["containers"]:
                assert "command" not in container, where  # the image's entrypoint is gsp
                gsp_command(container["args"], where)
            else:
                python_script(container["command"], where)
            checked.append(where)
    assert len(checked) >= 5, checked
    services = compose_services()
    for name, service in services.items():
        if not service.get("image", "").startswith(GSP_IMAGE):
            continue
        if "entrypoint" in service:
            python_script(service["entrypoint"] + service["command"], name)
        else:
            gsp_command(service["command"], name)
        checked.append(name)
    assert {"control-plane", "connect-worker-1", "connect-worker-2", "create-connectors"} <= set(checked)
    # Two connector workers, each its ops port on /health (the healthcheck) and /metrics (Prometheus).
    workers = [name for name, s in services.items() if s.get("command", [])[:2] == ["connect", "worker"]]
    assert len(workers) >= 2, workers


def test_compose_creates_every_example_connector_after_the_control_plane() -> None:
    service = compose_services()["create-connectors"]
    assert service["command"][:2] == ["connect", "create"]
    parsed = gsp_command(service["command"], "create-connectors")
    assert parsed.update
    assert sorted(map(str, parsed.files)) == sorted(f"/etc/gsp/connectors/{name}" for name in connector_files())
    assert "../connectors:/etc/gsp/connectors:ro" in service["volumes"]
    assert service["depends_on"]["control-plane"]["condition"] == "service_healthy"
    assert service["restart"] == "on-failure"


def test_every_long_running_process_is_scraped_and_probed() -> None:
    (prometheus,) = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    long_running = {name: s for name, s in compose_services().items()
                    if s.get("image", "").startswith(GSP_IMAGE) and "healthcheck" in s}
    assert {"control-plane", "worker-1", "worker-2", "connect-worker-1", "connect-worker-2"} <= set(long_running)
    for name, service in long_running.items():
        (port,) = re.findall(r"127\.0\.0\.1:(\d+)/health", " ".join(service["healthcheck"]["test"]))
        assert f"{name}:{port}" in targets, name
        parsed = gsp_command(service["command"], name)
        if getattr(parsed, "port", None) is not None:
            assert str(parsed.port) == port, name
    for doc in rendered():
        if doc["kind"] != "Deployment":
            continue
        template = doc["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        (container,) = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        where = doc["metadata"]["name"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics", where
        assert int(annotations["prometheus.io/port"]) in ports.values(), where
        assert container["livenessProbe"]["httpGet"]["path"] == container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], where
        parsed = gsp_command(container["args"], where)
        if getattr(parsed, "port", None) is not None:
            assert int(annotations["prometheus.io/port"]) == parsed.port, where


def test_keda_scales_the_connect_workers_on_a_series_the_code_defines() -> None:
    (scaled,) = k8s("ScaledObject", "gsp-connect-worker")
    spec = scaled["spec"]
    slots = platform_topics(partitions=7)[topics.CONNECT_SLOTS][0]
    # Task k runs on the holder of slot k % 64: a worker past the slot count would hold nothing.
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= slots
    samples, labels = defined_metrics()
    # The connect workers' own series (gsp_connect_worker_*) besides the connectors'.
    worker_registry = CollectorRegistry()
    worker = WorkerMetrics.create(worker_registry)
    samples |= {m.name + ("_total" if m.type == "counter" else "") for m in worker_registry.collect()}
    labels |= {name for f in fields(worker) for name in getattr(worker, f.name)._labelnames}
    assert spec["triggers"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "prometheus"
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), meta
        assert float(meta["threshold"]) > 0 and meta["serverAddress"].startswith("http")
        names, used = promql_names(meta["query"])
        assert names and names <= samples, names - samples
        assert used <= labels | TARGET_LABELS, used - labels


def test_example_connectors_cover_every_seed_source_and_pass_their_plugins_validation() -> None:
    from connectors.plugins import plugin_for

    files = connector_files()
    kinds: dict[str, list[dict[str, Any]]] = {}
    for file_name, body in files.items():
        assert set(body) == {"name", "config"} and body["name"] == file_name.removesuffix(".json"), file_name
        plugin = plugin_for(body["config"])
        errors = plugin.config_def.validate(body["config"] | {"name": body["name"]})
        assert {key: e for key, e in errors.items() if e} == {}, file_name
        kinds.setdefault(plugin.name, []).append(body["config"])
    assert {"sql-sink", "webhook-sink"} <= set(kinds)
    # One connector per source table of the seed, publishing as the table's own source system.
    for table in generate_seed(200).tables:
        intake = INTAKE[table.name]
        candidates = {"sql": kinds.get("sql-source", []), "outbox": kinds.get("outbox-source", []),
                      "file": kinds.get("file-source", [])}[intake]
        found = [c for c in candidates if c["dataset"] == table.dataset and c.get("source_system") == table.source_system
                 and (table.name in _as_list(c.get("tables", c.get("table"))) if intake == "sql" else
                      c.get("aggregate_type") == table.dataset if intake == "outbox" else
                      str(c.get("directory", "")).endswith("/" + table.name))]
        assert len(found) == 1, (table.name, intake)


def _as_list(value: Any) -> list[str]:
    return [] if value is None else value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]


def test_example_connectors_reach_what_they_name_in_compose_and_kubernetes() -> None:
    services = compose_services()
    aliases = set(services["postgres"]["networks"]["default"]["aliases"])
    external = {d["metadata"]["name"] for d in rendered() if d["kind"] == "Service" and d["spec"].get("type") == "ExternalName"}
    worker = rendered_one("Deployment", "gsp-connect-worker")["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    k8s_mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    compose_worker = services["connect-worker-1"]
    compose_mounts = {v.split(":")[1] for v in compose_worker["volumes"]}
    for name, body in connector_files().items():
        config = body["config"]
        if "database_url" in config:
            host = urlsplit(config["database_url"]).hostname
            assert host in aliases and host in external, (name, host)
        if "directory" in config:
            assert any(config["directory"].startswith(m + "/") for m in compose_mounts), name
            assert any(config["directory"].startswith(m + "/") for m in k8s_mounts), name
        if "secret_file" in config:
            secret = config["secret_file"].removeprefix("/run/secrets/")
            assert secret in compose_worker["secrets"], name
            assert k8s_mounts["/run/secrets"] == "webhook-secrets", name
            (template,) = load_yaml(DEPLOY / "k8s" / "webhook-secret.template.yaml")
            assert secret in template["stringData"], name


def test_the_create_connectors_command_creates_every_example_and_can_run_again(
        services: ControlServices, tmp_path: Path) -> None:
    command = compose_services()["create-connectors"]["command"]
    (job,) = [c for c in rendered_one("Job", "gsp-create-connectors")["spec"]["template"]["spec"]["containers"]]
    assert job["args"] == command  # the same command in compose and Kubernetes
    # The files where the container mounts them are deploy/connectors here.
    args = [str(DEPLOY / "connectors" / Path(a).name) if a.startswith("/etc/gsp/connectors/") else a for a in command]
    token = Cast.register(services.control.identities).token(Role.OPS)
    env = {"GSP_API_URL": services.api.url, "GSP_HOME": str(tmp_path / "job"), "GSP_TOKEN": token}
    store = services.connect.store
    before = set(store.connectors())
    try:
        for attempt in ("first run", "again, every connector existing"):
            result = gsp(*args, env=env, timeout=120)
            assert result.returncode == 0 and result.stderr == "", (attempt, result.stderr)
            assert len(result.stdout.splitlines()) == len(CONNECTORS), (attempt, result.stdout)
            for body in connector_files().values():
                assert store.config(body["name"]) == {**body["config"], "name": body["name"]}, (attempt, body["name"])
    finally:
        for name in set(store.connectors()) - before:
            store.delete(name)
