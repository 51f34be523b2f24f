"""The pages a reviewer reads, loaded in a real browser (headless Chromium, issue 11).

Three real runs of the bundled checks write one report folder: storage health checks on real
folders, an access review of a real user export. The second run finds an account named as
markup in that export (a probed system), runs under xdist and has a skipped plain test; the
third is of another environment. Then `maintcheck review` writes the month's review. Each page
is loaded from disk: the DOM has its sections, the console no error, the page made no
request, the planted name is text (no element, no alert). A screenshot of each page is saved
under the test's tmp folder (its path is printed), never in the repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser

from browser import Loaded, chromium, load, screenshot
from check_runs import pytest_run, run_dirs

HOSTILE = "<img src=x onerror=alert(1)>"
SYSTEM = "Clinic <b>records</b> (test)"


@dataclass(frozen=True)
class Pages:
    report: Path
    index: Path
    review: Path
    first_run: Path


def _config(folder: Path, environment: str) -> Path:
    store, archive = folder / "store", folder / "archive"
    store.mkdir(exist_ok=True)
    archive.mkdir(exist_ok=True)
    config = {
        "version": 1,
        "system": SYSTEM,
        "environment": environment,
        "healthChecks": [
            {"service": "store", "type": "storage", "endpoint": str(store)},
            {
                "service": "archive",
                "type": "storage",
                "endpoint": str(archive),
                "thresholds": {"usage": {"warn": 0.00001, "fail": 0.00002}},  # any disk is over
            },
        ],
        "accessReview": {
            "sources": [{"name": "app-users", "file": str(folder / "users.csv")}],
            "roster": str(folder / "staff.csv"),
        },
        "waivers": [
            {
                "check": "test_health[archive]",
                "justification": "archive volume is being replaced, OPS-77",
                "expires": "2999-12-31",
            }
        ],
    }
    path = folder / f"maintcheck-{environment}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _users(folder: Path, *extra: str) -> None:
    recent = (date.today() - timedelta(days=1)).isoformat()
    rows = ["username,role,enabled,lastLogin,mfa", f"alice,clinician,true,{recent},true", *extra]
    (folder / "users.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "staff.csv").write_text("username,status\nalice,active\n", encoding="utf-8")


def _run(folder: Path, config: Path, reports: Path, *extra: str) -> None:
    done = pytest_run(
        folder,
        config,
        "test_daily_health.py",
        "test_monthly_security.py::test_access_review",
        report_dir=reports,
        args=["-q", *extra],
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Pages:
    folder = tmp_path_factory.mktemp("pages")
    reports = folder / "reports"
    config = _config(folder, "test")
    _users(folder)
    _run(folder, config, reports)
    _users(folder, f"{HOSTILE},admin,true,,false")  # enabled, on no roster: critical
    plain = folder / "test_plain.py"
    plain.write_text(
        "import pytest\n\n@pytest.mark.skip(reason='the archive is in its maintenance window')\n"
        "def test_later():\n    pass\n",
        encoding="utf-8",
    )
    _run(folder, config, reports, str(plain), "-n", "1")
    _run(folder, _config(folder, "staging"), reports)
    first, second, _ = run_dirs(reports)
    month = json.loads((second / "results.json").read_text())["startedAt"][:7]
    review = subprocess.run(
        [sys.executable, "-m", "pytest_maintcheck.cli", "review", "--month", month,
         "--report-dir", str(reports)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert review.returncode == 0, review.stderr
    return Pages(second / "report.html", reports / "index.html", Path(review.stdout.strip()), first)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def _open(browser: Browser, path: Path, shots: Path, name: str) -> Loaded:
    loaded = load(browser, path)
    shot = screenshot(loaded, shots / f"{name}.png")
    print(f"screenshot of {path.name}: {shot}")
    return loaded


def _clean(loaded: Loaded) -> None:
    """No console error, no alert, no request to anything but the file itself."""
    assert loaded.errors == []
    assert loaded.dialogs == []
    assert [u for u in loaded.requests if not u.startswith("data:")] == []


def _elements_named(loaded: Loaded, tag: str, content: str) -> int:
    found: int = loaded.evaluate(
        "([tag, content]) => [...document.querySelectorAll(tag)]"
        ".filter(e => e.textContent === content).length",
        [tag, content],
    )
    return found


def _planted_name_is_text(loaded: Loaded) -> None:
    assert HOSTILE in loaded.text("body")
    assert loaded.evaluate("document.querySelectorAll('img[src=\"x\"], img[onerror]').length") == 0
    assert _elements_named(loaded, "b", "records") == 0  # the system's name is text too


def test_report_html_reads_top_down_for_a_reviewer(
    pages: Pages, browser: Browser, tmp_path: Path
) -> None:
    loaded = _open(browser, pages.report, tmp_path, "report")
    _clean(loaded)
    _planted_name_is_text(loaded)
    order = loaded.evaluate(
        "['run-header','verdicts','needs-attention','incidents','waivers','compliance',"
        "'changes','all-checks'].map(id => document.getElementById(id)).map("
        "e => e ? e.getBoundingClientRect().top + window.scrollY : null)"
    )
    assert None not in order
    assert order == sorted(order), order
    table_top = loaded.evaluate(
        "document.getElementById('results-table').getBoundingClientRect().top + scrollY"
    )
    assert table_top > order[-1]  # the per-check table comes last

    header = loaded.text("#run-header")
    for label in ("System", "Environment", "Suites", "Operator", "Started", "Duration", "Run id"):
        assert label in header
    assert pages.report.parent.name in header
    title = loaded.text("h1#title")
    assert title.count("(test)") == 1, title  # the environment is not repeated

    tiles = loaded.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.tile')].map("
        "t => [t.dataset.verdict, +t.querySelector('b').textContent]))"
    )
    assert tiles["violation"] >= 1
    assert tiles["waived"] == 1
    assert tiles["pass"] >= 1

    rows = loaded.evaluate(
        "[...document.querySelectorAll('#attention-table tbody tr')].map(r => "
        "[...r.querySelectorAll('td')].map(td => td.innerText.trim()))"
    )
    assert rows[0][:2] == ["violation", "critical"]
    assert HOSTILE in rows[0][4]  # what was found names the account, as text
    assert rows[0][5]  # and the action
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    keys = [(0 if r[0].startswith("violation") else 1, rank[r[1]]) for r in rows]
    assert keys == sorted(keys)
    colour = loaded.evaluate(
        "getComputedStyle(document.querySelector('#attention-table .badge.critical'))"
        ".backgroundColor"
    )
    assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")

    incidents = loaded.text("#incidents")
    for word in ("Access review", "owner", "detected"):
        assert word in incidents
    waivers = loaded.text("#waivers")
    assert "archive volume is being replaced, OPS-77" in waivers
    assert "2999-12-31" in waivers
    compliance = loaded.text("#compliance")
    assert "Access control and termination procedures" in compliance
    assert "HIPAA" in compliance
    assert "test_access_review[access-review]" in compliance
    assert "test_access_review[access-review]" in loaded.text("#changes-new")

    body = loaded.text("body")
    assert "[gw" not in body  # no xdist worker line
    assert loaded.evaluate("document.querySelectorAll('#environment tr').length") == 0
    assert not loaded.page.locator("#environment-header").is_visible()
    loaded.page.locator("#results-table tbody.skipped td.col-result").first.click()
    skipped_log = loaded.text("#results-table tbody.skipped .log")
    assert skipped_log == "Skipped: The archive is in its maintenance window"


def test_report_html_prints_as_a_clean_document(
    pages: Pages, browser: Browser, tmp_path: Path
) -> None:
    loaded = load(browser, pages.report)
    loaded.page.emulate_media(media="print")
    hidden = loaded.evaluate(
        "['.controls', '.summary__reload', '#environment-header']"
        ".map(s => document.querySelector(s))"
        ".map(e => !e || getComputedStyle(e).display === 'none')"
    )
    assert all(hidden), hidden
    assert loaded.page.locator("#needs-attention").is_visible()
    pdf = tmp_path / "report.pdf"
    loaded.page.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.read_bytes().startswith(b"%PDF")
    print(f"printed report: {pdf}")


def test_index_has_runs_per_system_filters_and_charts(
    pages: Pages, browser: Browser, tmp_path: Path
) -> None:
    loaded = _open(browser, pages.index, tmp_path, "index")
    _clean(loaded)
    assert _elements_named(loaded, "b", "records") == 0
    groups = loaded.evaluate(
        "[...document.querySelectorAll('section.group')].map(g => g.dataset.environment)"
    )
    assert sorted(groups) == ["staging", "test"]
    assert SYSTEM in loaded.text("section.group[data-environment=staging] h2")
    assert loaded.text("section.group[data-environment=test] h2") == SYSTEM  # "(test)" once
    charts = loaded.evaluate(
        "[...document.querySelectorAll('section.group[data-environment=test] figure.chart')]"
        ".filter(f => f.querySelector('svg')).map(f => f.dataset.chart)"
    )
    assert {"availability", "p95", "storage", "verdicts"} <= set(charts)
    assert "store" in loaded.text("section.group[data-environment=test] .charts")
    link = f'a[href="{pages.first_run.name}/report.html"]'
    assert loaded.page.locator(link).count() == 1

    loaded.page.select_option("#filter-environment", "staging")
    visible = loaded.evaluate(
        "[...document.querySelectorAll('section.group')].filter(g => !g.hidden)"
        ".map(g => g.dataset.environment)"
    )
    assert visible == ["staging"]


def test_monthly_review_lists_what_the_audit_signs(
    pages: Pages, browser: Browser, tmp_path: Path
) -> None:
    loaded = _open(browser, pages.review, tmp_path, "review")
    _clean(loaded)
    _planted_name_is_text(loaded)
    for ident in (
        "compliance", "availability", "incidents", "capacity", "access-review", "policies",
        "security", "waivers", "signoff",
    ):  # fmt: skip
        assert loaded.page.locator(f"section#{ident}").count() == 1, ident
    accounts = loaded.text("#review-access")
    assert "alice" in accounts
    assert HOSTILE in accounts
    availability = loaded.text("#review-availability")
    assert "store" in availability
    assert "archive" in availability
    assert "Access review" in loaded.text("#review-incidents")
    assert "archive volume is being replaced, OPS-77" in loaded.text("#review-waivers")
    assert "store" in loaded.text("#review-capacity")
