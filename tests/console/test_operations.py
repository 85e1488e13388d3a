"""The operations page in Chromium: ops sees the connectors with their tasks and the workers, pauses and resumes a
connector from the page and watches its state change; a consumer's credential neither sees the page nor reads its
API. The demo runs no `gsp connect worker`: this test starts one against the demo's broker and creates a small
sql-sink connector (a demo share topic into a SQLite file) through Kafka Connect's API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import KafkaConsumer
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, expect_console_error, screenshot, sign_in

WORKER_ID = f"console-ops-{uuid.uuid4().hex[:6]}"


def _call(console: Console, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(console.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text else None


def _until(what: str, check: Callable[[], Any], *, timeout_s: float = 60.0, logs: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f}s: {what}\n{logs()}"
        time.sleep(0.5)


@dataclass(frozen=True)
class Connected:
    name: str
    topic: str
    worker_id: str


@pytest.fixture(scope="module")
def connected(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connected]:
    """A `gsp connect worker` on the demo's broker running a sql-sink of one of the demo's share topics."""
    root = tmp_path_factory.mktemp("ops-worker")
    bootstrap = console.summary["console"]["kafka"]
    ops = console.credentials["ops"]
    (root / "home").mkdir()
    # The worker finds the broker and the registry (the control plane) as it would beside `gsp serve`.
    (root / "home" / "runtime.json").write_text(json.dumps({"bootstrap": bootstrap, "api_url": console.base}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSP_")}
    env.update(GSP_HOME=str(root / "home"), GSP_TOKEN=ops, GSP_SESSION_TIMEOUT_S="6", PYTHONUNBUFFERED="1")
    log_path = root / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "gsp", "connect", "worker", "--worker-id", WORKER_ID],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def logs() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        shares = sorted(t for t in consumer.topics() if t.startswith("share."))
    finally:
        consumer.close()
    assert shares, "the demo shared nothing"
    name = f"ops-sink-{uuid.uuid4().hex[:6]}"
    config = {"connector.class": "sql-sink", "topic": shares[0], "database_url": f"sqlite:///{root / 'sink.db'}",
              "tasks.max": "1"}
    try:
        status, body = _call(console, "POST", "/connectors", ops, {"name": name, "config": config})
        assert status == 201, body

        def running() -> bool:
            found = _call(console, "GET", f"/connectors/{name}/status", ops)[1]
            assert worker.poll() is None, f"the worker exited with {worker.returncode}:\n{logs()}"
            return found["connector"]["state"] == "RUNNING" and [t["state"] for t in found["tasks"]] == ["RUNNING"]

        _until("the sink's task runs on the worker", running, logs=logs)
        yield Connected(name=name, topic=shares[0], worker_id=WORKER_ID)
    finally:
        _call(console, "DELETE", f"/connectors/{name}", ops)
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def _state(page: Page, name: str) -> Any:
    return page.locator(f'tr.ops-connector[data-id="{name}"] .ops-state .pill')


def test_ops_sees_connectors_and_workers_and_pauses_and_resumes_a_connector(
        browser_page: Page, console: Console, connected: Connected) -> None:
    page, name = browser_page, connected.name
    ops = console.credentials["ops"]
    # The worker measured the sink's throughput and wrote it in its status record; the broker counts its lag.
    _until("the sink's throughput reported", lambda: next(
        (c for c in _call(console, "GET", "/api/ops/connectors", ops)[1]["connectors"]
         if c["name"] == name and c["throughput"] and c["throughput"]["records"] > 0), None), timeout_s=30)
    sign_in(page, "ops")
    page.click("#nav-operations")
    expect(_state(page, name)).to_have_text("RUNNING")
    task = page.locator(f'tr.ops-task[data-id="{name}-0"]')
    expect(task).to_contain_text(connected.worker_id)
    expect(task).to_contain_text(re.compile(r"/giây"))  # its throughput (Vietnamese by default)
    expect(page.locator(f'tr.ops-connector[data-id="{name}"]')).to_contain_text("chậm")  # a sink's lag, counted
    expect(page.locator(f'#operations-connect-workers tr[data-id="{connected.worker_id}"]')).to_contain_text("trong nhóm")
    expect(page.locator("#operations-stream-members tbody tr").first).to_be_visible()  # the demo's stream worker

    page.click(f'button[data-action="pause"][data-id="{name}"]')
    expect(_state(page, name)).to_have_text("PAUSED", timeout=30_000)  # the worker's report, on the next refresh
    expect(page.locator(f'tr.ops-task[data-id="{name}-0"] .pill')).to_have_text("PAUSED", timeout=30_000)
    assert _call(console, "GET", f"/connectors/{name}/status", ops)[1]["connector"]["state"] == "PAUSED"
    page.click(f'button[data-action="resume"][data-id="{name}"]')
    expect(_state(page, name)).to_have_text("RUNNING", timeout=30_000)
    expect(page.locator("#operations-error")).to_have_text("")
    page.select_option("#lang", "en")
    expect(page.locator("#page-operations h1")).to_have_text("Operations")
    screenshot(page, "operations")


def test_an_api_error_of_an_action_is_shown_on_the_page(browser_page: Page, console: Console,
                                                        connected: Connected) -> None:
    """A connector deleted behind the page's back: its pause is refused with Kafka Connect's message."""
    page = browser_page
    ops = console.credentials["ops"]
    gone = f"ops-gone-{uuid.uuid4().hex[:6]}"
    status, body = _call(console, "POST", "/connectors", ops, {"name": gone, "initial_state": "STOPPED", "config": {
        "connector.class": "sql-sink", "topic": connected.topic, "database_url": "sqlite:///unused.db"}})
    assert status == 201, body
    page.clock.install()  # no refresh meanwhile: the row stays on the page after its connector is deleted
    try:
        sign_in(page, "ops", path="/operations")
        expect(page.locator(f'tr.ops-connector[data-id="{gone}"]')).to_be_visible()
    finally:
        assert _call(console, "DELETE", f"/connectors/{gone}", ops)[0] == 204
    expect_console_error(page, r"status of 404")
    page.click(f'button[data-action="resume"][data-id="{gone}"]')
    expect(page.locator("#operations-error")).to_have_text(f"{gone}: Connector {gone} not found")


def test_a_consumer_neither_sees_the_page_nor_reads_its_api(browser_page: Page, console: Console) -> None:
    consumer = console.credentials["consumer"]
    for path in ("/api/ops/connectors", "/api/ops/workers"):
        status, body = _call(console, "GET", path, consumer)
        assert status == 403 and "needs the role admin, ops" in body["error"], (path, status, body)
    page = browser_page
    sign_in(page, "consumer", path="/operations")  # straight to it, as a bookmark would
    expect(page.locator("#forbidden")).to_be_visible()
    expect(page.locator("#nav a").first).to_be_visible()
    expect(page.locator("#nav-operations")).to_have_count(0)
    expect(page.locator("#page-operations")).to_have_count(0)
