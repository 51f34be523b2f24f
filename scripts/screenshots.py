"""`make screenshots`: run the demo into a temporary folder and photograph its four pages.

Writes docs/screenshots/report.png, index.png, review.png and status.png (what the README
shows) with Debian's chromium driven headless by Playwright. The tests never write here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("screenshots: chromium not found; run scripts/ensure-browser", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="maintcheck-shots-") as tmp:
        reports = Path(tmp) / "reports"
        demo = [sys.executable, "-m", "pytest_maintcheck.cli", "demo", "--report-dir", str(reports)]
        subprocess.run(demo, check=True, timeout=600)
        runs = sorted(p for p in reports.iterdir() if (p / "report.html").is_file())
        pages = {
            "report": runs[-1] / "report.html",
            "index": reports / "index.html",
            "review": next(reports.glob("review-*.html")),
            "status": reports / "status.html",  # services, 30-day uptime from the store
        }
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            for name, page_path in pages.items():
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                page.goto(page_path.as_uri(), wait_until="load")
                page.wait_for_timeout(300)
                # the first screen of each page; the status page is short, shown whole
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=name == "status")
                print(f"screenshots: {OUT / (name + '.png')}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
