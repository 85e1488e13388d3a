"""`gsp agency`, `gsp credential`, `gsp whoami` and `gsp subscription` as agencies use them, against a real control
plane (tests/gsp/cli/conftest.py), each command a `python -m gsp` process with GSP_API_URL and a credential:
GSP_TOKEN, or for the admin GSP_HOME holding the admin.token the control plane wrote on start."""

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from gsp.cli import subscription
from gsp.cli.agency import parse_contact
from gsp.cli.credential import parse_role
from gsp.errors import UserError
from gsp.governance.identity import Role, agency_slug
from gsp.runtime.services import ControlServices
from schemas.datasets import declared
from tests.credentials import Cast
from tests.gsp.cli.test_cli import gsp

TOKEN = re.compile(r"gsp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
# A fresh subsystem per run, as tests/credentials.py makes the cast's consumer: tests sharing the session's broker
# never share a subscription id or a share topic.
TAX = f"VN/GOV/bo-tai-chinh/thue-{uuid.uuid4().hex[:6]}"
TAX_SUBSCRIPTION = f"{agency_slug(TAX)}:telecom.subscriber"
REQUEST = ["--dataset", "telecom.subscriber", "--fields", "msisdn,carrier", "--where", "carrier=Viettel,VinaPhone",
           "--purpose", "đối soát mã số thuế của thuê bao", "--legal-basis", "Luật Quản lý thuế 2019, Điều 30"]


def run_as(services: ControlServices, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``gsp ARGS`` with ``token`` in GSP_TOKEN; None: the admin's way, GSP_TOKEN unset and GSP_HOME the control
    plane's, where its admin.token is. Anyone else's GSP_HOME holds no token."""
    assert services.admin_token_file is not None
    home = services.admin_token_file.parent if token is None else services.admin_token_file.parent / "elsewhere"
    return gsp(*args, env={"GSP_API_URL": services.api.url, "GSP_HOME": str(home), "GSP_TOKEN": token or ""})


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def subscription_of(cast: Cast) -> str:
    """The id of the cast's consumer's subscription to telecom.subscriber."""
    return f"{agency_slug(cast.consumer_agency)}:telecom.subscriber"


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error line, once the result is checked to be one: `gsp: error: …`, exit status 2, no traceback (every
    error of `gsp`, the control plane's refusals included, is exit status 2: gsp/cli/__init__.py)."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("gsp: error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def cast(services: ControlServices) -> Cast:
    return Cast.register(services.control.identities)


def test_an_agency_is_registered_given_a_credential_requests_and_its_owner_approves(
        services: ControlServices, cast: Cast) -> None:
    # The admin, on the control plane's machine: the token comes from GSP_HOME/admin.token.
    registered = ok(run_as(services, None, "agency", "register", TAX, "--name", "Tổng cục Thuế",
                           "--contact", "Nguyễn Văn An <an@gdt.gov.vn> 024 3936 1234", "--contact", "Trần Thị Bình"))
    assert registered.startswith(f"agency {TAX} registered: Tổng cục Thuế (slug {agency_slug(TAX)}, 2 contacts)")
    [agency] = [a for a in json.loads(ok(run_as(services, None, "agency", "list", "--json"))) if a["agency"] == TAX]
    assert agency["contacts"] == [{"name": "Nguyễn Văn An", "email": "an@gdt.gov.vn", "phone": "024 3936 1234"},
                                  {"name": "Trần Thị Bình"}]
    assert f"{TAX}\t{agency_slug(TAX)}\tTổng cục Thuế\tNguyễn Văn An <an@gdt.gov.vn> 024 3936 1234; Trần Thị Bình" in \
        ok(run_as(services, None, "agency", "list")).splitlines()

    issued = ok(run_as(services, None, "credential", "issue", "--agency", TAX, "--role", "consumer",
                       "--label", "tax team"))
    [token] = set(TOKEN.findall(issued))
    key_id = token.split("_")[1]
    assert issued.splitlines()[0] == f"credential {key_id} of {TAX}: consumer, expires never"
    assert f"token: {token}" in issued and "shown only now" in issued and f"  export GSP_TOKEN={token}\n" in issued

    # Listing credentials never shows a token, as a table or as JSON.
    for listing in (["credential", "list"], ["credential", "list", "--json"], ["credential", "list", "--agency", TAX]):
        text = ok(run_as(services, None, *listing))
        assert key_id in text and token.split("_", 2)[2] not in text and not TOKEN.search(text), listing
    assert [c["key_id"] for c in json.loads(ok(run_as(services, None, "credential", "list", "--agency", TAX,
                                                      "--json")))] == [key_id]
    assert f"{key_id}\t{TAX}\tconsumer\tactive\ttax team\t" in ok(run_as(services, None, "credential", "list"))

    assert ok(run_as(services, token, "whoami")) == f"agency:  {TAX}\nkey id:  {key_id}\nroles:   consumer\n"

    # The agency requests; the owner of telecom.subscriber sees it within its deadline and approves it.
    requested = ok(run_as(services, token, "subscription", "request", *REQUEST))
    match = re.fullmatch(rf"subscription {TAX_SUBSCRIPTION} version 1: requested; "
                         r"the owner of telecom.subscriber answers by (\S+)\n", requested)
    assert match, requested
    due = match[1]

    owner = cast.token(Role.OWNER)
    assert ok(run_as(services, owner, "subscription", "list", "--overdue")) == \
        "subscription_id\tstate\tactive\tlatest\tdue\ttopic\n"
    assert json.loads(ok(run_as(services, owner, "subscription", "list", "--overdue", "--json"))) == []
    _, *rows = ok(run_as(services, owner, "subscription", "list")).splitlines()
    assert [row.split("\t")[:5] for row in rows] == [[TAX_SUBSCRIPTION, "requested", "-", "v1 requested", due]]

    approved = ok(run_as(services, owner, "subscription", "approve", TAX_SUBSCRIPTION, "--reason", "đúng Điều 30"))
    assert re.fullmatch(rf"subscription {TAX_SUBSCRIPTION} version 1: active; version 1 delivers on \S+\n", approved)

    shown = ok(run_as(services, token, "subscription", "show", TAX_SUBSCRIPTION))
    lines = shown.splitlines()
    assert lines[0] == f"{TAX_SUBSCRIPTION}: version 1 active"
    assert lines[lines.index("version 1: active") + 1:lines.index("version 1: active") + 7] == [
        "  fields:      msisdn, carrier",
        "  rows:        carrier in Viettel, VinaPhone",
        "  verdicts:    MATCHED",
        "  purpose:     đối soát mã số thuế của thuê bao",
        "  legal basis: Luật Quản lý thuế 2019, Điều 30",
        "  period:      from " + json.loads(ok(run_as(services, token, "subscription", "show", TAX_SUBSCRIPTION,
                                                      "--json")))["versions"][0]["valid_from"] + " until revoked"]
    owner_agency = declared()["telecom.subscriber"].owner
    assert any(re.fullmatch(rf"  requested:   \S+ by {TAX}#{key_id}", line) for line in lines), shown
    assert any(re.fullmatch(rf"  approved:    \S+ by {owner_agency}#\w+: đúng Điều 30", line) for line in lines), shown

    [mine] = json.loads(ok(run_as(services, token, "subscription", "list", "--json")))
    assert mine["subscription_id"] == TAX_SUBSCRIPTION and mine["state"] == "active" and mine["active_version"] == 1


def test_a_change_is_decided_while_the_approved_version_keeps_delivering(services: ControlServices, cast: Cast) -> None:
    consumer, owner, sid = cast.token(Role.CONSUMER), cast.token(Role.OWNER), subscription_of(cast)
    ok(run_as(services, consumer, "subscription", "request", *REQUEST))
    ok(run_as(services, owner, "subscription", "approve", sid))

    changed = ok(run_as(services, consumer, "subscription", "change", sid, "--fields",
                        "msisdn,carrier,personal_id", "--purpose", "thêm số định danh", "--legal-basis", "Điều 30"))
    assert changed.startswith(f"subscription {sid} version 2: requested; ")
    row = ok(run_as(services, owner, "subscription", "list")).splitlines()[1].split("\t")
    assert row[:4] == [sid, "active", "v1", "v2 requested"]  # what is delivered, then what was asked last

    refused = ok(run_as(services, owner, "subscription", "refuse", sid, "--reason", "không cần"))
    assert refused.startswith(f"subscription {sid} version 2: refused; version 1 delivers on ")
    shown = ok(run_as(services, consumer, "subscription", "show", sid))
    assert "version 2: refused\n" in shown and re.search(r"\n  refused: +\S+ by \S+: không cần\n", shown), shown

    # Nothing waits any more: approve says so rather than guessing a version.
    assert "has no version waiting for a decision (version 1 active, version 2 refused)" in \
        one_line_error(run_as(services, owner, "subscription", "approve", sid))

    # The answer's own state is the latest version's (refused); what the CLI says is what each version does.
    assert ok(run_as(services, owner, "subscription", "suspend", sid, "--reason", "kiểm tra")) == \
        f"subscription {sid}: version 1 suspended, version 2 refused\n"
    assert ok(run_as(services, owner, "subscription", "resume", sid)).startswith(
        f"subscription {sid}: version 1 active, version 2 refused; version 1 delivers on ")
    assert ok(run_as(services, consumer, "subscription", "show", sid)).startswith(
        f"{sid}: version 1 active, version 2 refused\n")
    assert ok(run_as(services, consumer, "subscription", "revoke", sid, "--reason", "hết nhu cầu")) == \
        f"subscription {sid}: version 1 revoked, version 2 refused\n"
    shown = ok(run_as(services, owner, "subscription", "show", sid))
    assert re.search(rf"\n  revoked: +\S+ by {re.escape(cast.consumer_agency)}#\w+: hết nhu cầu\n", shown), shown


def test_a_consumer_cannot_approve_its_own_request(services: ControlServices, cast: Cast) -> None:
    consumer, sid = cast.token(Role.CONSUMER), subscription_of(cast)
    ok(run_as(services, consumer, "subscription", "request", *REQUEST))

    line = one_line_error(run_as(services, consumer, "subscription", "approve", sid))
    assert "/approve needs the role owner" in line and f"of {cast.consumer_agency} has consumer" in line
    assert json.loads(ok(run_as(services, consumer, "subscription", "show", sid, "--json")))[
        "state"] == "requested"


def test_refusing_without_a_reason_is_a_command_line_mistake() -> None:
    result = gsp("subscription", "refuse", "bo-y-te-bhxh:telecom.subscriber", env={"GSP_API_URL": "http://127.0.0.1:1"})
    assert one_line_error(result) == ("gsp: error: the following arguments are required: --reason "
                                      "(see gsp subscription refuse --help)")


@pytest.mark.parametrize("args", [["subscription", "list"], ["whoami"], ["credential", "list"]])
def test_without_a_credential_the_message_says_to_set_gsp_token(services: ControlServices, args: list[str]) -> None:
    line = one_line_error(run_as(services, "", *args))
    assert "needs a credential" in line and "set GSP_TOKEN" in line


def test_a_revoked_or_expired_credential_is_refused(services: ControlServices, cast: Cast) -> None:
    tokens = [ok(run_as(services, None, "credential", "issue", "--agency", cast.consumer_agency, "--role", "consumer",
                        "--token-only")) for _ in range(2)]
    assert all(TOKEN.fullmatch(t.rstrip("\n")) and t.endswith("\n") for t in tokens), tokens
    revoked, expired = (t.strip() for t in tokens)
    for token in (revoked, expired):
        assert ok(run_as(services, token, "whoami")).startswith(f"agency:  {cast.consumer_agency}\n")

    key = revoked.split("_")[1]
    assert ok(run_as(services, None, "credential", "revoke", key)) == \
        f"credential {key} of {cast.consumer_agency} revoked: its next request is refused\n"
    assert f"credential {key} was revoked" in one_line_error(run_as(services, revoked, "subscription", "list"))

    key = expired.split("_")[1]
    assert ok(run_as(services, None, "credential", "expire", key)).startswith(
        f"credential {key} of {cast.consumer_agency}: expired, expires 20")
    assert f"credential {key} has expired" in one_line_error(run_as(services, expired, "whoami"))
    states = {c["key_id"]: c["state"] for c in json.loads(ok(run_as(services, None, "credential", "list", "--json")))}
    assert states[revoked.split("_")[1]] == "revoked" and states[key] == "expired"


def test_issuing_an_owner_credential_names_its_datasets(services: ControlServices, cast: Cast) -> None:
    owner_agency = declared()["telecom.subscriber"].owner
    token = ok(run_as(services, None, "credential", "issue", "--agency", owner_agency, "--role",
                      "owner:telecom.subscriber", "--role", "consumer", "--token-only")).strip()
    assert ok(run_as(services, token, "whoami")).endswith("roles:   owner (telecom.subscriber), consumer\n")
    # Only the declared owner may hold an owner grant: the control plane's refusal is one line.
    assert f"{cast.consumer_agency} is not the declared owner of telecom.subscriber" in one_line_error(
        run_as(services, None, "credential", "issue", "--agency", cast.consumer_agency, "--role", "owner:telecom.subscriber"))


def test_contacts_and_roles_as_written_on_the_command_line() -> None:
    assert parse_contact(" Nguyễn Văn An <an@bhxh.gov.vn> +84 24 3936 1234 ") == \
        {"name": "Nguyễn Văn An", "email": "an@bhxh.gov.vn", "phone": "+84 24 3936 1234"}
    assert parse_contact("Nguyễn Văn An 0912345678") == {"name": "Nguyễn Văn An", "phone": "0912345678"}
    assert parse_contact("Phòng Công nghệ thông tin") == {"name": "Phòng Công nghệ thông tin"}
    for bad in ("<an@bhxh.gov.vn>", "An <not an email>", ""):
        with pytest.raises(UserError, match="--contact"):
            parse_contact(bad)
    assert parse_role("consumer") == {"role": "consumer"}
    assert parse_role("owner:telecom.subscriber, population.citizen") == \
        {"role": "owner", "datasets": ["telecom.subscriber", "population.citizen"]}
    assert parse_role("steward:*") == {"role": "steward", "datasets": ["*"]}
    with pytest.raises(UserError, match="--role 'owner:'"):
        parse_role("owner:")


def test_a_bad_row_filter_is_one_line_before_anything_is_sent() -> None:
    result = gsp("subscription", "request", *REQUEST[:4], "--where", "carrier", *REQUEST[6:],
                 env={"GSP_API_URL": "http://127.0.0.1:1", "GSP_TOKEN": ""})
    assert one_line_error(result) == "gsp: error: --where 'carrier' must look like FIELD=V1,V2"


def test_the_admin_token_file_is_private(services: ControlServices) -> None:
    path = services.admin_token_file
    assert isinstance(path, Path) and path.stat().st_mode & 0o777 == 0o600


def test_a_request_past_its_deadline_reads_overdue_in_the_list() -> None:
    def version(n: int, state: str, *, overdue: bool = False) -> dict[str, object]:
        return {"version": n, "state": state, "due_at": f"2027-01-0{n}T10:00:00Z", "overdue": overdue}

    waiting = {"subscription_id": "a-b:telecom.subscriber", "state": "requested", "active_version": 1,
               "topic": "share.a-b.telecom.subscriber.v1", "versions": [version(1, "active"),
                                                                        version(2, "requested", overdue=True)]}
    assert subscription._row(waiting) == ["a-b:telecom.subscriber", "requested", "v1", "v2 requested",
                                          "2027-01-02T10:00:00Z OVERDUE", "share.a-b.telecom.subscriber.v1"]
    assert subscription._status(waiting) == "version 1 active, version 2 requested"
    ended = {**waiting, "state": "refused", "active_version": None,
             "versions": [version(1, "superseded"), version(2, "expired"), version(3, "refused")]}
    assert subscription._row(ended)[2:5] == [None, "v3 refused", None]
    assert subscription._status(ended) == "version 2 expired, version 3 refused"
