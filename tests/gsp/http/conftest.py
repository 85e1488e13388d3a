"""What the HTTP tests share: a real control plane on the session's broker and a SQLite database, and the full
control-plane application (with both stewards' desks and the connector cluster's API) built on it and served on a free loopback port."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.cluster import ClusterStore
from gsp.desks.quarantine import AuditLog, QuarantineDesk
from gsp.desks.review import ReviewDesk
from gsp.governance.control import ControlPlane
from gsp.governance.ledger import Ledger
from gsp.governance.lineage import Lineage, header_reader
from gsp.http.app import ApiServer, build_app
from gsp.http.connect import ConnectCluster, ConnectOffsets
from schemas.codec import Codec
from tests.credentials import Cast


@pytest.fixture
def app(control: ControlPlane, bootstrap: str, tmp_path: Path) -> Iterator[web.Application]:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    codec = Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)
    audit = AuditLog(producer, codec, register=control.register)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'desks.db'}")
    desks = {"producer": producer, "codec": codec, "schema_id_of": control.schema_id, "audit": audit}
    lineage = Lineage(Ledger(engine, b"k" * 32), read_header=header_reader(bootstrap, codec))
    cluster = ClusterStore(bootstrap, producer_config={}, consumer_config={})
    cluster.start()
    yield build_app(control, CollectorRegistry(), desk=QuarantineDesk(engine, **desks), review=ReviewDesk(engine, **desks),
                    lineage=lineage, connect=ConnectCluster(cluster, ConnectOffsets(bootstrap, producer_config={})))
    cluster.close()
    producer.close()
    engine.dispose()


@pytest.fixture
def url(app: web.Application) -> Iterator[str]:
    server = ApiServer(app)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def people(control: ControlPlane) -> Cast:
    """One credential per role on the control plane (see tests/credentials.py)."""
    return Cast.register(control.identities)
