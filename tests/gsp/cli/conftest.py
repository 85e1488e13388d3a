"""A real control plane for CLI tests: its services on the session's embedded broker and a SQLite database.

``services.api.url`` is what a user sets as GSP_API_URL; on start the services write the first admin
credential to ``services.admin_token_file`` (GSP_HOME/admin.token, here the test's tmp_path), which the
CLI reads when GSP_TOKEN is unset and GSP_HOME is that directory.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from gsp.runtime.services import ControlServices
from schemas.settings import Settings


@pytest.fixture
def services(bootstrap: str, sqlite_engine: sa.Engine, tmp_path: Path) -> Iterator[ControlServices]:
    running = ControlServices(Settings(home=tmp_path), bootstrap=bootstrap, engine=sqlite_engine,
                              metrics=CollectorRegistry())
    running.start()
    try:
        yield running
    finally:
        running.stop()
