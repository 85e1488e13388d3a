"""List commands: a header row then tab-separated rows, or with --json the control plane's answer as JSON.

Against a real control plane (tests/gsp/cli/conftest.py: its services on the session's embedded broker and a
SQLite database), found through GSP_API_URL as a user would set it, each command with the credential of the
role it needs in GSP_TOKEN.
"""

import json
import subprocess

from gsp.governance.identity import Role, agency_slug
from gsp.runtime.services import ControlServices
from tests.credentials import Cast
from tests.gsp.cli.test_cli import gsp


def listed(services: ControlServices, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = gsp(*args, env={"GSP_API_URL": services.api.url, "GSP_TOKEN": token})
    assert result.returncode == 0, result.stderr
    return result


def test_every_list_command_has_a_header_row_and_json(services: ControlServices) -> None:
    cast = Cast.register(services.control.identities)
    consumer, owner, steward = (cast.token(role) for role in (Role.CONSUMER, Role.OWNER, Role.STEWARD))
    sid = f"{agency_slug(cast.consumer_agency)}:telecom.subscriber"
    requested = listed(services, consumer, "subscription", "request", "--dataset", "telecom.subscriber",
                       "--fields", "msisdn,carrier", "--where", "carrier=Viettel", "--purpose", "đối soát thuê bao",
                       "--legal-basis", "Nghị định 13/2023/NĐ-CP")
    assert requested.stdout.startswith(f"subscription {sid} version 1: requested; ")
    assert listed(services, owner, "subscription", "approve", sid).stdout.startswith(
        f"subscription {sid} version 1: active; version 1 delivers on ")

    header, *rows = listed(services, consumer, "subscription", "list").stdout.splitlines()
    assert header.split("\t") == ["subscription_id", "state", "active", "latest", "due", "topic"]
    [subscription] = json.loads(listed(services, consumer, "subscription", "list", "--json").stdout)
    assert subscription["subscription_id"] == sid and subscription["versions"][0]["fields"] == ["msisdn", "carrier"]
    assert [row.split("\t") for row in rows] == [[sid, "active", "v1", "v1 active", "-", subscription["topic"]]]

    assert listed(services, steward, "quarantine", "list").stdout == "event_id\tdataset\trule\tfield\tstatus\treason\n"
    assert json.loads(listed(services, steward, "quarantine", "list", "--json", "--status", "all").stdout) == []
    assert listed(services, steward, "quarantine", "list", "--counts").stdout == "dataset\trule\topen\n"
    assert json.loads(listed(services, steward, "quarantine", "list", "--counts", "--json").stdout) == {}

    assert listed(services, steward, "review", "list").stdout == \
        "item_id\tdataset\tsource_key\tpersonal_id\tprobability\tlevels\n"
    assert json.loads(listed(services, steward, "review", "list", "--json").stdout) == []

    assert listed(services, owner, "subscription", "revoke", sid, "--reason", "hết nhu cầu").stdout == \
        f"subscription {sid}: version 1 revoked\n"
    [subscription] = json.loads(listed(services, consumer, "subscription", "list", "--json").stdout)
    assert (subscription["state"], subscription["active_version"]) == ("revoked", None)
    assert listed(services, consumer, "subscription", "list").stdout.splitlines()[1:] == \
        [f"{sid}\trevoked\t-\tv1 revoked\t-\t{subscription['topic']}"]
