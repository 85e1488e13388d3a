"""A dataset declared in GSP_DATASETS_DIR runs through a real `gsp serve`: topics, contracts, clean, share.

No Python is written for the dataset: the declaration is the whole of it. The record reaches the
agency's share topic with only the approved fields; the one whose phone cannot be a phone is
quarantined with its reason.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaProducer

from gsp.runtime.embedded import free_port
from schemas.codec import Codec
from schemas.envelope import header
from schemas.registry import RegistryClient
from tests.gsp.runtime.test_serve import gsp
from tests.schemas.test_datasets import CLINIC, declare
from tests.topics import read_topic

AGENCY = "so-y-te-ha-noi"


def test_a_declared_dataset_is_cleaned_and_shared_by_a_running_platform(tmp_path: Path) -> None:
    declare(tmp_path / "datasets", CLINIC)
    env = {**os.environ, "GSP_HOME": str(tmp_path / "home"), "GSP_API_PORT": str(free_port()),
           "GSP_DATASETS_DIR": str(tmp_path / "datasets"), "GSP_LINKAGE_MODEL": "off"}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log,
                              text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("gsp: control plane"), (line, (tmp_path / "serve.log").read_text()[-2000:])
        runtime = json.loads((tmp_path / "home" / "runtime.json").read_text())
        created = gsp("subscription", "create", "--agency", AGENCY, "--dataset", "health.clinic",
                      "--fields", "licence_no,name", "--where", "specialty=cardiology", env=env)
        assert created.returncode == 0, created.stderr
        assert f"topic share.{AGENCY}.clinic.v1" in created.stdout
        registry = RegistryClient(runtime["api_url"])
        schema_id, _, _ = registry.latest("raw.health.clinic.v1-value")
        codec = Codec(resolve=registry.schema_by_id)
        rows = [("GP-1", "  trần   thị mai ", "+84912345678", "cardiology"),   # fixed, shared
                ("GP-2", "Lê Văn Hùng", "0912 345 679", "dermatology"),         # cleaned, filtered out
                ("GP-3", "Phạm Thu Hà", "12345", "cardiology")]                 # not a phone: quarantined
        producer = KafkaProducer(bootstrap_servers=runtime["bootstrap"])
        for licence, name, phone, specialty in rows:
            value = codec.encode(schema_id, {"header": header("health.clinics", licence, "1", int(time.time() * 1000)),
                                             "licence_no": licence, "name": name, "phone": phone,
                                             "specialty": specialty})
            producer.send("raw.health.clinic.v1", key=licence.encode(), value=value)
        producer.flush()
        producer.close()

        shared = read_topic(runtime["bootstrap"], f"share.{AGENCY}.clinic.v1", until=lambda ms: len(ms) >= 1,
                            timeout_s=60)
        assert len(shared) == 1, (tmp_path / "serve.log").read_text()[-3000:]
        record = codec.decode(shared[0].value)[1]
        assert {k: v for k, v in record.items() if k != "header"} == {"licence_no": "GP-1", "name": "Trần Thị Mai"}
        assert b"0912345678" not in shared[0].value and b"cardiology" not in shared[0].value
        [issue] = [codec.decode(m.value)[1] for m in read_topic(
            runtime["bootstrap"], "quarantine.health.clinic.v1", until=lambda ms: len(ms) >= 1, timeout_s=30)]
        assert (issue["rule"], issue["field"], issue["header"]["source_key"]) == ("phone.invalid", "phone", "GP-3")
        time.sleep(1.0)  # nothing else arrives: GP-2 was held back by the row filter
        assert len(read_topic(runtime["bootstrap"], f"share.{AGENCY}.clinic.v1")) == 1
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()
