"""What every connector and sink process shares: its JSON config, the platform's endpoints, its ops server,
SIGTERM, and progress lines printed only while records move."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from gsp.errors import UserError
from gsp.http.ops import OpsServer
from schemas.settings import Settings

__all__ = ["Progress", "endpoints", "process_metrics", "read_config", "read_json_object", "start_ops", "stop_on_sigterm"]


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or a one-line error saying why not."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} must hold a JSON object")
    return config


def read_config(path: Path, *, required: set[str], optional: set[str]) -> dict[str, Any]:
    """The JSON object in ``path``; every unknown and every missing key in one error."""
    config = read_json_object(path)
    unknown = sorted(set(config) - required - optional)
    missing = sorted(required - set(config))
    if unknown or missing:
        raise UserError(f"{path}: " + "; ".join(filter(None, [
            f"unknown keys {', '.join(unknown)}" if unknown else "", f"missing keys {', '.join(missing)}" if missing else ""])))
    return config


def endpoints(settings: Settings, *, what: str) -> tuple[str, str]:
    """Kafka's bootstrap servers and the registry's URL: from the settings, else from a running `gsp serve`."""
    runtime_file = settings.home / "runtime.json"
    runtime = json.loads(runtime_file.read_text()) if runtime_file.exists() else {}
    bootstrap = settings.kafka_bootstrap or runtime.get("bootstrap")
    registry = settings.schema_registry_url or runtime.get("api_url")
    if not bootstrap or not registry:
        raise UserError(f"a {what} needs a running platform: set GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, "
                        "or start `gsp serve` with the same GSP_HOME")
    return bootstrap, registry


def process_metrics(registry: CollectorRegistry) -> CollectorRegistry:
    """``registry`` with the process's own metrics (process_cpu_seconds_total, process_resident_memory_bytes,
    process_open_fds, python_info...), as prometheus_client's default registry has them; once per registry."""
    if registry not in _WITH_PROCESS_METRICS:  # they declare no names, so the registry would take them twice
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        _WITH_PROCESS_METRICS.add(registry)
    return registry


_WITH_PROCESS_METRICS: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def start_ops(settings: Settings, metrics: CollectorRegistry, health: Callable[[], dict[str, Any]], *,
              port: int, title: str) -> OpsServer:
    """/metrics (with the process metrics) and /health of a connector or sink process, on ``port``."""
    process_metrics(metrics)
    ops = OpsServer(metrics, health, host=settings.ops_host, port=port, title=title)
    ops.start()
    return ops


def stop_on_sigterm() -> threading.Event:
    """Set when SIGTERM arrives, so the loop finishes its batch and closes its clients."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


class Progress:
    """One stderr line every 2 s while counts move, and the totals once they stop: an idle process stays quiet."""

    def __init__(self, name: str, *, every_s: float = 2.0) -> None:
        self._name = name
        self._every_s = every_s
        self._shown: tuple[int, ...] = ()
        self._last = time.monotonic()

    def show(self, counts: dict[str, int], *, idle: bool, idle_note: str = "", force: bool = False) -> None:
        """``idle``: nothing moved in the last step; ``force``: print the totals then even if unchanged."""
        values = tuple(counts.values())
        settled = idle and (values != self._shown or force)
        if not settled and (values == self._shown or time.monotonic() - self._last < self._every_s):
            return
        self._shown, self._last = values, time.monotonic()
        text = ", ".join(f"{key} {value}" for key, value in counts.items())
        print(f"gsp: {self._name}: {text}" + (f"; {idle_note}" if idle and idle_note else ""), file=sys.stderr, flush=True)
