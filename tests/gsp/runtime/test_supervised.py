"""Supervised background loops: a loop that raises is restarted with back-off and shows in health and metrics;
a second control plane on the same broker does not kill the first one's loops."""

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from gsp.runtime.services import ControlServices
from gsp.runtime.supervised import Backoff, Supervisor
from schemas.settings import Settings

FAST = Backoff(first_s=0.01, max_s=0.05, healthy_s=60.0)


def wait_for(condition: Callable[[], bool], *, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_loop_that_raises_twice_is_restarted_twice_and_shows_in_health_and_metrics() -> None:
    registry = CollectorRegistry()
    supervisor = Supervisor(registry, backoff=FAST)
    runs: list[int] = []
    working = threading.Event()

    def flaky(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise ConnectionError(f"database gone (run {len(runs)})")
        working.set()
        stop.wait()

    supervisor.start("flaky", flaky)
    try:
        assert working.wait(10)
        health = supervisor.health()
        assert health["up"] is True
        assert health["loops"]["flaky"]["restarts"] == 2
        assert health["loops"]["flaky"]["last_error"] == "ConnectionError: database gone (run 2)"
        assert registry.get_sample_value("gsp_background_restarts_total", {"loop": "flaky"}) == 2
        assert registry.get_sample_value("gsp_background_up", {"loop": "flaky"}) == 1
    finally:
        supervisor.stop()
    assert registry.get_sample_value("gsp_background_up", {"loop": "flaky"}) == 0
    assert len(runs) == 3


def test_a_loop_waiting_to_be_restarted_is_down_in_health_and_metrics_from_the_start() -> None:
    registry = CollectorRegistry()
    supervisor = Supervisor(registry, backoff=Backoff(first_s=30.0, max_s=30.0))
    failed = threading.Event()

    def broken(stop: threading.Event) -> None:
        failed.set()
        raise RuntimeError("broker unreachable")

    def steady(stop: threading.Event) -> None:
        stop.wait()

    supervisor.start("steady", steady)
    supervisor.start("broken", broken)
    try:
        assert failed.wait(10)
        wait_for(lambda: supervisor.health()["loops"]["broken"]["up"] is False)
        health = supervisor.health()
        assert health["up"] is False and health["loops"]["steady"]["up"] is True
        assert registry.get_sample_value("gsp_background_up", {"loop": "broken"}) == 0
        assert registry.get_sample_value("gsp_background_restarts_total", {"loop": "broken"}) == 0  # waiting, 30 s
        assert registry.get_sample_value("gsp_background_restarts_total", {"loop": "steady"}) == 0
    finally:
        supervisor.stop(timeout_s=5)


def control_health(services: ControlServices) -> dict[str, Any]:
    with urllib.request.urlopen(services.api.url + "/health", timeout=5) as response:
        return dict(json.load(response))


def test_a_second_control_plane_on_the_same_broker_leaves_both_recorders_up(bootstrap: str, tmp_path: Path) -> None:
    """Both recorders share the group gsp-control-quality: the second one joining rebalances it while the first
    commits every 200 ms. A commit refused mid-rebalance once killed the recorder; now it is skipped."""
    loops = ("quality-recorder", "quarantine-indexer", "review-indexer", "ledger-writer")
    first = ControlServices(Settings(home=tmp_path / "a"), bootstrap=bootstrap,
                            engine=sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}"), metrics=CollectorRegistry())
    first.start()
    second: ControlServices | None = None
    try:
        wait_for(lambda: control_health(first)["background"]["up"] is True)
        time.sleep(8)  # the first recorder joined its group and commits: the second one's join rebalances it
        second = ControlServices(Settings(home=tmp_path / "b"), bootstrap=bootstrap,
                                 engine=sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}"), metrics=CollectorRegistry())
        second.start()
        time.sleep(10)  # the join, its rebalance and many commits on both sides
        for services in (first, second):
            health = control_health(services)
            assert health["status"] == "ok", health
            for loop in loops:
                assert health["background"]["loops"][loop]["up"] is True, (loop, health)
                assert health["background"]["loops"][loop]["restarts"] == 0, (loop, health)
        assert "gsp_background_up{loop=\"quality-recorder\"} 1.0" in metrics_text(first)
    finally:
        if second is not None:
            second.stop()
        first.stop()


def metrics_text(services: ControlServices) -> str:
    with urllib.request.urlopen(services.api.url + "/metrics", timeout=5) as response:
        return str(response.read().decode())
