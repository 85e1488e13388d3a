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
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.webhook_sink import WebhookMetrics
from gsp.governance.catalog import platform_topics
from gsp.governance.subscriptions import OverdueRequests, Subscriptions
from gsp.http.feed import FeedMetrics
from schemas.datasets import dataset
from schemas.settings import Settings
from streams.metrics import QualityCollector, StageMetrics
from streams.quality import QualityTally

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PARSED_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


def defined_metrics() -> tuple[set[str], set[str]]:
    """(sample names, label names) of every metric the code defines."""
    registry = CollectorRegistry()
    bundles = (StageMetrics.create(registry), ConnectorMetrics.create(registry), FeedMetrics.create(registry),
               WebhookMetrics.create(registry))
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
    (scaled,) = k8s("ScaledObject")
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
    assert {d["metadata"]["name"] for d in deployments} == {"gsp-control-plane", "gsp-worker"}
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
