"""Shared fixtures: one embedded broker for the whole session (a real Kafka-protocol broker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gsp.runtime import running_broker
from schemas.settings import Settings


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(home=tmp_path_factory.mktemp("broker"))
    with running_broker(settings) as servers:
        yield servers
