"""List commands: a header row then tab-separated rows, or with --json the control plane's answer as JSON.

Against a real control plane (its services on the session's embedded broker and a SQLite database),
found through GSP_API_URL as a user would set it.
"""

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from gsp.runtime.services import ControlServices
from schemas.settings import Settings
from tests.gsp.cli.test_cli import gsp


@pytest.fixture
def api_url(bootstrap: str, sqlite_engine: sa.Engine, tmp_path: object) -> Iterator[str]:
    services = ControlServices(Settings(home=tmp_path), bootstrap=bootstrap, engine=sqlite_engine,  # type: ignore[arg-type]
                               metrics=CollectorRegistry())
    services.start()
    try:
        yield services.api.url
    finally:
        services.stop()


def listed(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = gsp(*args, env={"GSP_API_URL": api_url})
    assert result.returncode == 0, result.stderr
    return result


def test_every_list_command_has_a_header_row_and_json(api_url: str) -> None:
    agency = f"so-y-te-{uuid.uuid4().hex[:6]}"
    created = listed(api_url, "subscription", "create", "--agency", agency, "--dataset", "telecom.subscriber",
                     "--fields", "msisdn,carrier", "--where", "carrier=Viettel")
    assert created.stdout.startswith(f"subscription {agency}:telecom.subscriber v1 -> topic ")

    header, *rows = listed(api_url, "subscription", "list").stdout.splitlines()
    assert header.split("\t") == ["subscription_id", "version", "topic", "fields"]
    assert [row.split("\t")[0::3] for row in rows] == [[f"{agency}:telecom.subscriber", "msisdn,carrier"]]
    [subscription] = json.loads(listed(api_url, "subscription", "list", "--json").stdout)
    assert subscription["subscription_id"] == f"{agency}:telecom.subscriber" and subscription["fields"] == ["msisdn", "carrier"]

    assert listed(api_url, "quarantine", "list").stdout == "event_id\tdataset\trule\tfield\tstatus\treason\n"
    assert json.loads(listed(api_url, "quarantine", "list", "--json", "--status", "all").stdout) == []
    assert listed(api_url, "quarantine", "list", "--counts").stdout == "dataset\trule\topen\n"
    assert json.loads(listed(api_url, "quarantine", "list", "--counts", "--json").stdout) == {}

    assert listed(api_url, "review", "list").stdout == "item_id\tdataset\tsource_key\tpersonal_id\tprobability\tlevels\n"
    assert json.loads(listed(api_url, "review", "list", "--json").stdout) == []

    assert listed(api_url, "subscription", "delete", f"{agency}:telecom.subscriber").stdout == \
        f"subscription {agency}:telecom.subscriber revoked\n"
    assert json.loads(listed(api_url, "subscription", "list", "--json").stdout) == []
