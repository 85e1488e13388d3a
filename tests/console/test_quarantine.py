"""The Quarantine page in Chromium: filters from the hash, the original beside the reason, release with a fix
(the record goes through cleaning, matching and sharing again), discard with a reason, the API's errors shown."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, expect_console_error, screenshot, sign_in

SUBSCRIBERS = "telecom.subscriber"
CARRIERS = ("Viettel", "VinaPhone")  # C06's subscription shares only these carriers' subscribers
FIXED = {"subscriber_name": "full_name", "birth_date": "birth_date"}  # a subscriber's field -> the registry column


def api(console: Console, method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(console.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def who(console: Console, role: str) -> str:
    me = api(console, "GET", "/api/whoami", console.credentials[role])
    return f"{me['agency']}#{me['key_id']}"


def shared(console: Console, dataset: str, found: Any, *, timeout_s: float = 120.0) -> dict[str, Any]:
    """The first event of C06's subscription to ``dataset`` (read through its record feed) for which ``found``
    holds, waiting for the worker to deliver it."""
    sid = next(s["subscription_id"] for s in console.summary["subscriptions"]
               if s["agency"] == console.agencies["consumer"] and s["dataset"] == dataset)
    token, cursor = console.credentials["consumer"], ""
    deadline = time.monotonic() + timeout_s
    while True:
        page = api(console, "GET", f"/api/subscriptions/{sid}/records?limit=1000"
                   + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""), token)
        cursor = page["next_cursor"]
        for record in page["records"]:
            if "event" in record and found(record["event"]):
                return dict(record["event"])
        if not page["more"]:
            assert time.monotonic() < deadline, f"nothing delivered to {sid} in {timeout_s:.0f} s"
            time.sleep(1.0)


def _open_items(console: Console, query: str = "") -> list[dict[str, Any]]:
    return list(api(console, "GET", f"/api/quarantine?limit=1000{query}", console.credentials["steward"]))


def _citizen(console: Console, personal_id: str) -> dict[str, Any] | None:
    """The demo's population registry row of a personal id, from its source database (what the generator wrote)."""
    with contextlib.closing(sqlite3.connect(console.workdir / "sources.db")) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM citizen WHERE personal_id = ?", (personal_id,)).fetchone()
    return dict(row) if row is not None else None


def test_a_steward_releases_a_quarantined_record_with_a_fix_and_it_is_delivered_cleaned(browser_page: Page,
                                                                                        console: Console) -> None:
    page, token = browser_page, console.credentials["steward"]
    # A Viettel/VinaPhone subscriber (C06 receives those) held back for its name or birth date, whose citizen the
    # registry holds: fixed to the registry's value, it must come out MATCHED and be delivered.
    held_citizens = {i["source_key"] for i in _open_items(console, "&dataset=population.citizen&status=all")}
    pick: dict[str, Any] | None = None
    fix = ""
    for item in _open_items(console, f"&dataset={SUBSCRIBERS}"):
        if item["field"] not in FIXED:
            continue
        shown = api(console, "GET", f"/api/quarantine/{item['event_id']}", token)
        record = shown["original"]["value"]
        if not isinstance(record, dict) or record.get("carrier") not in CARRIERS or record.get("id_number") in held_citizens:
            continue
        citizen = _citizen(console, str(record.get("id_number")))
        if citizen is not None and citizen["status"] == "ALIVE":
            pick, fix = shown, citizen[FIXED[item["field"]]]
            break
    assert pick is not None, "the demo quarantined no Viettel/VinaPhone subscriber whose name or birth date can be fixed"
    rule, field, event_id = pick["rule"], pick["field"], pick["event_id"]
    same_rule = [i["event_id"] for i in _open_items(console, f"&dataset={SUBSCRIBERS}&rule={urllib.parse.quote(rule)}")]

    # Another page links here with filters in the hash: the page reads them and lists only those items.
    sign_in(page, "steward", path=f"/quarantine?dataset={SUBSCRIBERS}&rule={urllib.parse.quote(rule)}")
    expect(page.locator("#quarantine-filter-dataset")).to_have_value(SUBSCRIBERS)
    expect(page.locator("#quarantine-filter-rule")).to_have_value(rule)
    expect(page.locator("#quarantine-list tbody tr[data-id]")).to_have_count(len(same_rule))
    assert sorted(page.locator("#quarantine-list tbody tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)")) == sorted(same_rule)

    # The original record decoded, beside the reason and the rule.
    page.locator(f'#quarantine-list tr[data-id="{event_id}"]').click()
    expect(page.locator(f'#quarantine-list tr[data-id="{event_id}"]')).to_have_class(re.compile("selected"))
    expect(page.locator("#quarantine-item-reason")).to_have_text(pick["reason"])
    expect(page.locator("#quarantine-item-rule")).to_have_text(rule)
    expect(page.locator(f'#quarantine-original tr[data-path="{field}"]')).to_have_class(re.compile("flagged"))
    expect(page.locator('#quarantine-original tr[data-path="carrier"]')).to_contain_text(pick["original"]["value"]["carrier"])
    expect(page.locator("#fix-field-0")).to_have_value(field)  # the flagged field, ready to be fixed

    # A fix the API refuses: its one-line message, and the item stays open.
    expect_console_error(page, r"status of 422")
    page.fill("#fix-field-0", "no_such_field")
    page.fill("#fix-value-0", "x")
    page.locator('[data-action="release"]').click()
    expect(page.locator("#quarantine-action-error")).to_contain_text("unknown field 'no_such_field'")
    assert api(console, "GET", f"/api/quarantine/{event_id}", token)["status"] == "open"

    page.fill("#fix-field-0", field)
    page.fill("#fix-value-0", fix)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "quarantine")
    page.locator('[data-action="release"]').click()

    # Released by the signed-in steward, shown in the item's history.
    steward = who(console, "steward")
    expect(page.locator("#quarantine-history")).to_contain_text(steward)
    released = api(console, "GET", f"/api/quarantine/{event_id}", token)
    assert released["status"] == "released" and released["resolved_by"] == steward, released
    assert released["released_event_id"] and field in released["resolution"], released
    assert not page.locator('[data-action="release"]').count()

    # Back through cleaning, matching and sharing: C06 receives the released version of the record.
    version = f"{pick['source_version']}+release1"
    event = shared(console, SUBSCRIBERS, lambda e: e["header"]["source_key"] == pick["source_key"]
                   and e["header"]["source_version"] == version)
    assert event["verdict"] == "MATCHED" and event["personal_id"] == pick["original"]["value"]["id_number"], event
    if field == "subscriber_name":
        assert event["subscriber_name"] == fix, event
    # It did not come back to quarantine.
    again = [i for i in _open_items(console, f"&dataset={SUBSCRIBERS}") if i["source_version"] == version
             and i["source_key"] == pick["source_key"]]
    assert again == []


def test_a_steward_discards_a_record_with_a_reason(browser_page: Page, console: Console) -> None:
    page, token = browser_page, console.credentials["steward"]
    items = _open_items(console)
    assert items, "the demo quarantined nothing"
    pick = items[-1]
    sign_in(page, "steward", path="/quarantine")
    expect(page.locator("#page-quarantine h1")).to_have_text("Bản ghi bị cách ly")
    row = page.locator(f'#quarantine-list tr[data-id="{pick["event_id"]}"]')
    row.click()
    expect(page.locator("#quarantine-item-reason")).to_have_text(pick["reason"])

    # No reason, no discard.
    page.locator('[data-action="discard"]').click()
    expect(page.locator("#quarantine-action-error")).to_have_text("Cần nhập lý do để loại bỏ.")
    assert api(console, "GET", f"/api/quarantine/{pick['event_id']}", token)["status"] == "open"

    reason = "Bản ghi trùng lặp, đã có bản đúng từ nhà mạng"
    page.fill("#quarantine-discard-reason", reason)
    page.locator('[data-action="discard"]').click()
    steward = who(console, "steward")
    expect(page.locator("#quarantine-history")).to_contain_text(f"đã loại bỏ bởi {steward}")
    expect(page.locator("#quarantine-history")).to_contain_text(reason)
    expect(row).to_have_count(0)  # no longer in the open list
    discarded = api(console, "GET", f"/api/quarantine/{pick['event_id']}", token)
    assert (discarded["status"], discarded["resolution"], discarded["resolved_by"]) == ("discarded", reason, steward)

    # The closed items are still there under their status.
    page.select_option("#quarantine-filter-status", "discarded")
    expect(page.locator(f'#quarantine-list tr[data-id="{pick["event_id"]}"]')).to_contain_text("đã loại bỏ")
    assert "status=discarded" in page.url


def test_a_date_filter_the_api_refuses_shows_its_message(console: Console) -> None:
    try:
        api(console, "GET", "/api/quarantine?date=yesterday", console.credentials["steward"])
    except urllib.error.HTTPError as exc:
        assert exc.code == 422 and "YYYY-MM-DD" in json.loads(exc.read())["error"]
    else:
        raise AssertionError("a date that is not a day was accepted")
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 7 * 3600))
    assert api(console, "GET", f"/api/quarantine?status=all&date={today}", console.credentials["steward"])
    assert api(console, "GET", "/api/quarantine?status=all&date=2000-01-01", console.credentials["steward"]) == []
