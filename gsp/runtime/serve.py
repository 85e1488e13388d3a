"""Long-running processes started by the CLI: the whole platform (`gsp serve`) and a stream worker."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from gsp.errors import UserError
from gsp.runtime.embedded import Broker, unreachable, wait_for_kafka
from schemas.datasets import DatasetError, catalog
from schemas.registry import RegistryUnavailable
from schemas.settings import Settings
from streams.contracts import ContractError, contract_of
from streams.linkage import ModelError
from streams.matching import load_linker

if TYPE_CHECKING:
    from gsp.runtime.services import ControlServices
    from gsp.runtime.supervisor import WorkerProcess

__all__ = ["run_platform", "run_worker"]

log = logging.getLogger("gsp.serve")
_PROBE_EVERY_S = 3.0   # a metadata request to the broker this often; the embedded broker's process every second
_BACKOFF_MAX_S = 30.0


def run_worker(settings: Settings) -> int:
    """A Faust worker of the stream app; metrics and health on GSP_WORKER_WEB_PORT."""
    if settings.kafka_bootstrap is None or settings.schema_registry_url is None:
        raise UserError("a worker needs GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL (gsp demo sets them)")
    wait_for_kafka(settings.kafka_bootstrap, timeout_s=10)
    from faust.worker import Worker

    from gsp.http.ops import OpsServer
    from gsp.runtime.process import process_metrics
    from streams.app import create_app

    try:
        app = create_app(settings, bootstrap=settings.kafka_bootstrap, registry_url=settings.schema_registry_url)
    except (RegistryUnavailable, ModelError) as exc:
        raise UserError(str(exc)) from None
    # The worker's operations endpoints are on the platform's one HTTP stack, not Faust's web server.
    ops = OpsServer(process_metrics(app.metrics), app.health, host=settings.ops_host,
                    port=settings.worker_web_port, title="GSP stream worker")
    ops.start()
    worker = Worker(app.faust, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner, at GSP_LOG_LEVEL warning or above, sets the root logger to DEBUG: every debug
    # call of aiokafka and Faust is then formatted and dropped, 11.5% of the registry agent's CPU (py-spy).
    worker.spinner = None
    try:
        worker.execute_from_commandline()  # exits the process when the worker stops
    finally:
        ops.stop()
    return 0


def check_linkage_model(settings: Settings) -> None:
    """Refuse a bad GSP_LINKAGE_MODEL in one line before any process starts, not in every worker."""
    try:
        load_linker(settings)
    except ModelError as exc:
        raise UserError(str(exc)) from None


def check_datasets(settings: Settings) -> None:
    """Refuse a bad declaration (shipped or in GSP_DATASETS_DIR), cleaning contract included, in one line
    before any process starts, rather than a worker crashing on it after every restart."""
    try:
        for dataset in catalog(settings.datasets_dir).values():
            contract_of(dataset)
    except (DatasetError, ContractError) as exc:
        raise UserError(str(exc)) from None


def run_platform(settings: Settings, *, workers: int = 1) -> int:
    """`gsp serve`: broker (embedded unless configured), control-plane API and stream workers until Ctrl-C."""
    import json
    import signal
    import threading

    from prometheus_client import CollectorRegistry

    from gsp.http.tls import server_context
    from gsp.runtime.database import control_engine
    from gsp.runtime.embedded import cluster
    from gsp.runtime.process import process_metrics
    from gsp.runtime.services import ControlServices
    from gsp.runtime.supervisor import WorkerProcess

    settings.home.mkdir(parents=True, exist_ok=True)
    engine = control_engine(settings.resolved_database_url)
    check_linkage_model(settings)
    check_datasets(settings)
    tls = server_context(settings)  # a bad certificate or key is refused before the broker starts
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with cluster(settings) as (bootstrap, broker):
        services = ControlServices(settings, bootstrap=bootstrap, engine=engine,
                                   metrics=process_metrics(CollectorRegistry()),
                                   host=settings.api_host, port=settings.api_port, ssl_context=tls)
        services.start()
        runtime = settings.home / "runtime.json"
        pool = [WorkerProcess(settings, bootstrap=bootstrap, registry_url=services.registry_url, home=settings.home,
                              token=services.worker_token)
                for _ in range(workers)]
        try:
            for worker in pool:
                worker.start()
            runtime.write_text(json.dumps({"api_url": services.api.url, "bootstrap": bootstrap,
                                           "workers": [f"http://127.0.0.1:{w.port}" for w in pool]}))
            if services.admin_token_file is not None:
                print(f"gsp: created the first admin credential in {services.admin_token_file} (mode 0600, shown "
                      "nowhere else). gsp commands run here use it; elsewhere: export GSP_TOKEN=$(cat "
                      f"{services.admin_token_file})", flush=True)
            print(f"gsp: control plane {services.api.url}  kafka {bootstrap}  workers "
                  + " ".join(f"http://127.0.0.1:{w.port}/health" for w in pool), flush=True)
            probed = time.monotonic()
            while not stop.wait(1.0):
                if (broker is not None and not broker.alive) or time.monotonic() - probed >= _PROBE_EVERY_S:
                    probed = time.monotonic()
                    lost = _lost(bootstrap, broker)
                    if lost is not None:
                        _recover(bootstrap, broker, services, pool, stop, lost)
                for worker in pool:
                    code = worker.restart_if_dead()
                    if code is not None:
                        log.error("stream worker exited; restarted" + (" after a back-off" if worker.backoff_s else ""),
                                  extra={"exit_code": code, "restarts": worker.restarts, "in_s": worker.backoff_s,
                                         "log": str(worker.log_path)})
        except KeyboardInterrupt:
            pass
        finally:
            runtime.unlink(missing_ok=True)
            for worker in pool:
                worker.stop()
            services.stop()
    return 0


def _lost(bootstrap: str, broker: Broker | None) -> str | None:
    """Why the broker is lost (the embedded one's process exited, or no answer to metadata), or None."""
    if broker is not None and not broker.alive:
        return "the embedded broker process exited"
    return unreachable(bootstrap, timeout_s=3.0)


def _recover(bootstrap: str, broker: Broker | None, services: ControlServices, pool: list[WorkerProcess],
             stop: threading.Event, reason: str) -> None:
    """Until the broker answers again (or the platform stops), with /health not ok and one log line per
    back-off step. The embedded broker is restarted on its port, empty: the control plane publishes its
    state again and the workers start over (their offsets, tables and replicas were in the old broker).
    A configured cluster is only waited for: it keeps its topics, and every client reconnects by itself."""
    services.broker_lost(reason)
    delay = 1.0
    while not stop.is_set():
        log.error("kafka broker lost; %s", "restarting the embedded broker" if broker else "waiting for it",
                  extra={"bootstrap": bootstrap, "reason": reason[:300], "next_try_in_s": delay})
        try:
            if broker is not None:
                for worker in pool:  # before the new broker exists: nothing of the old one may reach it
                    worker.kill()
                broker.restart()
                services.rebuild()
                for worker in pool:
                    worker.restart()
                services.broker_back(restarted=True)
                log.warning("kafka broker restarted and state rebuilt", extra={"bootstrap": bootstrap})
                return
            still = unreachable(bootstrap, timeout_s=3.0)
            if still is None:
                services.broker_back(restarted=False)
                log.warning("kafka broker reachable again", extra={"bootstrap": bootstrap})
                return
            reason = still
        except Exception as exc:  # the new broker failed too, or died while the state was republished
            reason = f"{type(exc).__name__}: {exc}"
        stop.wait(delay)
        delay = min(_BACKOFF_MAX_S, delay * 2)
