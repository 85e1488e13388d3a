"""The console's audit page in Chromium on the demo: the portal looks up a person the demo delivered and sees which
agencies received which fields, when, under which subscription, purpose and legal basis; admin and ops see the
audit ledger verified (chains, heads, no finding) and run the check again; each role sees only its part."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, expect_console_error, screenshot, sign_in


def call(console: Console, role: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(console.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {console.credentials[role]}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def delivered_person(console: Console) -> str:
    person = console.summary["audit"]["person_id"]
    assert person, "the demo delivered nobody to C06"
    return str(person)


def test_the_portal_sees_which_agencies_received_a_delivered_persons_data(browser_page: Page,
                                                                         console: Console) -> None:
    person = delivered_person(console)
    answer = call(console, "portal", "POST", "/api/audit/person", {"personal_id": person})
    assert answer["deliveries"], answer

    sign_in(browser_page, "portal", path="/audit")
    expect(browser_page.locator("#audit-verify-card")).to_have_count(0)  # the ledger check is admin's and ops'
    browser_page.fill("#audit-personal-id", person)
    browser_page.click("#audit-lookup")
    rows = browser_page.locator("#audit-deliveries tbody tr")
    expect(rows).to_have_count(len(answer["deliveries"]))
    for i, d in enumerate(answer["deliveries"]):
        row = rows.nth(i)
        assert row.get_attribute("data-agency") == d["agency"] and row.get_attribute("data-id") == d["subscription_id"]
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == d["agency"] and cells[1] == ", ".join(d["fields"]) and cells[2] == str(d["records"])
        assert cells[6] == d["purpose"] and cells[7] == d["legal_basis"] and cells[8] == d["channel"]
        assert f"v{d['version']}" in cells[5] and d["subscription_id"] in cells[5]
    c06 = console.agencies["consumer"].split("/", 2)[2].replace("/", "-")  # VN/GOV/bo-cong-an/c06 -> bo-cong-an-c06
    assert any(d["agency"] == c06 for d in answer["deliveries"]), answer["deliveries"]
    assert person not in browser_page.url  # the id went in the request's body, not the address
    screenshot(browser_page, "audit")

    # A malformed id: the API's one-line message under the form, no table.
    expect_console_error(browser_page, r"status of 422")
    browser_page.fill("#audit-personal-id", "12345678")
    browser_page.locator("#audit-personal-id").evaluate("input => input.removeAttribute('pattern')")
    browser_page.click("#audit-lookup")
    expect(browser_page.locator("#audit-person-error")).to_contain_text("personal_id")
    expect(browser_page.locator("#audit-deliveries")).to_have_count(0)


def test_admin_sees_the_ledger_verified_and_looks_up_a_person(browser_page: Page, console: Console) -> None:
    report = call(console, "admin", "GET", "/api/audit/verify")
    assert report["ok"] and report["chains"], report

    sign_in(browser_page, "admin", path="/audit")
    state = browser_page.locator("#audit-verify-state")
    expect(state).to_have_attribute("data-ok", "true")
    expect(state).to_contain_text("Hợp lệ")
    expect(browser_page.locator("#audit-chains")).to_have_text(str(len(report["chains"])))
    assert int(browser_page.locator("#audit-entries").inner_text()) >= sum(report["chains"].values())
    assert int(browser_page.locator("#audit-heads").inner_text()) >= report["heads"]
    expect(browser_page.locator("#audit-findings-count")).to_have_text("0")
    expect(browser_page.locator("#audit-findings")).to_have_count(0)

    # Run it again: the button asks the API anew (a second GET /api/audit/verify) and shows the answer.
    with browser_page.expect_response(lambda r: r.url.endswith("/api/audit/verify") and r.ok):
        browser_page.click("#audit-verify")
    expect(state).to_have_attribute("data-ok", "true")

    browser_page.fill("#audit-personal-id", delivered_person(console))
    browser_page.click("#audit-lookup")
    expect(browser_page.locator("#audit-deliveries tbody tr").first).to_be_visible()
    browser_page.evaluate("window.scrollTo(0, 0)")
    screenshot(browser_page, "audit-ledger")


def test_ops_sees_the_ledger_check_but_cannot_ask_about_a_person(browser_page: Page, console: Console) -> None:
    sign_in(browser_page, "ops", path="/audit")
    expect(browser_page.locator("#audit-verify-state")).to_have_attribute("data-ok", "true")
    expect(browser_page.locator("#audit-person")).to_have_count(0)
