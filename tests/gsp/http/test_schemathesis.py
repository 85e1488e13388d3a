"""Every operation of the control plane's /openapi.json, driven by schemathesis with generated requests, valid and
not: no answer is a 5xx, and each answer conforms to what the document declares.

A real control plane (`gsp serve --workers 0`: its embedded broker and SQLite database) serves the document
and the requests, so what schemathesis exercises is what users run; POST and DELETE change only this
throwaway plane. The operations are walked here rather than by ``schemathesis.pytest.from_fixture``, whose lazy
parametrisation sets ``Function._nodeid``, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gsp.runtime.embedded import free_port

# Per operation and generation mode; bounded so the whole run stays well under a minute on two shared cores.
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture
def control_plane_schema(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    # `gsp serve` in its own process, as users run it: its indexer threads' kafka-python clients draw on the global
    # `random` (reconnect jitter), which hypothesis refuses to see change while it generates a case.
    env = {**os.environ, "GSP_HOME": str(tmp_path), "GSP_API_PORT": str(free_port())}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve", "--workers", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("gsp: control plane"), (line, (tmp_path / "serve.log").read_text()[-2000:])
        url = json.loads((tmp_path / "runtime.json").read_text())["api_url"]
        schema = schemathesis.openapi.from_url(url + "/openapi.json", config=schemathesis.Config(), timeout=10)
        schema.config.update(base_url=url)
        yield schema
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]
        log.close()


def test_no_generated_request_gets_a_server_error(control_plane_schema: schemathesis.BaseSchema,
                                                  subtests: pytest.Subtests) -> None:
    operations = [result.ok() for result in control_plane_schema.get_all_operations()]
    assert len(operations) > 30  # every area's routes are mounted, not just the ops ones

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
                    case.call_and_validate(checks=CHECKS, timeout=10)

                answers_without_a_server_error()
