"""The audit ledger over HTTP: who received a person's data, a record's lineage, the ledger's check.

    POST /api/audit/person          {"personal_id": "..."} -> the agencies that received that person's
                                    records (which fields, when, under which subscription, purpose and
                                    legal basis) and the verifications asked about them. POST, so the
                                    id is never in a URL or an access log.
    GET  /api/audit/verify          every chain and head checked (gsp audit verify, from the API)
    GET  /api/audit/entries         the newest entries (?kind=&limit=)
    GET  /api/lineage/{event_id}    a delivered record's way (the agency's or the platform's event id)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from pydantic import Field

from gsp.errors import NotFound, UserError
from gsp.governance.ledger import Ledger
from gsp.http.routes import Body, Call, Query, Route, in_thread

__all__ = ["audit_routes", "who_saw"]

_PERSONAL_ID = re.compile(r"^(\d{12}|\d{9})$")


class PersonQuery(Body):
    personal_id: str = Field(description="12-digit personal id (CCCD), or a 9-digit CMND")


def who_saw(ledger: Ledger, personal_id: str) -> dict[str, Any]:
    """The ledger's entries about one person, grouped by agency, subscription version, fields and channel."""
    if not _PERSONAL_ID.fullmatch(personal_id or ""):
        raise UserError("personal_id must be a 12-digit personal id or a 9-digit CMND")
    deliveries: dict[tuple[Any, ...], dict[str, Any]] = {}
    verifications: dict[tuple[Any, ...], dict[str, Any]] = {}
    consents: list[dict[str, Any]] = []
    for entry in ledger.person(personal_id):
        if entry["kind"].startswith("consent."):
            consents.append({"subscription_id": entry["subscription_id"], "at": entry["at"],
                             "given": entry["kind"] == "consent.give", "recorded_by": entry["actor"]})
            continue
        if entry["kind"] not in ("delivery", "verification"):
            continue
        group = verifications if entry["kind"] == "verification" else deliveries
        key = (entry["agency"], entry["subscription_id"], entry["version"], tuple(entry["fields"] or ()),
               entry["channel"])
        seen = group.get(key)
        if seen is None:
            seen = group[key] = {**{k: entry[k] for k in ("agency", "subscription_id", "version", "dataset", "fields",
                                                          "purpose", "legal_basis", "channel")},
                                 "first_at": entry["at"], "last_at": entry["at"], "records": 0}
            if entry["kind"] == "verification":
                seen["verdicts"] = []
        seen["first_at"] = min(seen["first_at"], entry["at"])
        seen["last_at"] = max(seen["last_at"], entry["at"])
        seen["records"] += entry["records"]
        if "verdicts" in seen:
            seen["verdicts"] = sorted(set(seen["verdicts"]) | set(entry.get("verdicts", [])))
    return {"deliveries": sorted(deliveries.values(), key=lambda d: -d["last_at"]),
            "verifications": sorted(verifications.values(), key=lambda d: -d["last_at"]),
            "consents": consents}


def audit_routes(ledger: Ledger, lineage: Callable[[str], list[dict[str, Any]]]) -> list[Route]:
    async def person(call: Call) -> dict[str, Any]:
        return await in_thread(who_saw, ledger, call.body.personal_id)

    async def verify(call: Call) -> dict[str, Any]:
        report = await in_thread(ledger.verify)
        return {"ok": report.ok, "chains": report.chains, "heads": report.heads,
                "findings": [dataclasses.asdict(f) for f in report.findings], "warnings": report.warnings}

    async def entries(call: Call) -> list[dict[str, Any]]:
        try:
            limit = min(int(call.query["limit"] or 100), 1000)
        except ValueError:
            raise UserError("limit must be a number") from None
        return await in_thread(ledger.entries, kind=call.query["kind"] or None, limit=limit)

    async def way(call: Call) -> dict[str, Any]:
        event_id = call.path["event_id"]
        deliveries = await in_thread(lineage, event_id)
        if not deliveries:
            raise NotFound(f"the audit ledger records no delivery of event {event_id!r}")
        return {"event_id": event_id, "deliveries": deliveries}

    tag = "audit"
    return [
        Route("POST", "/api/audit/person", person, summary="Who received a person's data, and who asked about them",
              tag=tag, body=PersonQuery, responds="{deliveries: [...], verifications: [...]}"),
        Route("GET", "/api/audit/verify", verify, summary="Check every chain and head of the audit ledger", tag=tag,
              responds="{ok, chains, heads, findings}"),
        Route("GET", "/api/audit/entries", entries, summary="The newest entries of the audit ledger", tag=tag,
              responds="[entry]", query=(Query("kind", "only entries of this kind"),
                                         Query("limit", "at most this many (1000)"))),
        Route("GET", "/api/lineage/{event_id}", way, summary="A delivered record's way through the platform", tag=tag,
              responds="{event_id, deliveries: [{agency, subscription_id, positions, source, ...}]}"),
    ]
