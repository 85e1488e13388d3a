"""Who may call what: the authorisation matrix, as data, and the check every route makes before anything else.

``MATRIX`` maps each route (method, path template) to the roles allowed to call it, or to
``PUBLIC`` (no credential: /health), ``METRICS`` (public unless GSP_PUBLIC_METRICS=false, then
ops and admin) or ``SIGNED_IN`` (any valid credential). `gsp.http.server.application` refuses to
build a server holding a route the matrix does not list, so a new route cannot ship without its
entry; tests/gsp/http/test_access.py walks every route of the OpenAPI document against every role.

The matrix decides by role; whether a role covers the dataset at hand (an owner of
telecom.subscriber deciding a population.citizen request, a steward of one dataset reading
another's quarantine) is checked by the action itself with `Identity.require`, also 403.

A credential comes as ``Authorization: Bearer <token>`` or as HTTP Basic, as Confluent's
registry clients send it: the password is the token, or the user is the key id and the
password the token's secret (``basic.auth.user.info=<key id>:<secret>``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aiohttp import web

from gsp.governance.identity import Forbidden, Identity, IdentityStore, Role, Unauthenticated

if TYPE_CHECKING:
    from gsp.http.routes import Route

__all__ = ["ACCESS", "MATRIX", "METRICS", "PUBLIC", "SIGNED_IN", "Access", "Allowed", "token_of"]

PUBLIC: Final = "public"
METRICS: Final = "metrics"
SIGNED_IN: Final = "signed-in"
Allowed = frozenset[Role] | str

ADMIN, OWNER, STEWARD, OPS, CONSUMER, PORTAL = Role
# Reading schemas: everyone who handles records (a consumer decodes its topic with them); not the portal.
_SCHEMA_READERS = frozenset({ADMIN, OWNER, STEWARD, OPS, CONSUMER})
_SCHEMA_WRITERS = frozenset({ADMIN})
_STEWARDS = frozenset({STEWARD})
_OPERATORS = frozenset({ADMIN, OPS})

MATRIX: Mapping[tuple[str, str], Allowed] = {
    # operations
    ("GET", "/health"): PUBLIC,
    # The console's page and scripts hold no data: it signs in and calls the routes below with the user's token.
    ("GET", "/console"): PUBLIC,
    ("GET", "/console/{asset}"): PUBLIC,
    ("GET", "/console/pages/{page}"): PUBLIC,
    ("GET", "/metrics"): METRICS,
    ("GET", "/openapi.json"): SIGNED_IN,
    ("GET", "/api/whoami"): SIGNED_IN,
    # agencies and credentials
    ("GET", "/api/agencies"): frozenset({ADMIN, OPS}),
    ("POST", "/api/agencies"): frozenset({ADMIN}),
    ("POST", "/api/agencies/{slug}/rotate-key"): frozenset({ADMIN}),
    ("GET", "/api/credentials"): frozenset({ADMIN}),
    ("POST", "/api/credentials"): frozenset({ADMIN}),
    ("POST", "/api/credentials/{key_id}/revoke"): frozenset({ADMIN}),
    ("POST", "/api/credentials/{key_id}/expire"): frozenset({ADMIN}),
    # catalog: what may be asked for, by whom it is decided
    ("GET", "/api/catalog"): frozenset({ADMIN, OWNER, STEWARD, OPS, CONSUMER}),
    ("GET", "/api/catalog/{dataset}"): frozenset({ADMIN, OWNER, STEWARD, OPS, CONSUMER}),
    # quality scorecards: aggregates, no record (the console's overview and dataset pages)
    ("GET", "/api/quality"): frozenset({ADMIN, OWNER, STEWARD, OPS}),
    ("GET", "/api/quality/{dataset}"): frozenset({ADMIN, OWNER, STEWARD, OPS}),
    # subscriptions: a consumer asks, the dataset's owner decides (scope checked per dataset)
    ("GET", "/api/subscriptions"): frozenset({ADMIN, OPS, OWNER, CONSUMER}),
    ("POST", "/api/subscriptions"): frozenset({CONSUMER}),
    ("GET", "/api/subscriptions/{subscription_id}"): frozenset({ADMIN, OPS, OWNER, CONSUMER}),
    ("POST", "/api/subscriptions/{subscription_id}/versions"): frozenset({CONSUMER}),
    ("POST", "/api/subscriptions/{subscription_id}/versions/{version}/approve"): frozenset({OWNER}),
    ("POST", "/api/subscriptions/{subscription_id}/versions/{version}/refuse"): frozenset({OWNER}),
    ("POST", "/api/subscriptions/{subscription_id}/suspend"): frozenset({OWNER}),
    ("POST", "/api/subscriptions/{subscription_id}/resume"): frozenset({OWNER}),
    ("POST", "/api/subscriptions/{subscription_id}/revoke"): frozenset({OWNER, CONSUMER}),
    # the pull feed: only the subscribing agency reads its records (a portal subscribes with a consumer grant)
    ("GET", "/api/subscriptions/{subscription_id}/records"): frozenset({CONSUMER}),
    # the audit ledger: the citizen-facing portal asks who saw a person's data; operators check and trace
    ("POST", "/api/audit/person"): frozenset({PORTAL, ADMIN}),
    ("POST", "/api/consents"): frozenset({PORTAL, ADMIN}),
    ("GET", "/api/audit/verify"): frozenset({ADMIN, OPS}),
    # the console's operations page: connectors' throughput and lag, the workers' groups (gsp.http.ops_api)
    ("GET", "/api/ops/connectors"): _OPERATORS,
    ("GET", "/api/ops/workers"): _OPERATORS,
    ("GET", "/api/audit/entries"): frozenset({ADMIN}),
    ("GET", "/api/lineage/{event_id}"): frozenset({ADMIN, OPS, STEWARD}),
    # verification without data: an agency approved for it (its verify subscription checked by the route)
    ("POST", "/api/verifications"): frozenset({CONSUMER}),
    # the stewards' desks (scope checked per dataset)
    ("GET", "/api/quarantine"): _STEWARDS,
    ("GET", "/api/quarantine/counts"): frozenset({STEWARD, OPS}),
    ("GET", "/api/quarantine/{event_id}"): _STEWARDS,
    ("POST", "/api/quarantine/{event_id}/release"): _STEWARDS,
    ("POST", "/api/quarantine/{event_id}/discard"): _STEWARDS,
    ("GET", "/api/review"): _STEWARDS,
    ("GET", "/api/review/counts"): frozenset({STEWARD, OPS}),
    ("GET", "/api/review/decisions.csv"): _STEWARDS,
    ("GET", "/api/review/{item_id}"): _STEWARDS,
    ("POST", "/api/review/{item_id}/accept"): _STEWARDS,
    ("POST", "/api/review/{item_id}/reject"): _STEWARDS,
    # the schema registry (Confluent's API): reads for those who handle records, writes for admins
    **{("GET", path): _SCHEMA_READERS for path in (
        "/subjects", "/subjects/{subject}/versions", "/subjects/{subject}/versions/{version}",
        "/subjects/{subject}/versions/{version}/schema", "/schemas/ids/{id}", "/schemas/ids/{id}/schema",
        "/schemas/ids/{id}/versions", "/schemas/types", "/config", "/config/", "/config/{subject}")},
    # a lookup and a compatibility check change nothing
    ("POST", "/subjects/{subject}"): _SCHEMA_READERS,
    ("POST", "/compatibility/subjects/{subject}/versions/{version}"): _SCHEMA_READERS,
    ("POST", "/compatibility/subjects/{subject}/versions"): _SCHEMA_READERS,
    ("POST", "/subjects/{subject}/versions"): _SCHEMA_WRITERS,
    ("DELETE", "/subjects/{subject}"): _SCHEMA_WRITERS,
    ("DELETE", "/subjects/{subject}/versions/{version}"): _SCHEMA_WRITERS,
    **{(method, path): _SCHEMA_WRITERS for method in ("PUT", "DELETE") for path in ("/config", "/config/")},
    ("PUT", "/config/{subject}"): _SCHEMA_WRITERS,
    ("DELETE", "/config/{subject}"): _SCHEMA_WRITERS,
    # connectors (Kafka Connect's API): the operators run them; their configs hold database credentials
    **{(method, path): _OPERATORS for method, path in (
        ("GET", "/connectors"), ("POST", "/connectors"), ("GET", "/connectors/{name}"),
        ("DELETE", "/connectors/{name}"), ("GET", "/connectors/{name}/config"), ("PUT", "/connectors/{name}/config"),
        ("GET", "/connectors/{name}/status"), ("GET", "/connectors/{name}/tasks"),
        ("GET", "/connectors/{name}/tasks/{task}/status"), ("POST", "/connectors/{name}/tasks/{task}/restart"),
        ("PUT", "/connectors/{name}/pause"), ("PUT", "/connectors/{name}/resume"), ("PUT", "/connectors/{name}/stop"),
        ("POST", "/connectors/{name}/restart"), ("GET", "/connectors/{name}/offsets"),
        ("PATCH", "/connectors/{name}/offsets"), ("DELETE", "/connectors/{name}/offsets"),
        ("GET", "/connector-plugins"), ("GET", "/connector-plugins/{type}/config"),
        ("PUT", "/connector-plugins/{type}/config/validate"))},
}

ACCESS: web.AppKey[Access] = web.AppKey("gsp.access")


def token_of(header: str | None) -> str | None:
    """The token an Authorization header carries (Bearer, or Basic as Confluent's clients send it); None if none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Authorization: Basic is not base64 of user:password") from None
        return password if password.startswith("gsp_") or not user else f"gsp_{user}_{password}"
    # The value is not echoed: a token sent without its scheme would be.
    raise Unauthenticated("Authorization must be Bearer <token> or HTTP Basic")


@dataclass(frozen=True)
class Access:
    """The check a server makes: its identity store (None: a server that takes no credentials, such as a
    worker's /health and /metrics) and whether /metrics is public."""

    store: IdentityStore | None = None
    public_metrics: bool = True

    def check(self, routes: Iterable[Route]) -> None:
        """Refuse to serve a route the matrix does not list, or one needing a credential this server cannot check."""
        for route in routes:
            allowed = MATRIX.get((route.method, route.path))
            if allowed is None:
                raise LookupError(f"{route.method} {route.path} has no entry in gsp.http.access.MATRIX")
            if self.store is None and allowed not in (PUBLIC, METRICS):
                raise LookupError(f"{route.method} {route.path} needs credentials; this server has no identity store")

    def identity(self, method: str, path: str, authorization: str | None) -> Identity | None:
        """The caller allowed on this route (None for a public one); Unauthenticated (401) or Forbidden (403)."""
        allowed = MATRIX[(method, path)]
        if allowed == PUBLIC or (allowed == METRICS and (self.public_metrics or self.store is None)):
            return None
        token = token_of(authorization)
        if token is None:
            raise Unauthenticated("this route needs a credential: send Authorization: Bearer <token>")
        if self.store is None:
            raise Unauthenticated("this server takes no credentials")
        identity = self.store.authenticate(token)
        if allowed == SIGNED_IN:
            return identity
        roles = frozenset({ADMIN, OPS}) if isinstance(allowed, str) else allowed
        if not identity.roles & roles:
            wanted = ", ".join(sorted(r.value for r in roles))
            raise Forbidden(f"{method} {path} needs the role {wanted}; credential {identity.key_id} of "
                            f"{identity.agency} has {', '.join(sorted(identity.roles)) or 'none'}")
        return identity
