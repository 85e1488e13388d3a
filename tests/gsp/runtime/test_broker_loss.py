"""`gsp serve` losing its embedded broker (kill -9): health says so while it lasts, the broker comes back on
the same port, and the control plane publishes again what the workers need, so the subscription reaches
the restarted worker and any fresh reader of gsp.subscriptions."""

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from schemas import topics
from tests.gsp.runtime.test_serve import OWNER, enrol, gsp, served, wait_for_worker, worker_pid
from tests.topics import read_topic

SUBSCRIPTION = "bo-y-te-so-y-te:telecom.subscriber"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent_of(int(entry.name)) == pid:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, IndexError, ValueError):
            continue
    return found


def control_health(api_url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:  # a not-ok health may answer 503 with the same body
        return dict(json.load(exc))


def test_a_killed_embedded_broker_is_restarted_and_the_subscription_reaches_the_workers_again(tmp_path: Path) -> None:
    with served(tmp_path) as (env, runtime):
        owner = {**env, "GSP_TOKEN": enrol(env, OWNER, "Cục Viễn thông", "owner:telecom.subscriber")}
        consumer = {**env, "GSP_TOKEN": enrol(env, "VN/GOV/bo-y-te/so-y-te", "Sở Y tế", "consumer")}
        requested = gsp("subscription", "request", "--dataset", "telecom.subscriber", "--purpose", "Đối soát",
                        "--legal-basis", "Luật Căn cước 2023", "--fields", "msisdn,personal_id", env=consumer)
        assert requested.returncode == 0, requested.stderr
        assert gsp("subscription", "approve", SUBSCRIPTION, env=owner).returncode == 0
        wait_for_worker(runtime, lambda h: h.get("subscriptions") == 1)
        assert control_health(runtime["api_url"])["status"] == "ok"
        old_worker = worker_pid(runtime["workers"][0])

        assert old_worker is not None
        [broker] = [pid for pid, command in children(parent_of(old_worker)) if "--listener-url" in command]
        os.kill(broker, signal.SIGKILL)

        seen_down: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            health = control_health(runtime["api_url"])
            if health["kafka"]["up"] is False and not seen_down:
                seen_down = health
            if seen_down and health["status"] == "ok":
                break
            time.sleep(0.1)
        assert seen_down["status"] != "ok" and seen_down["kafka"]["error"], seen_down
        assert health["status"] == "ok" and health["kafka"] == {**health["kafka"], "up": True, "restarts": 1}, health

        wait_for_worker(runtime, lambda h: h.get("pid") not in (None, old_worker) and h.get("subscriptions") == 1)
        events = read_topic(runtime["bootstrap"], topics.SUBSCRIPTIONS, until=lambda ms: len(ms) >= 1)
        assert [m.key.decode() for m in events] == [SUBSCRIPTION]
        assert events[0].value  # the event, not a tombstone
    log = (tmp_path / "serve.log").read_text()
    assert log.count("kafka broker lost") == 1, log[-3000:]
