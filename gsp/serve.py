"""Long-running processes started by the CLI: the stream worker."""

from __future__ import annotations

from gsp.errors import UserError
from gsp.runtime import wait_for_kafka
from schemas.registry import RegistryUnavailable
from schemas.settings import Settings

__all__ = ["run_worker"]


def run_worker(settings: Settings) -> int:
    """A Faust worker of the stream app; metrics and health on GSP_WORKER_WEB_PORT."""
    if settings.kafka_bootstrap is None or settings.schema_registry_url is None:
        raise UserError("a worker needs GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL (gsp demo sets them)")
    wait_for_kafka(settings.kafka_bootstrap, timeout_s=10)
    from faust.worker import Worker

    from streams.app import create_app

    try:
        app = create_app(settings, bootstrap=settings.kafka_bootstrap, registry_url=settings.schema_registry_url)
    except RegistryUnavailable as exc:
        raise UserError(str(exc)) from None
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
