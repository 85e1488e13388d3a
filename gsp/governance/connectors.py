"""The connectors' configs and target states in the control plane's database, so they outlive the broker.

    records = ConnectorRecords(engine)
    records.save("subscribers", config, target_state="PAUSED")   # the REST API: the database first, then the topic
    records.republish(store)     # a new, empty embedded broker: every connector on gsp.connect.configs again
    records.reconcile(store)     # a start: the topic brought level with the database

The workers read only ``gsp.connect.configs`` (`connectors.cluster.ClusterStore`); the embedded broker keeps
it in memory, so without this table a restarted broker would hold no connector and every worker would stop
its tasks. A write of the REST API lands here before the topic, so what the API acknowledged is stored even
if the broker then failed; the next start or rebuild publishes it.

Configs are stored as the API took them, secrets included (a PASSWORD setting such as a ``database_url``
with its password), as ``gsp.connect.configs`` holds them: whoever reads this database or that topic reads
them. A deleted connector keeps its row with no config, so a start does not take it back from a topic whose
tombstone never arrived; it finishes the deletion instead.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.cluster import TARGET_STATES, ClusterStore
from gsp.desks.base import upsert

__all__ = ["ConnectorRecords", "StoredConnector"]

log = logging.getLogger("gsp.connect")

_STARTED = "STARTED"
_metadata = sa.MetaData()
_connectors = sa.Table(
    "connect_connectors", _metadata,
    sa.Column("name", sa.String(240), primary_key=True),
    sa.Column("config", sa.Text),                                  # JSON as given; NULL: deleted
    sa.Column("target_state", sa.String(16), nullable=False),      # STARTED, PAUSED or STOPPED
    sa.Column("updated_at", sa.BigInteger, nullable=False),        # ms since the epoch
)


@dataclass(frozen=True)
class StoredConnector:
    name: str
    config: dict[str, Any]
    target_state: str


class ConnectorRecords:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine)

    # -- the REST API's writes ----------------------------------------------------------------------------------

    def save(self, name: str, config: dict[str, Any], *, target_state: str | None = None) -> None:
        """A connector created or its config replaced; ``target_state`` None keeps a live connector's and
        starts a new (or deleted) one."""
        if target_state is not None:
            _check(target_state)
        row = {"name": name, "config": json.dumps(config, sort_keys=True), "updated_at": _now_ms()}
        # A live connector keeps its target state unless one is given; a deleted one starts again.
        kept = sa.case((_connectors.c.config.is_(None), _STARTED), else_=_connectors.c.target_state)
        with self._engine.begin() as conn:
            insert = upsert(conn, _connectors).values(**row, target_state=target_state or _STARTED)
            conn.execute(insert.on_conflict_do_update(index_elements=[_connectors.c.name], set_={
                "config": insert.excluded.config, "updated_at": insert.excluded.updated_at,
                "target_state": insert.excluded.target_state if target_state is not None else kept}))

    def set_target_state(self, name: str, state: str) -> None:
        _check(state)
        with self._engine.begin() as conn:
            conn.execute(sa.update(_connectors).where(_connectors.c.name == name, _connectors.c.config.is_not(None))
                         .values(target_state=state, updated_at=_now_ms()))

    def delete(self, name: str) -> None:
        """Forgotten, config (and its secrets) included; the row stays to say it was deleted."""
        with self._engine.begin() as conn:
            insert = upsert(conn, _connectors).values(name=name, config=None, target_state=_STARTED,
                                                      updated_at=_now_ms())
            conn.execute(insert.on_conflict_do_update(index_elements=[_connectors.c.name], set_={
                key: insert.excluded[key] for key in ("config", "target_state", "updated_at")}))

    # -- reads -----------------------------------------------------------------------------------------------------

    def stored(self) -> list[StoredConnector]:
        """The live connectors, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_connectors).where(_connectors.c.config.is_not(None))
                                .order_by(_connectors.c.name)).all()
        return [StoredConnector(row.name, json.loads(row.config), row.target_state) for row in rows]

    def deleted(self) -> set[str]:
        with self._engine.connect() as conn:
            return set(conn.scalars(sa.select(_connectors.c.name).where(_connectors.c.config.is_(None))))

    # -- onto the broker ---------------------------------------------------------------------------------------

    def republish(self, store: ClusterStore) -> int:
        """Every live connector on the cluster's topics again, whatever ``store`` remembers (a restarted
        embedded broker is empty while the store's memory is of the old one); how many. Target states
        first, as the API creates a paused one: no worker runs a paused or stopped connector for a moment."""
        connectors = self.stored()
        for connector in connectors:
            store.set_target_state(connector.name, connector.target_state)
        for connector in connectors:
            store.put_config(connector.name, connector.config)
        return len(connectors)

    def reconcile(self, store: ClusterStore) -> dict[str, int]:
        """On a start, the topic made to say what the database says: what it lacks or holds stale is published,
        a deletion whose tombstones never arrived finished; a connector only the topic knows (made before
        this table existed) is taken into the database. The counts of each."""
        counts = {"published": 0, "deleted": 0, "adopted": 0}
        connectors = self.stored()
        known = {c.name for c in connectors}
        for connector in connectors:
            stale = False
            if store.target_state(connector.name) != connector.target_state:
                store.set_target_state(connector.name, connector.target_state)
                stale = True
            if store.config(connector.name) != connector.config:
                store.put_config(connector.name, connector.config)
                stale = True
            counts["published"] += stale
        deleted = self.deleted()
        for name in store.connectors():
            if name in deleted:
                store.delete(name)
                counts["deleted"] += 1
            elif name not in known and (config := store.config(name)) is not None:
                self.save(name, config, target_state=store.target_state(name))
                counts["adopted"] += 1
        return counts


def _check(state: str) -> None:
    if state not in TARGET_STATES:
        raise ValueError(f"target state must be one of {', '.join(TARGET_STATES)}, not {state!r}")


def _now_ms() -> int:
    return int(time.time() * 1000)
