"""Agencies, credentials and the caller's own identity over HTTP, mounted by the control-plane API.

    GET  /api/whoami                           the caller: agency, key id, roles and datasets
    GET  /api/agencies                         every registered agency
    POST /api/agencies                         {"agency": "VN/GOV/bo-y-te/bhxh", "name": "...", "contacts": [...]}
    GET  /api/credentials[?agency=]            every credential, never a secret
    POST /api/credentials                      {"agency", "grants": [{"role", "datasets"?}], "label"?, "expires_at"?}
                                               -> the token, shown this once
    POST /api/credentials/{key_id}/revoke      at once: the next request with it is a 401
    POST /api/credentials/{key_id}/expire      {"at"?: ISO 8601} default now
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from gsp.errors import UserError
from gsp.governance.identity import Grant, IdentityStore
from gsp.http.routes import Body, Call, Query, Route, in_thread

__all__ = ["identity_routes"]


class Contact(Body):
    name: str
    email: str | None = None
    phone: str | None = None


class AgencyRegistration(Body):
    agency: str = Field(description="X-Road style subsystem id: <instance>/<class>/<member>/<subsystem>")
    name: str = Field(description="display name, in Vietnamese with diacritics")
    contacts: list[Contact] = Field(default_factory=list)


class GrantBody(Body):
    role: str = Field(description="admin, owner, steward, ops, consumer or portal")
    datasets: list[str] = Field(default_factory=list, description="owner and steward: the datasets covered")


class CredentialRequest(Body):
    agency: str
    grants: list[GrantBody] = Field(min_length=1)
    label: str = Field(default="", description="what the credential is for")
    expires_at: str | None = Field(default=None, description="ISO 8601 with a zone; default: never")


class Expiry(Body):
    at: str | None = Field(default=None, description="ISO 8601 with a zone; default: now")


def _ms(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not an ISO 8601 time such as 2027-01-01T00:00:00+07:00") from None
    if moment.tzinfo is None:
        raise UserError(f"{text!r} needs a time zone, such as +07:00")
    return int(moment.timestamp() * 1000)


def identity_routes(store: IdentityStore) -> list[Route]:
    async def whoami(call: Call) -> dict[str, Any]:
        me = call.identity
        return {"agency": me.agency, "key_id": me.key_id, "roles": sorted(me.roles),
                "grants": [g.as_json() for g in me.grants]}

    async def agencies(call: Call) -> list[dict[str, Any]]:
        return await in_thread(store.agencies)

    async def register(call: Call) -> dict[str, Any]:
        body: AgencyRegistration = call.body
        return await in_thread(store.register_agency, body.agency, name=body.name,
                               contacts=[c.model_dump(exclude_none=True) for c in body.contacts], by=call.identity.who)

    async def credentials(call: Call) -> list[dict[str, Any]]:
        return await in_thread(store.credentials, call.query["agency"] or None)

    async def issue(call: Call) -> dict[str, Any]:
        body: CredentialRequest = call.body
        grants = [Grant.of(g.model_dump()) for g in body.grants]
        issued = await in_thread(store.issue, body.agency, grants=grants, label=body.label,
                                 created_by=call.identity.who, expires_at=_ms(body.expires_at))
        return {**await in_thread(store.credential, issued.key_id), "token": issued.token}

    async def revoke(call: Call) -> dict[str, Any]:
        return await in_thread(store.revoke, call.path["key_id"], by=call.identity.who)

    async def expire(call: Call) -> dict[str, Any]:
        return await in_thread(store.expire, call.path["key_id"], _ms(call.body.at), by=call.identity.who)

    tag = "identity"
    return [
        Route("GET", "/api/whoami", whoami, summary="The caller's agency, key and roles", tag=tag,
              responds="{agency, key_id, roles, grants}"),
        Route("GET", "/api/agencies", agencies, summary="Registered agencies", tag=tag,
              responds="[{agency, slug, name, contacts}]"),
        Route("POST", "/api/agencies", register, summary="Register an agency (or update its name and contacts)",
              tag=tag, body=AgencyRegistration, status=201, responds="the agency"),
        Route("GET", "/api/credentials", credentials, summary="Credentials, without secrets", tag=tag,
              responds="[{key_id, agency, label, grants, state, ...}]",
              query=(Query("agency", "only this agency's"),)),
        Route("POST", "/api/credentials", issue, summary="Issue a credential: its token is shown this once",
              tag=tag, body=CredentialRequest, status=201, responds="the credential with its token"),
        Route("POST", "/api/credentials/{key_id}/revoke", revoke, summary="Revoke a credential at once", tag=tag,
              responds="the credential"),
        Route("POST", "/api/credentials/{key_id}/expire", expire, summary="Make a credential expire", tag=tag,
              body=Expiry, responds="the credential"),
    ]
