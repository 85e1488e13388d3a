"""The control plane's HTTP API: schema registry, subscriptions, the catalog, the stewards' desks, /metrics, /health and
/openapi.json, as one aiohttp application built from each area's route declarations.

Served by :class:`ApiServer` on its own thread and event loop, so CLI commands
and the demo can keep their blocking code; database calls run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gsp.console import console_routes
from gsp.desks.quality import latest_scores
from gsp.governance.control import ControlPlane
from gsp.http.access import Access
from gsp.http.audit import audit_routes
from gsp.http.catalog import catalog_routes
from gsp.http.connect import ConnectCluster, connect_routes
from gsp.http.consent import consent_routes
from gsp.http.feed import Feed, feed_routes
from gsp.http.identity import identity_routes
from gsp.http.metrics import HttpMetrics, instrument
from gsp.http.ops import ops_routes
from gsp.http.ops_api import ops_api_routes
from gsp.http.quality import quality_routes
from gsp.http.quarantine import quarantine_routes
from gsp.http.registry import registry_routes
from gsp.http.review import review_routes
from gsp.http.routes import Route
from gsp.http.server import ApiServer, application
from gsp.http.subscriptions import subscription_routes
from gsp.http.verify import verification_routes
from schemas.settings import Settings

if TYPE_CHECKING:
    from gsp.desks.quarantine import QuarantineDesk
    from gsp.desks.review import ReviewDesk
    from gsp.governance.consent import Consents
    from gsp.governance.lineage import Lineage
    from gsp.governance.verification import VerificationGateway

__all__ = ["ApiServer", "build_app", "control_routes"]


def control_routes(control: ControlPlane, metrics: CollectorRegistry, *, desk: QuarantineDesk | None = None,
                   review: ReviewDesk | None = None, lineage: Lineage | None = None,
                   verification: VerificationGateway | None = None, consents: Consents | None = None,
                   checks: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
                   feed: Feed | None = None, connect: ConnectCluster | None = None) -> list[Route]:
    """Every route of the control plane; a desk's routes (and Kafka Connect's API) only when the desk (the connector
    cluster) is given. Verification and the record feed are always routed; without their gateway or feed they
    answer 503."""
    return [
        *console_routes(),
        *registry_routes(control.registry),
        *identity_routes(control.identities),
        *subscription_routes(control.subscriptions),
        *feed_routes(control.subscriptions, feed),
        *catalog_routes(control, scores=lambda: latest_scores(control.engine)),
        *quality_routes(control.engine, quarantine=desk, review=review),
        *(quarantine_routes(desk) if desk is not None else []),
        *(review_routes(review) if review is not None else []),
        *(audit_routes(lineage.ledger, lineage.of) if lineage is not None else []),
        *(consent_routes(consents) if consents is not None else []),
        *(connect_routes(connect) if connect is not None else []),
        *(ops_api_routes(connect, bootstrap=connect.offsets.bootstrap, app_id=Settings.from_env().app_id)
          if connect is not None else []),
        *verification_routes(control, verification, lineage.ledger if lineage is not None else None),
        *ops_routes(metrics, lambda: _health(verification, checks or {})),
    ]


def _health(verification: VerificationGateway | None, checks: Mapping[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
    """ok, or degraded while verification replies cannot be received (see gsp.governance.verification) or a
    background loop in ``checks`` says it is not up (the audit ledger's writer)."""
    out: dict[str, Any] = {"status": "ok"}
    if verification is not None:
        found = out["verification"] = verification.health()
        if found["replies"] == "down":
            out["status"] = "degraded"
    for name, check in checks.items():
        found = out[name] = check()
        if found.get("up") is False:
            out["status"] = "degraded"
    return out


def build_app(control: ControlPlane, metrics: CollectorRegistry, *, desk: QuarantineDesk | None = None,
              review: ReviewDesk | None = None, lineage: Lineage | None = None,
              verification: VerificationGateway | None = None, consents: Consents | None = None,
              checks: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
              public_metrics: bool = True, feed: Feed | None = None,
              connect: ConnectCluster | None = None) -> web.Application:
    """The control plane's application: every route behind the authorisation matrix, checked with its credentials."""
    return instrument(application(control_routes(control, metrics, desk=desk, review=review, lineage=lineage,
                                                 verification=verification, consents=consents, checks=checks,
                                                 feed=feed, connect=connect),
                                  title="GSP control plane",
                                  access=Access(store=control.identities, public_metrics=public_metrics)),
                      HttpMetrics.create(metrics))
