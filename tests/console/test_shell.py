"""The console's shell in Chromium: sign-in, menus by role, language, headers, sign-out; and the demo serving it."""

from __future__ import annotations

import http.client
import json
import re
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gsp.console import STATIC
from tests.console.conftest import Console, console_errors, expect_console_error, screenshot, sign_in

ROLES = ["admin", "steward", "owner", "consumer", "other_consumer", "ops", "portal"]


def _get(console: Console, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(console.base + path,
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _menus() -> dict[str, tuple[bool, list[str]]]:
    """Each page module's id -> (in the menu, roles), read from the modules the shell imports."""
    found = {}
    for module in sorted((STATIC / "pages").glob("*.js")):
        text = module.read_text(encoding="utf-8")
        page_id = re.search(r'export const id = "([a-z_-]+)"', text)
        menu = re.search(r"export const menu = (true|false)", text)
        roles = re.search(r"export const roles = \[([^\]]*)\]", text)
        assert page_id and menu and roles, f"{module.name} exports id, menu and roles"
        found[page_id[1]] = (menu[1] == "true", re.findall(r'"([a-z_]+)"', roles[1]))
    return found


def test_the_demo_writes_a_credential_per_role_readable_by_its_owner_only(console: Console,
                                                                           credentials: dict[str, str]) -> None:
    assert stat.S_IMODE(console.credentials_file.stat().st_mode) == 0o600
    assert console.credentials_file.parent == console.workdir
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/console", console.url)
    assert set(ROLES) <= set(credentials)
    for role in ROLES:
        status, _, body = _get(console, "/api/whoami", credentials[role])
        assert status == 200, (role, body)
        who = json.loads(body)
        assert who["agency"] == console.agencies[role]
        assert [g["role"] for g in who["grants"]] == [role.removeprefix("other_")], who
    assert console.agencies["consumer"] != console.agencies["other_consumer"]
    owner = json.loads(_get(console, "/api/whoami", credentials["owner"])[2])
    assert "telecom.subscriber" in owner["grants"][0]["datasets"]
    steward = json.loads(_get(console, "/api/whoami", credentials["steward"])[2])
    assert steward["grants"][0]["datasets"] == ["*"]
    # Each consumer has an approved subscription of its own.
    for role in ("consumer", "other_consumer"):
        status, _, body = _get(console, "/api/subscriptions", credentials[role])
        assert status == 200, body
        listed = json.loads(body)
        items = listed["subscriptions"] if isinstance(listed, dict) else listed
        assert any(s["agency"] == console.agencies[role] for s in items), items


def test_the_shell_loads_without_console_errors(browser_page: Page, console: Console) -> None:
    browser_page.goto(console.url)
    expect(browser_page.locator("#token")).to_be_visible()
    expect(browser_page.locator("html")).to_have_attribute("lang", "vi")
    expect(browser_page.locator("#signin h1")).to_have_text("Đăng nhập")
    expect(browser_page.locator("#signout")).to_be_hidden()
    expect(browser_page.locator("#nav a")).to_have_count(0)
    screenshot(browser_page, "signin")
    assert console_errors(browser_page) == []


def test_a_wrong_token_shows_the_apis_error_and_stays_signed_out(browser_page: Page, console: Console) -> None:
    wrong = "gsp_0123456789abcdef_" + "A" * 43
    status, _, body = _get(console, "/api/whoami", wrong)
    assert status == 401
    message = json.loads(body)["error"]
    expect_console_error(browser_page, r"status of 401")
    browser_page.goto(console.url)
    browser_page.fill("#token", wrong)
    browser_page.locator("#signin button[type=submit]").click()
    expect(browser_page.locator("#signin .error")).to_have_text(message)
    expect(browser_page.locator("#signout")).to_be_hidden()
    assert browser_page.evaluate("sessionStorage.getItem('gsp.token')") is None
    assert any("status of 401" in e for e in console_errors(browser_page))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_only_its_menu_entries(browser_page: Page, role: str) -> None:
    expected = [page_id for page_id, (menu, roles) in _menus().items() if menu and role.removeprefix("other_") in roles]
    sign_in(browser_page, role)
    expect(browser_page.locator("#who")).to_contain_text(role.removeprefix("other_"))
    links = browser_page.locator("#nav a")
    expect(links).to_have_count(len(expected))
    shown = sorted(link.get_attribute("id") or "" for link in links.all())
    assert shown == sorted(f"nav-{p}" for p in expected)
    # Pages outside the role's menu say so instead of asking the API.
    for page_id, (menu, roles) in _menus().items():
        if menu and role.removeprefix("other_") not in roles:
            browser_page.goto(f"{browser_page.url.split('#')[0]}#/{page_id}")
            expect(browser_page.locator("#forbidden")).to_be_visible()
            break


def test_the_language_switch_changes_the_text_and_survives_a_reload(browser_page: Page) -> None:
    sign_in(browser_page, "steward")
    signout = browser_page.locator("#signout")
    expect(signout).to_have_text("Đăng xuất")
    browser_page.select_option("#lang", "en")
    expect(signout).to_have_text("Sign out")
    expect(browser_page.locator("html")).to_have_attribute("lang", "en")
    expect(browser_page.locator(".brand")).to_have_text("GSP console")
    browser_page.reload()
    expect(signout).to_be_visible()  # the token is kept in the tab
    expect(signout).to_have_text("Sign out")
    expect(browser_page.locator("#lang")).to_have_value("en")
    browser_page.select_option("#lang", "vi")
    expect(signout).to_have_text("Đăng xuất")
    expect(browser_page.locator(".brand")).to_have_text("Bảng điều khiển GSP")
    browser_page.reload()
    expect(signout).to_have_text("Đăng xuất")


def test_the_console_is_served_with_a_strict_content_security_policy(browser_page: Page, console: Console) -> None:
    response = browser_page.goto(console.url)
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", csp
    assert directives["default-src"] == "'self'" and "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    status, headers, _ = _get(console, "/console/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert headers["Content-Security-Policy"] == csp


@pytest.mark.parametrize("path", ["/console/pages/../../x", "/console/pages/..%2F..%2Fx", "/console/pages/%2e%2e/app.js",
                                  "/console/../pyproject.toml", "/console/pages/nothing.js", "/console/index.html"])
def test_the_console_serves_nothing_outside_its_files(console: Console, path: str) -> None:
    host, port = urllib.parse.urlsplit(console.base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)  # sent as written: no client-side normalisation of the dots
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, (path, response.status, body[:200])
    assert b"[project]" not in body


def test_sign_out_forgets_the_token(browser_page: Page) -> None:
    sign_in(browser_page, "ops")
    assert browser_page.evaluate("sessionStorage.getItem('gsp.token')")
    browser_page.click("#signout")
    expect(browser_page.locator("#token")).to_be_visible()
    expect(browser_page.locator("#signout")).to_be_hidden()
    expect(browser_page.locator("#nav a")).to_have_count(0)
    expect(browser_page.locator("#who")).to_have_text("")
    assert browser_page.evaluate("sessionStorage.getItem('gsp.token')") is None
    browser_page.reload()
    expect(browser_page.locator("#token")).to_be_visible()
    expect(browser_page.locator("#signout")).to_be_hidden()


def test_screenshots_go_to_build(browser_page: Page, console: Console) -> None:
    browser_page.goto(console.url)
    expect(browser_page.locator("#token")).to_be_visible()
    path = screenshot(browser_page, "signin-check")
    assert path == Path(__file__).resolve().parents[2] / "build" / "screenshots" / "signin-check.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path.unlink()
