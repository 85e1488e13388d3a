"""`gsp serve` as a user runs it, and `gsp subscription create` against it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gsp.runtime import free_port


def gsp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gsp", *args], capture_output=True, text=True, timeout=60, env=env)


def test_subscription_created_with_the_cli_reaches_the_worker(tmp_path: Path) -> None:
    env = {**os.environ, "GSP_HOME": str(tmp_path), "GSP_API_PORT": str(free_port())}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the server's structured logs
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("gsp: control plane"), line
        runtime = json.loads((tmp_path / "runtime.json").read_text())
        created = gsp("subscription", "create", "--agency", "so-y-te", "--dataset", "telecom.subscriber",
                      "--fields", "msisdn,personal_id", "--where", "carrier=Viettel", env=env)
        assert created.returncode == 0, created.stderr
        assert "so-y-te:telecom.subscriber v1 -> topic share.so-y-te.subscriber.v1" in created.stdout
        refused = gsp("subscription", "create", "--agency", "so-y-te", "--dataset", "telecom.subscriber",
                      "--fields", "msisdn,cccd", env=env)
        assert refused.returncode == 2 and "unknown field 'cccd'" in refused.stderr and "Traceback" not in refused.stderr
        listed = gsp("subscription", "list", env=env)
        assert listed.stdout.startswith("so-y-te:telecom.subscriber\tv1\tshare.so-y-te.subscriber.v1")

        health = {}
        for _ in range(150):
            try:
                with urllib.request.urlopen(runtime["workers"][0] + "/health", timeout=1) as response:
                    health = json.load(response)
            except OSError:
                pass
            if health.get("subscriptions") == 1:
                break
            time.sleep(0.2)
        assert health.get("subscriptions") == 1
        with urllib.request.urlopen(runtime["workers"][0] + "/metrics", timeout=5) as response:
            assert b"gsp_subscriptions 1.0" in response.read()
        with urllib.request.urlopen(runtime["api_url"] + "/subjects", timeout=5) as response:
            assert "share.so-y-te.subscriber.v1-value" in json.load(response)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()
    assert not (tmp_path / "runtime.json").exists()
