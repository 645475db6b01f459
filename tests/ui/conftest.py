"""Browser tests of the web UI: Debian's Chromium driven by Playwright against a
real `durachat serve` process serving the built UI (`make` builds it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from durachat.api.static import STATIC_DIR
from tests.e2e.conftest import make_server, server  # noqa: F401  (fixtures)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append("/usr/bin/chromium (make test installs it)")
    if not (STATIC_DIR / "index.html").exists():
        missing.append("the web build (make web)")
    if missing and os.environ.get("CI"):  # CI runs `make test`, which provides both
        raise pytest.UsageError("the browser tests need " + " and ".join(missing))
    if missing:
        skip = pytest.mark.skip(reason="needs " + " and ".join(missing))
        for item in items:
            if "tests/ui/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    instance = context.new_page()
    errors: list[str] = []
    instance.on("pageerror", lambda exc: errors.append(str(exc)))
    # A Content-Security-Policy violation (an inline script or style the policy
    # refuses) shows as a console error.
    instance.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield instance
    context.close()
    assert not errors, errors
