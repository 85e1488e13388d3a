"""The dataset catalog over HTTP, mounted by the control-plane API: what a consumer may request, and from whom.

    GET /api/catalog                 every declared dataset: name, doc, owner, role, shareable, sensitivity
                                     (offered fields per class), quality scores, subscribing agencies
    GET /api/catalog/{dataset}       one dataset's entry, with each offered field's type, description and class

Built from the declarations (`gsp.governance.listing`) with the live facts read per request:
the latest quality snapshot of each dataset and the current subscriptions. 404 for an unknown dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gsp.errors import NotFound
from gsp.governance.catalog import DATASETS
from gsp.governance.control import ControlPlane
from gsp.governance.listing import CatalogEntry, entry, subscriber_counts
from gsp.http.routes import Call, Route, in_thread

__all__ = ["catalog_routes"]

Scores = Callable[[], Mapping[str, Mapping[str, float | None]]]


def catalog_routes(control: ControlPlane, *, scores: Scores) -> list[Route]:
    """``scores``: dataset -> its latest quality scores (`gsp.desks.quality.latest_scores` on the database)."""

    def entries(*names: str) -> list[CatalogEntry]:
        """The entries of ``names`` (none: every dataset), with the live facts as they are now."""
        for name in names:
            if name not in DATASETS:
                raise NotFound(f"no dataset {name!r} in the catalog; known: {', '.join(DATASETS)}")
        latest, counts = scores(), subscriber_counts(control.published_subscriptions())
        return [entry(DATASETS[name], scores=latest.get(name), subscribers=counts.get(name, 0))
                for name in names or DATASETS]

    async def list_(call: Call) -> list[dict[str, Any]]:
        return [e.summary() for e in await in_thread(entries)]

    async def show(call: Call) -> dict[str, Any]:
        [found] = await in_thread(entries, call.path["dataset"])
        return found.as_json()

    return [
        Route("GET", "/api/catalog", list_, summary="Every declared dataset, with its quality and subscribers",
              tag="catalog", responds="per dataset: name, doc, owner, role, shareable, sensitivity (offered fields "
                                      "per class), scores (correct, complete, clean, live), subscribers"),
        Route("GET", "/api/catalog/{dataset}", show, summary="One dataset's catalog entry", tag="catalog",
              responds="the entry: owner, source system, key, freshness, scores, subscribers and the offered "
                       "fields with type, description and sensitivity"),
    ]
