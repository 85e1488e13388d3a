"""Who may call what over HTTP: every route of the control plane's OpenAPI document, called as every role and as
nobody, answers as `gsp.http.access.MATRIX` says; a route without an entry cannot be built; a wrong, revoked or
expired token is a 401; no token reaches a log or an error answer; /metrics is public unless configured not to be;
the desks attribute a decision to the caller's credential, never to a "by" in the body."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CollectorRegistry

from gsp.governance.control import ControlPlane
from gsp.governance.identity import Grant, IdentityStore, Role
from gsp.http.access import MATRIX, METRICS, PUBLIC, SIGNED_IN, Access, Allowed
from gsp.http.app import ApiServer, build_app
from gsp.http.identity import identity_routes
from gsp.http.ops import ops_routes
from gsp.http.routes import Call, Route
from gsp.http.server import application
from tests.credentials import PLATFORM, Cast

REGISTRY_MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
_REGISTRY_PATHS = ("/subjects", "/schemas", "/config", "/compatibility")
_PARAMETER = re.compile(r"{(\w+)}")
NEEDS_THE_ROLE = "needs the role"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def message(self) -> str:
        """The error's one line: ``error`` in the platform's body, ``message`` in the registry's (Confluent's)."""
        try:
            body = json.loads(self.text)
        except ValueError:
            return ""
        return str(body.get("error", body.get("message", ""))) if isinstance(body, dict) else ""

    def __str__(self) -> str:
        return f"{self.status} {self.text[:300]}"


def send(url: str, method: str, path: str, *, authorization: str | None = None, body: Any = None,
         content_type: str = "application/json") -> Answer:
    headers = {} if authorization is None else {"Authorization": authorization}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.headers, exc.read().decode())


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def key_and_secret(token: str) -> tuple[str, str]:
    _, key_id, secret = token.split("_", 2)
    return key_id, secret


def filled(path: str) -> str:
    """A path template with dummy parameters: numbers where the route parses one, a file the console serves for
    its (public) files, "x" elsewhere."""
    real = {"version": "1", "id": "1", "asset": "app.js", "page": "overview.js"}
    return _PARAMETER.sub(lambda m: real.get(m[1], "x"), path)


def is_registry(path: str) -> bool:
    return path.startswith(_REGISTRY_PATHS)


def documented_roles(allowed: Allowed) -> Any:
    """How /openapi.json names the roles of a route (``x-gsp-roles``): a sorted list, or public, metrics, signed-in."""
    return sorted(role.value for role in allowed) if isinstance(allowed, frozenset) else allowed


@pytest.fixture
def people(control: ControlPlane) -> Cast:
    return Cast.register(control.identities)


# --- a. every route, every role ------------------------------------------------------------------------------------


def wrong(allowed: Allowed, role: Role | None, answer: Answer) -> str | None:
    """What is wrong with ``answer`` to a caller of ``role`` (None: nobody) on a route allowing ``allowed``."""
    if role is None:
        if allowed in (PUBLIC, METRICS):  # /metrics is public by default
            return None if answer.status < 400 else "a public route refused an anonymous caller"
        if answer.status != 401:
            return "an anonymous caller was not refused with 401"
        if "WWW-Authenticate" not in answer.headers:
            return "a 401 without WWW-Authenticate"
        return None
    permitted = allowed in (PUBLIC, METRICS, SIGNED_IN) or (isinstance(allowed, frozenset) and role in allowed)
    if not permitted:
        if answer.status != 403 or NEEDS_THE_ROLE not in answer.message:
            return f"a role not in the matrix ({documented_roles(allowed)}) was not refused with a 403 that " \
                   f"says {NEEDS_THE_ROLE!r}"
        return None
    if answer.status == 401 or (answer.status == 403 and NEEDS_THE_ROLE in answer.message):
        return "an allowed role was refused"
    if answer.status >= 500:
        return "a server error"
    return None


def test_every_route_answers_every_role_as_the_matrix_says(app: web.Application, url: str, people: Cast) -> None:
    fetched = send(url, "GET", "/openapi.json", authorization=bearer(people.token(Role.ADMIN)))
    assert fetched.status == 200, fetched
    document = fetched.json()
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    served = {(route.method, resource.canonical) for resource in app.router.resources() for route in resource}

    assert documented == served
    assert not served - MATRIX.keys(), f"served without an entry in MATRIX: {sorted(served - MATRIX.keys())}"
    assert documented == {key for key in MATRIX if key in served}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            allowed = MATRIX[(method.upper(), path)]
            assert operation["x-gsp-roles"] == documented_roles(allowed), f"{method.upper()} {path}"
            # /metrics is public by default (GSP_PUBLIC_METRICS), and documented so.
            assert (operation["security"] == []) == (allowed in (PUBLIC, METRICS)), f"{method.upper()} {path}"

    callers: list[tuple[Role | None, str | None]] = [(None, None), *((role, bearer(people.token(role))) for role in Role)]
    failures = []
    for method, path in sorted(documented):
        allowed = MATRIX[(method, path)]
        body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
        media_type = REGISTRY_MEDIA_TYPE if is_registry(path) else "application/json"
        for role, authorization in callers:
            answer = send(url, method, filled(path), authorization=authorization, body=body, content_type=media_type)
            problem = wrong(allowed, role, answer)
            if problem is not None:
                failures.append(f"{method} {path} as {role or 'anonymous'}: {problem}; answered {answer}")

    assert not failures, f"{len(failures)} answers break the matrix:\n" + "\n".join(failures)


# --- b. a route without an entry ------------------------------------------------------------------------------------


async def _nothing(call: Call) -> dict[str, Any]:
    return {}


def test_a_route_without_an_entry_in_the_matrix_fails_the_build() -> None:
    store = IdentityStore(sa.create_engine("sqlite://"))

    with pytest.raises(LookupError, match=r"^GET /api/not-in-the-matrix has no entry in gsp\.http\.access\.MATRIX$"):
        application([Route("GET", "/api/not-in-the-matrix", _nothing, summary="s", tag="t")], title="t",
                    access=Access(store))
    # A known path under another method is another route.
    with pytest.raises(LookupError, match=r"^DELETE /api/whoami has no entry"):
        application([*identity_routes(store), Route("DELETE", "/api/whoami", _nothing, summary="s", tag="t")],
                    title="t", access=Access(store))
    # A server without an identity store cannot serve a route that needs a credential.
    with pytest.raises(LookupError, match=r"^GET /api/whoami needs credentials; this server has no identity store$"):
        application(identity_routes(store), title="t")
    assert application(ops_routes(CollectorRegistry(), dict), title="t")  # public routes need no store


# --- c. tokens -------------------------------------------------------------------------------------------------------


def test_a_wrong_revoked_or_expired_token_or_a_garbage_header_is_a_401(url: str, control: ControlPlane,
                                                                        people: Cast) -> None:
    store = control.identities
    admin = people.issued[Role.ADMIN]
    revoked = store.issue(PLATFORM, grants=[Grant(Role.ADMIN)], label="to revoke")
    expired = store.issue(PLATFORM, grants=[Grant(Role.ADMIN)], label="to expire")
    for issued in (revoked, expired):
        assert send(url, "GET", "/api/whoami", authorization=bearer(issued.token)).json()["key_id"] == issued.key_id
    store.revoke(revoked.key_id)
    store.expire(expired.key_id)

    refused = {
        "a stolen-looking token": bearer(f"gsp_{admin.key_id}_{secrets.token_urlsafe(32)}"),
        "a revoked token": bearer(revoked.token),
        "an expired token": bearer(expired.token),
        "a token of the wrong format": bearer("gsp_not_a_token"),
        "an empty bearer": "Bearer ",
        "an unknown scheme": "Token abc",
        "garbage": "!!garbage!!",
        "basic that is not base64": "Basic ***",
        "basic with a wrong secret": basic(admin.key_id, secrets.token_urlsafe(32)),
        "basic of a revoked token": basic("anything", revoked.token),
    }
    failures = []
    for what, authorization in refused.items():
        for path in ("/api/whoami", "/api/catalog", "/subjects"):
            answer = send(url, "GET", path, authorization=authorization)
            if answer.status != 401 or not answer.headers.get("WWW-Authenticate", "").startswith("Bearer"):
                failures.append(f"{what} on {path}: answered {answer} with WWW-Authenticate "
                                f"{answer.headers.get('WWW-Authenticate')!r}")
    assert not failures, "\n".join(failures)

    # The registry answers in Confluent's shape, which its clients branch on.
    answer = send(url, "GET", "/subjects")
    assert answer.status == 401, str(answer)
    assert {"error_code", "message"} <= set(answer.json()), str(answer)
    assert isinstance(answer.json()["error_code"], int) and answer.json()["message"], str(answer)


def test_http_basic_takes_the_key_id_and_secret_or_the_whole_token(url: str, people: Cast) -> None:
    token = people.token(Role.OPS)
    key_id, secret = key_and_secret(token)

    for authorization in (basic(key_id, secret), basic("anything", token), basic("", token)):
        answer = send(url, "GET", "/subjects", authorization=authorization)
        assert answer.status == 200 and isinstance(answer.json(), list), str(answer)
        assert send(url, "GET", "/api/whoami", authorization=authorization).json()["key_id"] == key_id


# --- d. no token in a log or an answer ------------------------------------------------------------------------------


def _secrets_of(tokens: list[str]) -> list[str]:
    """What must never be shown: each whole token, its secret, and either half of the secret."""
    found = []
    for token in tokens:
        secret = key_and_secret(token)[1]
        found += [token, secret, secret[:21], secret[21:]]
    return found


def _every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


def test_no_token_reaches_a_log_or_an_error_answer(url: str, control: ControlPlane, people: Cast,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    _every_logger_at_debug(caplog)
    store = control.identities
    revoked = store.issue(PLATFORM, grants=[Grant(Role.ADMIN)], label="to revoke")
    store.revoke(revoked.key_id)
    expired = store.issue(PLATFORM, grants=[Grant(Role.STEWARD, ("*",))], label="to expire")
    store.expire(expired.key_id)
    stolen = f"gsp_{people.issued[Role.ADMIN].key_id}_{secrets.token_urlsafe(32)}"
    tokens = [*(people.token(role) for role in Role), revoked.token, expired.token, stolen]
    admin, consumer, portal = (people.token(role) for role in (Role.ADMIN, Role.CONSUMER, Role.PORTAL))

    answers: list[tuple[str, Answer]] = []
    failures: list[str] = []

    def ask(what: str, method: str, path: str, authorization: str, body: Any = None, expected: int = 200,
            content_type: str = "application/json") -> None:
        answer = send(url, method, path, authorization=authorization, body=body, content_type=content_type)
        answers.append((what, answer))
        if answer.status != expected:
            failures.append(f"{what}: expected {expected}, answered {answer}")

    for role in Role:  # succeeding
        ask(f"whoami as {role}", "GET", "/api/whoami", bearer(people.token(role)))
    ask("registry read over basic", "GET", "/subjects", basic("anything", admin))
    # 401s, in every way a token can be sent wrong
    for token in (revoked.token, expired.token, stolen):
        ask("a refused bearer", "GET", "/api/catalog", bearer(token), expected=401)
        ask("a refused basic", "GET", "/api/catalog", basic(*key_and_secret(token)), expected=401)
        ask("a refused registry basic", "GET", "/subjects", basic("anything", token), expected=401)
    ask("the token with no scheme", "GET", "/api/whoami", admin, expected=401)
    ask("the token under another scheme", "GET", "/api/whoami", f"Token {admin}", expected=401)
    ask("the token with a trailing word", "GET", "/api/whoami", f"Bearer {admin} please", expected=401)
    ask("the token cut short", "GET", "/api/whoami", bearer(admin[:-1]), expected=401)
    ask("a basic secret cut short", "GET", "/api/whoami", basic(*key_and_secret(admin[:-1])), expected=401)
    ask("a basic password of the wrong format", "GET", "/api/whoami", basic("anything", admin[4:]), expected=401)
    # 403s: a role the route does not allow
    ask("consumer on agencies", "GET", "/api/agencies", bearer(consumer), expected=403)
    ask("portal on the registry", "GET", "/subjects", bearer(portal), expected=403)
    ask("owner on the quarantine", "GET", "/api/quarantine", bearer(people.token(Role.OWNER)), expected=403)
    # 400 and 422: a body of the wrong shape, a request that cannot be honoured
    ask("a credential body of the wrong shape", "POST", "/api/credentials", bearer(admin),
        body={"agency": PLATFORM, "grants": "admin"}, expected=400)
    ask("an owner grant of a dataset not owned", "POST", "/api/credentials", bearer(admin),
        body={"agency": PLATFORM, "grants": [{"role": "owner", "datasets": ["telecom.subscriber"]}]}, expected=422)
    ask("a subscription to an unknown dataset", "POST", "/api/subscriptions", bearer(consumer),
        body={"dataset": "no.such", "fields": ["msisdn"], "purpose": "p", "legal_basis": "b"}, expected=422)
    ask("a schema that is not Avro", "POST", "/subjects/t-value/versions", bearer(admin),
        body={"schema": "{not avro"}, content_type=REGISTRY_MEDIA_TYPE, expected=422)

    for what, answer in answers:
        shown = answer.text + "".join(f"{k}: {v}" for k, v in answer.headers.items())
        if any(secret in shown for secret in _secrets_of(tokens)):
            failures.append(f"{what}: the answer shows a token: {answer}")
    if any(secret in caplog.text for secret in _secrets_of(tokens)):
        failures.append("a token was logged: " + next(line for line in caplog.text.splitlines()
                                                      if any(secret in line for secret in _secrets_of(tokens))))
    assert not failures, "\n".join(failures)


def test_a_server_error_logs_no_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The identity store's database failing mid-request is a 500, logged with its traceback and SQL: no secret."""
    _every_logger_at_debug(caplog)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'identity.db'}")
    store = IdentityStore(engine)
    store.register_agency(PLATFORM, name="Nền tảng")
    token = store.issue(PLATFORM, grants=[Grant(Role.ADMIN)]).token
    server = ApiServer(application(identity_routes(store), title="t", access=Access(store)))
    server.start()
    try:
        assert send(server.url, "GET", "/api/whoami", authorization=bearer(token)).status == 200
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE credentials RENAME TO credentials_gone")
        answers = [send(server.url, "GET", "/api/whoami", authorization=authorization)
                   for authorization in (bearer(token), basic(*key_and_secret(token)))]
    finally:
        server.stop()
        engine.dispose()

    for answer in answers:
        assert answer.status == 500 and answer.json() == {"error": "internal error; see the server's log"}, str(answer)
    assert "request failed" in caplog.text and "credentials" in caplog.text  # the failure was logged, with its SQL
    for secret in _secrets_of([token]):
        assert secret not in caplog.text, "a token was logged"


# --- e. /metrics ----------------------------------------------------------------------------------------------------


@pytest.fixture
def private_metrics_url(control: ControlPlane) -> Iterator[str]:
    server = ApiServer(build_app(control, CollectorRegistry(), public_metrics=False))
    server.start()
    yield server.url
    server.stop()


def test_metrics_are_public_by_default_and_need_ops_or_admin_when_configured(url: str, private_metrics_url: str,
                                                                             people: Cast) -> None:
    public = send(url, "GET", "/metrics")
    assert public.status == 200 and public.headers["Content-Type"].startswith("text/plain"), str(public)

    anonymous = send(private_metrics_url, "GET", "/metrics")
    assert anonymous.status == 401 and "WWW-Authenticate" in anonymous.headers, str(anonymous)
    for role in Role:
        answer = send(private_metrics_url, "GET", "/metrics", authorization=bearer(people.token(role)))
        if role in (Role.OPS, Role.ADMIN):
            assert answer.status == 200, (role, str(answer))
        else:
            assert answer.status == 403 and NEEDS_THE_ROLE in answer.message, (role, str(answer))
            assert "admin, ops" in answer.message, (role, str(answer))
    assert send(private_metrics_url, "GET", "/health").status == 200


# --- f. the desks attribute a decision to the credential -------------------------------------------------------------


def test_a_desk_decision_body_takes_no_by_field(url: str, people: Cast) -> None:
    steward = bearer(people.token(Role.STEWARD))
    decisions = ["/api/review/x/accept", "/api/review/x/reject", "/api/quarantine/x/discard"]

    for path in decisions:
        answer = send(url, "POST", path, authorization=steward, body={"by": "someone", "reason": "x"})
        assert answer.status == 400 and answer.message.startswith("by: Extra inputs are not permitted"), (path,
                                                                                                            str(answer))
        # Without it the body is taken: the answer is about the (missing) item.
        assert send(url, "POST", path, authorization=steward, body={"reason": "x"}).status == 404, path
    answer = send(url, "POST", "/api/quarantine/x/release", authorization=steward, body={"by": "someone", "fixes": {}})
    assert answer.status == 400 and answer.message.startswith("by: Extra inputs are not permitted"), str(answer)

    schemas = send(url, "GET", "/openapi.json", authorization=steward).json()["components"]["schemas"]
    assert "by" not in schemas["Decision"]["properties"] and "by" not in schemas["Release"]["properties"]
