"""The Review page in Chromium: the proposed pair beside the registry entry, field by field as the matcher saw it;
accept with the keyboard (the record is delivered MATCHED), reject only with a reason; shortcuts never fire while
the steward types."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, screenshot, sign_in
from tests.console.test_quarantine import CARRIERS, SUBSCRIBERS, api, shared, who


def _open(console: Console) -> list[dict[str, Any]]:
    return list(api(console, "GET", f"/api/review?dataset={SUBSCRIBERS}&limit=1000", console.credentials["steward"]))


def _detail(console: Console, item_id: str) -> dict[str, Any]:
    return dict(api(console, "GET", f"/api/review/{item_id}", console.credentials["steward"]))


def _selected(page: Page, item_id: str) -> None:
    expect(page.locator(f'#review-queue tr[data-id="{item_id}"]')).to_have_class(re.compile("selected"))
    expect(page.locator("#review-detail h2")).to_contain_text("↔")


def test_a_steward_accepts_a_pair_with_the_keyboard_and_the_record_is_delivered_matched(browser_page: Page,
                                                                                        console: Console) -> None:
    page = browser_page
    queue = _open(console)
    at, pick = 0, None
    for at, item in enumerate(queue):  # at: the pick's place in the queue
        shown = _detail(console, item["item_id"])
        if shown["record"]["value"].get("carrier") in CARRIERS:
            pick = shown
            break
    assert pick is not None, "the demo proposed no Viettel/VinaPhone subscriber for review"
    # The API lines the pair up with the registry entry, field by field, as the matcher compared them.
    assert pick["registry"] and pick["registry"]["personal_id"] == pick["personal_id"], pick.get("registry_error")
    rows = {row["field"]: row for row in pick["fields"]}
    assert {"personal_id", "full_name", "birth_date"} <= set(rows)
    assert rows["full_name"]["record"] == pick["record"]["value"]["subscriber_name"]
    assert any(row["levels"] for row in pick["fields"]) and pick["levels"]

    sign_in(page, "steward", path=f"/review?dataset={SUBSCRIBERS}")
    expect(page.locator("#review-filter-dataset")).to_have_value(SUBSCRIBERS)
    expect(page.locator("#review-queue tbody tr[data-id]")).to_have_count(len(queue))
    _selected(page, queue[0]["item_id"])
    for _ in range(at):
        page.keyboard.press("j")
    if at:
        page.keyboard.press("k")
        _selected(page, queue[at - 1]["item_id"])
        page.keyboard.press("j")
    _selected(page, pick["item_id"])

    detail = page.locator("#review-detail")
    expect(detail.locator("h2")).to_have_text(f"{pick['source_key']} ↔ {pick['personal_id']}")
    expect(page.locator("#review-probability")).to_contain_text(f"{pick['probability'] * 100:.1f}%")
    name = detail.locator('#review-compare tr[data-field="full_name"]')
    expect(name.locator(".record-value")).to_have_text(str(rows["full_name"]["record"]))
    expect(name.locator(".registry-value")).to_have_text(str(rows["full_name"]["registry"]))
    for comparison, level in rows["full_name"]["levels"].items():
        expect(name.locator(".levels")).to_contain_text(f"{comparison}: {level}")
    expect(detail.locator('#review-compare tr[data-field="personal_id"] .registry-value')).to_have_text(pick["personal_id"])

    # ? shows the shortcuts, Escape hides them.
    page.keyboard.press("?")
    expect(page.locator("#review-shortcuts")).to_be_visible()
    expect(page.locator("#review-shortcuts")).to_contain_text("chấp nhận cặp")
    page.keyboard.press("Escape")
    expect(page.locator("#review-shortcuts")).to_be_hidden()

    # Typing in the reason field is typing, not a shortcut.
    page.locator("#review-reason").click()
    page.keyboard.type("a j k r")
    expect(page.locator("#review-reason")).to_have_value("a j k r")
    _selected(page, pick["item_id"])
    assert _detail(console, pick["item_id"])["status"] == "open"
    page.fill("#review-reason", "")
    page.keyboard.press("Escape")  # leaves the field
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "review")

    page.keyboard.press("a")
    expect(page.locator(f'#review-queue tr[data-id="{pick["item_id"]}"]')).to_have_count(0)
    steward = who(console, "steward")
    accepted = _detail(console, pick["item_id"])
    assert (accepted["status"], accepted["decided_by"]) == ("accepted", steward), accepted
    # The next pair is selected for the steward's next decision.
    if len(queue) > 1:
        expect(page.locator("#review-queue tr.selected")).to_have_count(1)

    # Delivered to C06's subscription as MATCHED with the accepted person.
    event = shared(console, SUBSCRIBERS, lambda e: e["header"]["source_key"] == pick["source_key"]
                   and e.get("verdict") == "MATCHED")
    assert event["personal_id"] == pick["personal_id"], event


def test_rejecting_a_pair_needs_a_reason(browser_page: Page, console: Console) -> None:
    page = browser_page
    queue = _open(console)
    assert queue, "no proposed match left to review"
    pick = queue[-1]
    sign_in(page, "steward", path=f"/review?dataset={SUBSCRIBERS}")
    page.locator(f'#review-queue tr[data-id="{pick["item_id"]}"]').click()
    _selected(page, pick["item_id"])

    page.keyboard.press("r")
    expect(page.locator("#review-reason")).to_be_focused()
    expect(page.locator("#review-reason")).to_have_value("")  # the key focused the field; it typed nothing
    page.keyboard.press("Enter")
    expect(page.locator("#review-error")).to_have_text("Cần nhập lý do để từ chối.")
    assert _detail(console, pick["item_id"])["status"] == "open"

    reason = "Khác người: ngày sinh và tên đệm không khớp"
    page.keyboard.type(reason)
    page.keyboard.press("Enter")
    expect(page.locator(f'#review-queue tr[data-id="{pick["item_id"]}"]')).to_have_count(0)
    rejected = _detail(console, pick["item_id"])
    assert (rejected["status"], rejected["reason"], rejected["decided_by"]) == ("rejected", reason, who(console, "steward"))

    # The decided pair under its status, with who decided and why.
    page.select_option("#review-filter-status", "rejected")
    page.locator(f'#review-queue tr[data-id="{pick["item_id"]}"]').click()
    expect(page.locator("#review-decided")).to_contain_text(who(console, "steward"))
    expect(page.locator("#review-decided")).to_contain_text(reason)
