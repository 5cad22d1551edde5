"""A real Chromium (Debian's package, driven by Playwright) against a real gunicorn.

The browser is never downloaded: Playwright starts the system's Chromium (`EHR_CHROMIUM`, default
/usr/bin/chromium). `.ci/run` installs it and sets EHR_REQUIRE_BROWSER=1, so a missing browser
fails CI; elsewhere the browser tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from e2e.conftest import Server, start_gunicorn, stop_gunicorn


def chromium_path() -> str | None:
    configured = os.environ.get("EHR_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        if os.environ.get("EHR_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (EHR_REQUIRE_BROWSER=1) but was not found: apt-get install chromium")
        pytest.skip("no Chromium on this machine (apt-get install chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def site(app, app_config, tmp_path_factory) -> Iterator[Server]:
    """The service under gunicorn (2 workers) for page tests."""
    proc, server = start_gunicorn(app_config, tmp_path_factory.mktemp("site") / "gunicorn.log", workers=2, EHR_JOB_RUNNER="0")
    try:
        yield server
    finally:
        stop_gunicorn(proc)


@pytest.fixture
def page(browser, site):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site.base, locale="vi-VN", viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    # Every page works under the Content-Security-Policy: Chromium reports each blocked inline
    # style or script, each refused stylesheet, on the console.
    refused: list[str] = []
    tab.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    try:
        yield tab
    finally:
        context.close()
    assert not refused, refused
