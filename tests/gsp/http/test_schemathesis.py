"""Every operation of the control plane's /openapi.json, driven by schemathesis with generated requests, valid and
not, sent with a credential the operation accepts: no answer is a 5xx, each answer conforms to what the document
declares, and none is refused for the role.

A real control plane (`gsp serve --workers 0`: its embedded broker and SQLite database) serves the document
and the requests, so what schemathesis exercises is what users run; POST and DELETE change only this
throwaway plane. Its first start writes the first admin's token to GSP_HOME/admin.token; with it the test
issues a steward (of every dataset), a consumer and the owner of telecom.subscriber over the API, and each
operation is called with the token of a role its ``x-gsp-roles`` names, so the generated requests reach the
handlers rather than stopping at a 403. The operations are walked here rather than by
``schemathesis.pytest.from_fixture``, whose lazy parametrisation sets ``Function._nodeid``, which pytest 9.2 no
longer has.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gsp.runtime.embedded import free_port
from schemas.datasets import declared
from schemas.settings import ADMIN_TOKEN_FILE
from tests.credentials import CONSUMER_AGENCY, PLATFORM

# Per operation and generation mode; bounded so the whole run stays well under a minute on two shared cores.
MAX_EXAMPLES = 25
OWNED = "telecom.subscriber"
# The role whose token calls an operation: the first of these its x-gsp-roles names (admin for the rest: signed-in,
# metrics, public).
PREFERRED = ("admin", "steward", "owner", "consumer", "ops")


@schemathesis.check
def not_refused_for_the_role(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """The credential sent is one the operation accepts: never a 401, nor a 403 for the role (one for a dataset the
    credential does not cover could be, but none of these credentials is short of one)."""
    if response.status_code == 401 or (response.status_code == 403 and "needs the role" in response.text):
        raise AssertionError(f"refused for the role: {response.status_code} {response.text[:300]}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, not_refused_for_the_role]


@dataclass(frozen=True)
class ControlPlaneProcess:
    url: str
    home: Path
    admin_token: str


def _post(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    # `gsp serve` in its own process, as users run it: its indexer threads' kafka-python clients draw on the global
    # `random` (reconnect jitter), which hypothesis refuses to see change while it generates a case.
    home = tmp_path_factory.mktemp("gsp-home")
    env = {**os.environ, "GSP_HOME": str(home), "GSP_API_PORT": str(free_port())}
    env.pop("GSP_TOKEN", None)
    log = open(home / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve", "--workers", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        # The first start says where it wrote the first admin's token, then that the control plane is up.
        printed = []
        for line in server.stdout:  # type: ignore[union-attr]
            printed.append(line)
            if line.startswith("gsp: control plane"):
                break
        assert printed and printed[-1].startswith("gsp: control plane"), (printed, (home / "serve.log").read_text()[-2000:])
        assert any(str(home / ADMIN_TOKEN_FILE) in line for line in printed), printed
        url = json.loads((home / "runtime.json").read_text())["api_url"]
        yield ControlPlaneProcess(url=url, home=home, admin_token=(home / ADMIN_TOKEN_FILE).read_text().strip())
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()


@pytest.fixture(scope="module")
def tokens(control_plane: ControlPlaneProcess) -> dict[str, str]:
    """A token per role the operations name, issued over the API by the first admin."""
    url, admin = control_plane.url, control_plane.admin_token
    owner_agency = declared()[OWNED].owner
    for agency, name in ((CONSUMER_AGENCY, "Bảo hiểm xã hội Việt Nam"), (owner_agency, "Cục Viễn thông")):
        _post(url + "/api/agencies", admin, {"agency": agency, "name": name})
    grants = {"steward": (PLATFORM, {"role": "steward", "datasets": ["*"]}),
              "consumer": (CONSUMER_AGENCY, {"role": "consumer"}),
              "owner": (owner_agency, {"role": "owner", "datasets": [OWNED]}),
              "ops": (PLATFORM, {"role": "ops"})}
    issued = {role: _post(url + "/api/credentials", admin, {"agency": agency, "grants": [grant],
                                                            "label": f"schemathesis {role}"})["token"]
              for role, (agency, grant) in grants.items()}
    return {"admin": admin, **issued}


def token_for(operation: Any, tokens: dict[str, str]) -> str:
    roles = operation.definition.raw.get("x-gsp-roles")
    if not isinstance(roles, list):  # signed-in, metrics, public: any credential
        return tokens["admin"]
    return tokens[next(role for role in PREFERRED if role in roles)]


@pytest.fixture
def control_plane_schema(control_plane: ControlPlaneProcess) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(control_plane.url + "/openapi.json", config=schemathesis.Config(),
                                           timeout=10, headers={"Authorization": f"Bearer {control_plane.admin_token}"})
    schema.config.update(base_url=control_plane.url)
    # The credential is the one this test sends, not one schemathesis makes up for the documented security schemes.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def test_the_first_admin_token_is_private_and_the_api_needs_a_credential(control_plane: ControlPlaneProcess) -> None:
    assert stat.S_IMODE((control_plane.home / ADMIN_TOKEN_FILE).stat().st_mode) == 0o600
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(control_plane.url + "/api/catalog", timeout=10)
    with refused.value as answer:
        assert answer.code == 401 and answer.headers["WWW-Authenticate"], answer.read()
    with urllib.request.urlopen(control_plane.url + "/health", timeout=10) as response:
        assert response.status == 200


def test_no_generated_request_gets_a_server_error(control_plane_schema: schemathesis.BaseSchema,
                                                  tokens: dict[str, str], subtests: pytest.Subtests) -> None:
    results = list(control_plane_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), [r.err() for r in results if not isinstance(r, Ok)]  # each one loads
    assert len(operations) > 30  # every area's routes are mounted, not just the ops ones
    used = {token_for(operation, tokens) for operation in operations}
    assert {tokens[role] for role in ("admin", "steward", "owner", "consumer")} <= used

    for operation in operations:
        # Only a body can be invalid: every path and query parameter is declared a string (a boolean or integer one
        # is parsed by the route, which refuses what it cannot read), so positive cases already send any text there.
        modes = [schemathesis.GenerationMode.POSITIVE] + ([schemathesis.GenerationMode.NEGATIVE] if operation.body else [])
        for mode in modes:
            with subtests.test(operation=operation.label, mode=mode.value):
                # derandomize: the same cases on every run, so a failure in CI is reproduced by running it again.
                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))
                def answers_without_a_server_error(case: schemathesis.Case) -> None:
                    credential = {"Authorization": f"Bearer {token_for(case.operation, tokens)}"}
                    case.call_and_validate(headers=credential, checks=CHECKS, timeout=10)

                answers_without_a_server_error()
