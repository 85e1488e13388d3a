"""The whole platform end to end on the embedded broker: exact counts in the agency's table and the quarantine topic."""

import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from gsp.runtime.embedded import running_broker
from gsp.tools.demo import DemoOptions, run_demo
from gsp.tools.synth.seed import generate_seed
from schemas.codec import Codec, contract, schema_id_of
from schemas.settings import Settings
from tests.topics import read_topic

RECORDS = 400


def quarantine_rules(bootstrap: str, topic: str) -> Counter[str]:
    codec, rules, seen = Codec(), Counter[str](), set()
    for message in read_topic(bootstrap, topic):
        if not codec.knows(schema_id_of(message.value)):
            codec.add(schema_id_of(message.value), contract("vn.gsp.quality.QualityIssue"))
        issue = codec.decode(message.value)[1]
        assert issue["reason"] and issue["original"]
        if issue["header"]["event_id"] not in seen:
            seen.add(issue["header"]["event_id"])
            rules[issue["rule"]] += 1
    return rules


def test_demo_counts_agree_with_the_generators_truth(tmp_path: Path) -> None:
    # A broker of its own: topics and groups of other tests must not mix with the demo's counts.
    with running_broker(Settings(home=tmp_path)) as bootstrap:
        check_demo(bootstrap, tmp_path)


def check_demo(bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap=bootstrap, home=tmp_path, app_id=f"gsp-demo-{uuid.uuid4().hex[:6]}")
    out, err = io.StringIO(), io.StringIO()
    code = run_demo(settings, DemoOptions(records=RECORDS, json=True, workdir=tmp_path / "demo", duration_s=240),
                    out=out, err=err)
    summary = json.loads(out.getvalue())
    truth = generate_seed(RECORDS, seed=7).truth
    assert code == 0, summary["differences"]
    assert set(summary["published"]) == set(truth.published) >= {
        "population.citizen", "population.event", "telecom.subscriber", "electricity.customer", "insurance.participant"}
    for dataset, published in summary["published"].items():
        assert published == truth.published[dataset] == summary["cleaned"][dataset] + sum(summary["quarantined"][dataset].values())
        assert summary["quarantined"][dataset] == truth.quarantined.get(dataset, {})
        assert quarantine_rules(bootstrap, f"quarantine.{dataset}.v1") == Counter(truth.quarantined.get(dataset, {}))
    for dataset, verdicts in summary["match"].items():
        assert verdicts == truth.match[dataset]
        assert sum(verdicts.values()) == summary["cleaned"][dataset]
    # Every channel, every subscriber: what the agency holds at its end is what the truth says it is owed.
    channels = Counter(s["channel"] for s in summary["subscriptions"])
    assert set(channels) == {"sql", "webhook", "pull", "kafka"}
    for sub in summary["subscriptions"]:
        expected = truth.delivered(sub["dataset"], sub["row_filter"], None)
        assert sub["delivered"] == expected == summary["delivered"][sub["subscription_id"]], sub
    assert sum(s["delivered"] for s in summary["subscriptions"] if s["channel"] != "sql") > 0
    assert summary["prefill"] and summary["prefill"]["customer_code"]

    expected = truth.delivered("telecom.subscriber", {"carrier": ["Viettel", "VinaPhone"]}, None)
    with sqlite3.connect(summary["agency_database"]) as db:
        rows = db.execute(f"SELECT * FROM {summary['agency_table']}").fetchall()
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({summary['agency_table']})")]
    assert len(rows) == expected == summary["delivered"]["bo-cong-an-c06:telecom.subscriber"] > 0
    assert {"event_id", "source_key", "msisdn", "carrier", "personal_id", "subscriber_name", "verdict",
            "person_key"} <= set(columns)
    assert not {"birth_date", "id_number", "address"} & set(columns)  # not approved
    # The personal id and the key (msisdn) are approved: the agency's person key is the personal id, its
    # source key the carrier's own key (as the source gave it); its event ids are its own (keyed hashes, prefixed with the secret's version).
    assert all(r[columns.index("person_key")] == r[columns.index("personal_id")] for r in rows)
    assert not any(r[columns.index("source_key")].startswith("k1.") for r in rows)  # the source's own key
    assert all(r[columns.index("event_id")].startswith("k1.") for r in rows)
    assert {r[columns.index("verdict")] for r in rows} == {"MATCHED"}
    assert {r[columns.index("carrier")] for r in rows} == {"Viettel", "VinaPhone"}
    assert "published" in err.getvalue()  # the progress line

    # The scorecards: four dimension scores per dataset, in the summary and in `gsp quality report --json`.
    report = subprocess.run([sys.executable, "-m", "gsp", "quality", "report", "--json"], capture_output=True, text=True,
                            env={**os.environ, "GSP_HOME": str(tmp_path)}, timeout=60)
    assert report.returncode == 0, report.stderr
    scorecards = json.loads(report.stdout)
    for dataset, published in summary["published"].items():
        assert set(scorecards[dataset]["scores"]) == {"correct", "complete", "clean", "live"}
        assert all(0.0 <= v <= 1.0 for v in scorecards[dataset]["scores"].values())
        assert scorecards[dataset]["records"] == published
        assert scorecards[dataset]["scores"] == summary["quality"][dataset]
        # Every quarantined record is on the stewards' desk, open (the demo resolves none).
        assert scorecards[dataset]["quarantine"] == {"open": sum(summary["quarantined"][dataset].values())}
