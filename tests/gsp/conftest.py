"""What the control-plane tests share: a real control plane on the session's broker and a SQLite database."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gsp.governance.control import ControlPlane


@pytest.fixture
def control(bootstrap: str, tmp_path: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}"), bootstrap=bootstrap, partitions=4)
    plane.start()
    yield plane
    plane.close()
