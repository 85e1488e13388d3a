"""Fixtures of the console's browser tests: a platform with demo data, a credential per role, a browser page.

    from tests.console.conftest import expect_console_error, screenshot, sign_in

    def test_release(browser_page: Page, console: Console) -> None:
        sign_in(browser_page, "steward")              # opens /console, pastes the steward's token, waits for the menu
        browser_page.click("#nav-quarantine")
        ...
        screenshot(browser_page, "quarantine")        # build/screenshots/quarantine.png

``console`` (session): `gsp demo --records 200 --keep-running --json` in its own GSP_HOME and workdir, started
once for the whole session (about 20 s), stopped with SIGTERM at the end. Its data are the demo's: quarantined
records, review items, seven approved subscriptions of the scenario's agencies, the audit ledger. Tests share it:
a test that changes something (releases a record, decides a review item, revokes a subscription) changes it for
the tests after it, so act on an item you picked and do not count on what another test may have changed.

``credentials`` (session): {role: token}: "admin", "steward" (every dataset), "ops", "portal", "owner" (the
owner of telecom.subscriber, the Cục Viễn thông), "owner:<dataset>" for every dataset, "consumer" (C06, approved
subscription to telecom.subscriber) and "other_consumer" (Vietnam Social Security, approved subscription to
population.event). ``console.agencies`` has each one's agency id, ``console.summary`` the demo's JSON summary.

``browser_page``: a fresh browser context (its own sessionStorage and localStorage) at 1366x768. The test FAILS
at teardown when the page logged a console error or threw: that includes Chromium's "Failed to load resource:
the server responded with a status of 403" for any API call that failed. A test that provokes one on purpose
says so first: ``expect_console_error(page, r"status of 401")``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

__all__ = ["CHROMIUM", "Console", "expect_console_error", "screenshot", "sign_in"]

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
READY = "gsp demo: ready; console at "
RECORDS = 200
START_TIMEOUT_S = 170.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Console:
    """The running demo: the console's address, its credentials and what the demo printed."""

    url: str                      # http://127.0.0.1:<port>/console
    base: str                     # http://127.0.0.1:<port>
    credentials: dict[str, str]   # role -> token
    agencies: dict[str, str]      # role -> agency id
    credentials_file: Path
    summary: dict[str, Any]       # the demo's --json summary
    home: Path
    workdir: Path


@dataclass
class _Watch:
    console: Console
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)


_WATCHED: dict[int, _Watch] = {}  # id(page) -> what the page logged


def _tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    return ""


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console-demo")
    home, workdir = root / "home", root / "workdir"
    stdout_path, stderr_path = root / "demo.out", root / "demo.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSP_")}  # the demo's own broker and databases
    env.update(GSP_HOME=str(home), PYTHONUNBUFFERED="1")
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gsp", "demo", "--records", str(RECORDS), "--keep-running", "--json",
             "--workdir", str(workdir)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True)  # the demo's own process group: a Ctrl-C of pytest does not reach its broker
    saved: dict[str, Any] = {}
    try:
        url = _wait_ready(process, stderr_path)
        summary = json.loads(stdout_path.read_text(encoding="utf-8").splitlines()[0])
        assert summary["console"]["url"] == url, summary.get("console")
        credentials_file = Path(summary["console"]["credentials_file"])
        saved = json.loads(credentials_file.read_text(encoding="utf-8"))
        yield Console(url=url, base=url.removesuffix("/console"), credentials=saved["tokens"],
                      agencies=saved["agencies"], credentials_file=credentials_file, summary=summary,
                      home=home, workdir=workdir)
    finally:
        _stop(process, stderr_path)
    # Stopped by SIGTERM: a clean exit (its counts agreed with the truth) and every console credential revoked.
    assert process.returncode == 0, f"gsp demo exited with status {process.returncode}:\n{_tail(stderr_path)}"
    _assert_revoked(home, saved.get("tokens", {}))


def _assert_revoked(home: Path, tokens: dict[str, str]) -> None:
    from gsp.governance.identity import IdentityStore, Unauthenticated
    from gsp.runtime.database import control_engine
    from schemas.settings import Settings

    engine = control_engine(Settings(home=home).resolved_database_url)
    try:
        store = IdentityStore(engine)
        for role, token in tokens.items():
            try:
                store.authenticate(token)
            except Unauthenticated as exc:
                assert "revoked" in str(exc), (role, str(exc))
            else:
                pytest.fail(f"the demo's {role} credential still works after the demo stopped", pytrace=False)
    finally:
        engine.dispose()


def _wait_ready(process: subprocess.Popen[bytes], stderr_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in stderr_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(READY):
                return line[len(READY):].strip()
        if process.poll() is not None:
            pytest.fail(f"gsp demo --keep-running exited with status {process.returncode} before it was ready:\n"
                        f"{_tail(stderr_path)}", pytrace=False)
        time.sleep(0.25)
    pytest.fail(f"gsp demo --keep-running was not ready in {START_TIMEOUT_S:.0f} s:\n{_tail(stderr_path)}", pytrace=False)


def _stop(process: subprocess.Popen[bytes], stderr_path: Path) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): the demo, broker and worker
        process.wait(timeout=10)
        pytest.fail(f"gsp demo did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM:\n{_tail(stderr_path)}",
                    pytrace=False)


@pytest.fixture(scope="session")
def credentials(console: Console) -> dict[str, str]:
    return console.credentials


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: Playwright's sync API keeps an event loop running on the main thread while it
    is open, and every later test that calls asyncio.run() would fail ("cannot be called from a running event loop")."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian package chromium (make test does)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=console.base)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch = _Watch(console)
    _WATCHED[id(page)] = watch

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            watch.errors.append(f"console error: {message.text}" + (f" ({where})" if where else ""))

    def on_page_error(error: Error) -> None:
        watch.errors.append(f"page error: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        yield page
    finally:
        _WATCHED.pop(id(page), None)
        context.close()
    unexpected = [e for e in watch.errors if not any(p.search(e) for p in watch.allowed)]
    if unexpected:
        pytest.fail("the page logged errors:\n  " + "\n  ".join(unexpected), pytrace=False)


def _watch(page: Page) -> _Watch:
    try:
        return _WATCHED[id(page)]
    except KeyError:
        raise AssertionError("not a browser_page fixture's page") from None


def expect_console_error(page: Page, pattern: str) -> None:
    """A console error this test provokes on purpose (a regular expression searched in the message)."""
    _watch(page).allowed.append(re.compile(pattern))


def console_errors(page: Page) -> list[str]:
    """The errors the page logged so far (allowed ones included)."""
    return list(_watch(page).errors)


def sign_in(page: Page, role: str | None = None, *, token: str | None = None, path: str = "") -> None:
    """Open /console (with ``path`` as its hash route, e.g. "/quarantine"), sign in with the role's token (or
    ``token``) and wait until the shell knows who signed in (the sign-out button shows, the menu is drawn)."""
    watch = _watch(page)
    if token is None:
        assert role is not None, "sign_in needs a role or a token"
        token = watch.console.credentials[role]
    page.goto(f"{watch.console.url}{'#' + path if path else ''}")
    page.fill("#token", token)
    page.locator("#signin button[type=submit]").click()
    page.wait_for_selector("#signout", state="visible")
    page.wait_for_selector("#nav", state="attached")


def screenshot(page: Page, name: str) -> Path:
    """build/screenshots/<name>.png of the page's viewport."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
