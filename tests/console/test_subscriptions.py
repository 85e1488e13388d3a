"""The console's subscriptions page in Chromium on the demo: the data owner sees a consumer's request with its
fields, row filter, purpose, legal basis and the time left to answer, approves it on the page, and the records
flow to the new subscription (read back through the pull feed); a consumer sees its own subscriptions and gets
the API's refusal, never the data, for another agency's."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, expect_console_error, screenshot, sign_in

FLOW_TIMEOUT_S = 90.0


def call(console: Console, role: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {console.credentials[role]}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(console.base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def one(sid: str) -> str:
    return f"/api/subscriptions/{urllib.parse.quote(sid, safe='')}"


def test_the_owner_approves_a_request_on_the_page_and_the_records_flow(browser_page: Page, console: Console) -> None:
    name = f"console-{uuid.uuid4().hex[:6]}"
    purpose = "Kiểm tra bảng điều khiển: đối soát thuê bao Viettel"
    status, asked = call(console, "consumer", "POST", "/api/subscriptions", {
        "dataset": "telecom.subscriber", "name": name, "fields": ["msisdn", "carrier", "verdict"],
        "row_filter": {"carrier": ["Viettel"]}, "purpose": purpose, "legal_basis": "Luật Viễn thông 2023",
        "backfill": True})
    assert status == 201, asked
    sid, version = asked["subscription_id"], asked["latest_version"]
    assert asked["latest_state"] == "requested"

    sign_in(browser_page, "owner", path="/subscriptions")
    row = browser_page.locator(f'#subscriptions-waiting tr[data-id="{sid}"][data-version="{version}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("msisdn, carrier, verdict")
    expect(row).to_contain_text("carrier ∈ {Viettel}")
    expect(row).to_contain_text(purpose)
    expect(row).to_contain_text("Luật Viễn thông 2023")
    expect(row.locator(".deadline")).to_contain_text("ngày làm việc")  # the time left, in Vietnamese by default
    expect(row.locator(".deadline")).not_to_have_attribute("data-overdue", "true")
    # Below, every subscription to the owner's datasets, as the API lists them for the owner.
    status, owned = call(console, "owner", "GET", "/api/subscriptions")
    assert status == 200
    listed = browser_page.locator("#subscriptions-list tbody tr")
    expect(listed).to_have_count(len(owned))
    assert listed.evaluate_all("rows => rows.map(r => r.dataset.id)") == [s["subscription_id"] for s in owned]
    screenshot(browser_page, "subscriptions")

    # Refusing needs a written reason: the API says so in the row, the request stays.
    expect_console_error(browser_page, r"status of 422")
    row.locator("[data-action=refuse]").click()
    expect(row.locator(".error")).to_contain_text("reason")
    row.locator("[data-action=reason]").fill("Đủ điều kiện theo Luật Viễn thông 2023")
    row.locator("[data-action=approve]").click()
    expect(row).to_have_count(0)
    expect(browser_page.locator(f'#subscriptions-list tr[data-id="{sid}"]')).to_have_attribute("data-state", "active")

    status, shown = call(console, "consumer", "GET", one(sid))
    assert status == 200 and shown["state"] == "active" and shown["active_version"] == version, shown
    decided = shown["versions"][-1]
    assert decided["reason"] == "Đủ điều kiện theo Luật Viễn thông 2023"
    assert decided["decided_by"].startswith(console.agencies["owner"] + "#"), decided

    # The data flows: the back-filled records reach the new subscription's share topic, read through its pull feed.
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while not records and time.monotonic() < deadline:
        status, page = call(console, "consumer", "GET", f"{one(sid)}/records?limit=50")
        assert status == 200, page
        records = [r["event"] for r in page["records"] if "event" in r]
        if not records:
            time.sleep(1.0)
    assert records, f"no record reached {sid} within {FLOW_TIMEOUT_S:.0f} s of its approval"
    assert {r["carrier"] for r in records} == {"Viettel"}
    assert all(set(r) >= {"msisdn", "carrier", "verdict"} and "subscriber_name" not in r for r in records), records[0]

    # The detail view shows the version the owner approved, with the reason, in English too.
    browser_page.select_option("#lang", "en")
    browser_page.goto(f"{console.url}#/subscriptions?id={urllib.parse.quote(sid)}")
    version_row = browser_page.locator(f'#subscription-versions tr[data-id="{version}"]')
    expect(version_row).to_have_attribute("data-state", "active")
    expect(version_row).to_contain_text("Đủ điều kiện theo Luật Viễn thông 2023")
    expect(browser_page.locator("#page-subscriptions h1")).to_contain_text("active")
    screenshot(browser_page, "subscriptions-detail")


def test_a_consumer_sees_its_own_subscriptions_and_only_a_refusal_for_another_agencys(browser_page: Page,
                                                                                    console: Console) -> None:
    status, mine = call(console, "consumer", "GET", "/api/subscriptions")
    assert status == 200 and mine, mine
    status, theirs = call(console, "other_consumer", "GET", "/api/subscriptions")
    assert status == 200 and theirs, theirs
    other = theirs[0]
    assert other["agency"] != console.agencies["consumer"]

    sign_in(browser_page, "consumer", path="/subscriptions")
    rows = browser_page.locator("#subscriptions-list tbody tr")
    expect(rows).to_have_count(len(mine))
    for s in mine:
        expect(browser_page.locator(f'#subscriptions-list tr[data-id="{s["subscription_id"]}"]')).to_have_attribute(
            "data-state", s["state"])
    expect(browser_page.locator("#subscriptions-waiting")).to_have_count(0)  # a consumer decides nothing

    # Its own subscription opens, with every version.
    own = mine[0]
    browser_page.locator(f'#subscriptions-list tr[data-id="{own["subscription_id"]}"] a[data-action=open]').click()
    expect(browser_page.locator("#subscription-versions tbody tr")).to_have_count(len(own["versions"]))
    expect(browser_page.locator(".subscription-facts")).to_contain_text(own["topic"])

    # Another agency's: the API refuses (its 404 is the console error Chromium logs), the page shows the refusal.
    expect_console_error(browser_page, r"status of (403|404)")
    browser_page.goto(f"{console.url}#/subscriptions?id={urllib.parse.quote(other['subscription_id'])}")
    refused = browser_page.locator("#subscription-refused .error")
    expect(refused).to_be_visible()
    assert refused.get_attribute("data-status") in ("403", "404")
    status, answer = call(console, "consumer", "GET", one(other["subscription_id"]))
    assert status in (403, 404) and refused.inner_text() == answer["error"], answer
    page_text = browser_page.locator("#page-subscriptions").inner_text()
    purpose = other["versions"][-1]["purpose"]
    assert purpose not in page_text and other["topic"] not in page_text
    expect(browser_page.locator("#subscription-versions")).to_have_count(0)
    screenshot(browser_page, "subscriptions-refused")


def test_a_consumer_requests_a_subscription_on_the_page(browser_page: Page, console: Console) -> None:
    name = f"form-{uuid.uuid4().hex[:6]}"
    sign_in(browser_page, "consumer", path="/subscriptions")
    browser_page.locator("#subscriptions-request summary").click()
    browser_page.select_option("#subscriptions-new-dataset", "telecom.subscriber")
    expect(browser_page.locator("#subscriptions-new-fields")).to_have_attribute("data-dataset", "telecom.subscriber")
    browser_page.fill("#subscriptions-new-name", name)
    browser_page.fill("#subscriptions-new-purpose", "Xác minh chủ thuê bao")
    browser_page.fill("#subscriptions-new-legal", "Luật Viễn thông 2023")

    # No field chosen: the API's message under the form, nothing requested.
    expect_console_error(browser_page, r"status of 400")
    browser_page.click("#subscriptions-new [data-action=request]")
    expect(browser_page.locator("#subscriptions-new-error")).to_contain_text("fields")

    for field in ("msisdn", "carrier"):
        browser_page.check(f'#subscriptions-new-fields input[value="{field}"]')
    browser_page.fill("#subscriptions-new-filter", "carrier=MobiFone")
    screenshot(browser_page, "subscriptions-request")
    browser_page.click("#subscriptions-new [data-action=request]")
    version_row = browser_page.locator('#subscription-versions tr[data-id="1"]')
    expect(version_row).to_have_attribute("data-state", "requested")
    sid = browser_page.locator(".subscription-facts").get_attribute("data-id")
    assert sid is not None and sid.endswith(f":telecom.subscriber:{name}"), sid
    status, shown = call(console, "consumer", "GET", one(sid))
    assert status == 200, shown
    [asked] = shown["versions"]
    assert (asked["fields"], asked["row_filter"], asked["purpose"], asked["legal_basis"], asked["backfill"]) == (
        ["msisdn", "carrier"], {"carrier": ["MobiFone"]}, "Xác minh chủ thuê bao", "Luật Viễn thông 2023", False)
    expect(version_row.locator(".deadline")).to_contain_text("ngày làm việc")
