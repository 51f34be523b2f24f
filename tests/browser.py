"""Headless Chromium (Debian's package, scripts/ensure-browser) driven by Playwright.

Playwright is given the system's chromium, so it downloads no browser. One browser per test
session; each page load records console errors, uncaught exceptions, dialogs (an alert from
injected markup) and every request that is not to the file itself (a page must work offline).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

# Playwright adds --headless and a fresh --user-data-dir (a temporary profile) itself
FLAGS = [
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium not found: run scripts/ensure-browser (make test does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=FLAGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Loaded:
    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text(timeout=5_000))

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


def load(browser: Browser, path: Path, width: int = 1280) -> Loaded:
    """Open a page from disk and let its scripts run; what it logged is on the result."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(15_000)
    loaded = Loaded(page)
    page.on("console", lambda m: loaded.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: loaded.errors.append(f"uncaught: {e}"))

    def dialog(d: Any) -> None:
        loaded.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    url = path.resolve().as_uri()
    page.on("request", lambda r: loaded.requests.append(r.url) if r.url != url else None)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(200)  # pytest-html renders its table from a script after load
    return loaded


def screenshot(loaded: Loaded, target: Path) -> Path:
    loaded.page.screenshot(path=str(target), full_page=True)
    return target
