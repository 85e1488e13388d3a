"""`gsp catalog list|show` against a real control plane (tests/gsp/cli/conftest.py: its services on the session's
embedded broker and a SQLite database), found through GSP_API_URL as a user would set it, as the admin whose
token the control plane wrote to GSP_HOME."""

import json
import subprocess

from gsp.runtime.services import ControlServices
from tests.credentials import Cast, approved
from tests.gsp.cli.test_cli import gsp


def catalog(services: ControlServices, *args: str) -> subprocess.CompletedProcess[str]:
    assert services.admin_token_file is not None
    return gsp("catalog", *args, env={"GSP_API_URL": services.api.url, "GSP_TOKEN": "",
                                      "GSP_HOME": str(services.admin_token_file.parent)})


def test_list_has_a_header_row_and_json_counting_subscribing_agencies(services: ControlServices) -> None:
    for _ in range(2):  # two consumer agencies, each with an approved subscription
        approved(services.control, Cast.register(services.control.identities), fields=["msisdn"])

    text = catalog(services, "list")
    assert text.returncode == 0, text.stderr
    header, *rows = text.stdout.splitlines()
    assert header.split("\t") == ["dataset", "owner", "role", "shareable", "fields", "correct", "complete", "clean",
                                  "live", "subscribers"]
    assert [row.split("\t") for row in rows if row.startswith(("population.citizen", "telecom."))] == [
        ["population.citizen", "VN/GOV/bo-cong-an/c06", "registry", "no", "none offered", "n/a", "n/a", "n/a", "n/a",
         "0"],
        ["telecom.subscriber", "VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong", "linked", "yes",
         "6 personal, 4 internal", "n/a", "n/a", "n/a", "n/a", "2"]]

    listed = catalog(services, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {d["name"]: d["subscribers"] for d in json.loads(listed.stdout)} == \
        {"electricity.customer": 0, "insurance.participant": 0, "population.citizen": 0, "population.event": 0,
         "telecom.subscriber": 2}


def test_show_prints_the_fields_with_type_and_sensitivity(services: ControlServices) -> None:
    shown = catalog(services, "show", "telecom.subscriber")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("telecom.subscriber: Mobile subscriptions")
    assert "  owner:         VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong" in lines
    assert "  subscribers:   0 agencies" in lines
    assert [line.split()[:3] for line in lines[lines.index("  fields:") + 1:]][:3] == [
        ["field", "type", "sensitivity"], ["msisdn", "string", "personal"], ["carrier", "string", "internal"]]
    assert any(line.split()[:3] == ["personal_id", "null|string", "personal"] for line in lines)

    entry = json.loads(catalog(services, "show", "population.citizen", "--json").stdout)
    assert entry["shareable"] is False and entry["fields"] == [] and entry["owner"] == "VN/GOV/bo-cong-an/c06"


def test_an_unknown_dataset_is_one_line(services: ControlServices) -> None:
    result = catalog(services, "show", "health.clinic")

    assert result.returncode == 2
    assert result.stderr == ("gsp: error: no dataset 'health.clinic' in the catalog; "
                             "known: electricity.customer, insurance.participant, population.citizen, "
                             "population.event, telecom.subscriber\n")
