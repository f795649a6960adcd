"""A real browser against a live server: Debian's Chromium driven by Playwright.

Chromium comes from the system (`apt-get install chromium`), never downloaded. Without it the
browser tests skip, except in CI (CI=true), where that is a failure. When a test fails, a
screenshot and the page's HTML are saved under `var/browser-artifacts/<test>/` (or
$BROWSER_ARTIFACTS_DIR) and the folder is printed in the test's report.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(
    os.environ.get(
        "BROWSER_ARTIFACTS_DIR",
        Path(__file__).resolve().parents[2] / "var" / "browser-artifacts",
    )
)
TIMEOUT_MS = 20_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # A sync runs inside the button's request in the embedded mode: give a loaded CI machine
    # time before an expectation gives up (Playwright's default is 5 s).
    expect.set_options(timeout=TIMEOUT_MS)

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's async-safety guard must not refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()
            # Connections opened while Playwright's loop ran belong to that context: close
            # them here, or the test database cannot be dropped at the end of the session.
            connections.close_all()


@pytest.fixture
def page(browser: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        if _failed(request.node):
            _save_artifacts(page, request.node)
        context.close()


def _failed(item: pytest.Item) -> bool:
    return any(
        getattr(item, f"report_{when}", None) is not None and getattr(item, f"report_{when}").failed
        for when in ("setup", "call")
    )


def _save_artifacts(page: Any, item: pytest.Item) -> None:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
        (folder / "page.html").write_text(page.content(), encoding="utf-8")
        (folder / "url.txt").write_text(page.url + "\n", encoding="utf-8")
    except Exception as exc:  # the page may be gone; say so rather than hide the test's failure
        (folder / "error.txt").write_text(f"could not capture the page: {exc}\n")
    print(f"\nbrowser artifacts (screenshot, HTML) of {item.nodeid}: {folder}", file=sys.stderr)


def login(page: Any, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
