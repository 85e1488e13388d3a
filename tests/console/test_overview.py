"""The console's overview and dataset pages in Chromium on the demo: a card per dataset with its four scores ("đúng,
đủ, sạch, sống") as the API gives them and a sparkline each; a card opens its dataset's heat map and worst rules."""

from __future__ import annotations

import json
import re
import urllib.request
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, console_errors, expect_console_error, screenshot, sign_in

DIMENSIONS = ["correct", "complete", "clean", "live"]
PERCENT = re.compile(r"^\d{1,3}(,\d)?%$")  # Vietnamese: "97,3%"


def quality(console: Console, path: str = "") -> Any:
    request = urllib.request.Request(f"{console.base}/api/quality{path}",
                                     headers={"Authorization": f"Bearer {console.credentials['steward']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def expected_percent(score: float) -> str:
    """What the page shows for a score in Vietnamese, to one decimal, halves up (Chromium's vi-VN percent: "97,3%")."""
    text = f"{(Decimal(str(score)) * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}"
    return text.removesuffix(".0").replace(".", ",") + "%"


def test_the_overview_shows_every_dataset_of_the_demo_with_four_scores_and_sparklines(browser_page: Page,
                                                                                       console: Console) -> None:
    demo = console.summary["quality"]
    assert demo, "the demo scored no dataset"
    sign_in(browser_page, "steward", path="/overview")
    cards = browser_page.locator("#page-overview article.quality-card")
    expect(cards.first).to_be_visible()
    listed = quality(console)
    assert cards.count() == len(listed) and set(demo) <= {c["dataset"] for c in listed}

    for name in demo:
        card = browser_page.locator(f'#page-overview article.quality-card[data-id="{name}"]')
        api = next(c for c in listed if c["dataset"] == name)
        for dimension in DIMENSIONS:
            box = card.locator(f'.score-box[data-dimension="{dimension}"]')
            score = box.locator(".score")
            text = score.inner_text().strip()
            assert PERCENT.match(text), (name, dimension, text)
            if api["scores"][dimension] is not None:
                assert text == expected_percent(api["scores"][dimension]), (name, dimension, text)
            assert re.search(r"\b(ok|warn|bad)\b", score.get_attribute("class") or ""), (name, dimension)
            spark = box.locator("svg.spark")
            expect(spark).to_have_count(1)
            assert spark.locator("polyline, circle").count() >= 1, (name, dimension)
        held = card.locator("[data-action=quarantine]")
        expect(held).to_have_text(f"{api['quarantine']} đang mở")
        if api["quarantine"]:  # a steward follows it to the dataset's quarantine
            expect(held).to_have_attribute("href", f"#/quarantine?dataset={name}")
        expect(card.locator("[data-action=review]")).to_have_text(f"{api['review']} đang mở")
        expect(card.locator("dl.freshness")).to_contain_text(f"cập nhật trong {api['freshness']['freshness_days']:g} ngày")
    screenshot(browser_page, "overview")

    name = next(iter(demo))
    browser_page.locator(f'#page-overview article.quality-card[data-id="{name}"] a[data-action=open-dataset]').click()
    expect(browser_page).to_have_url(re.compile(rf"#/dataset/{re.escape(name)}$"))
    heat = browser_page.locator("#page-dataset table#heatmap")
    expect(heat).to_be_visible()
    detail = quality(console, f"/{name}")
    fields = [row["field"] for row in detail["matrix"]["fields"]]
    rows = heat.locator("tbody tr")
    expect(rows).to_have_count(len(fields))
    assert [r.get_attribute("data-id") for r in rows.all()] == fields
    shaded = heat.locator("td.cell[class*=heat-]:not(.heat-none)")
    assert shaded.count() == sum(1 for row in detail["matrix"]["fields"] for c in row["cells"].values() if c)
    first = detail["matrix"]["fields"][0]
    for dimension, cell in first["cells"].items():
        if cell:
            level = min(10, int(cell["score"] * 10 + 1e-9))
            expect(heat.locator(f'tr[data-id="{first["field"]}"] td[data-dimension="{dimension}"]')).to_have_class(
                re.compile(rf"\bheat-{level}\b"))
    if detail["worst_rules"]:
        expect(browser_page.locator("#worst-rules tbody tr")).to_have_count(len(detail["worst_rules"]))
        expect(browser_page.locator("#worst-rules tbody tr").first).to_have_attribute("data-id", detail["worst_rules"][0]["rule"])
    expect(browser_page.locator("#dataset-quarantine")).to_have_attribute("href", f"#/quarantine?dataset={name}")
    screenshot(browser_page, "dataset")
    assert console_errors(browser_page) == []


def test_the_dataset_page_of_an_unknown_dataset_shows_the_apis_message(browser_page: Page) -> None:
    expect_console_error(browser_page, r"status of 404")
    sign_in(browser_page, "ops", path="/dataset/no.such")
    expect(browser_page.locator("#main .error")).to_contain_text("no dataset 'no.such'")
