"""Issue 12 point 7, as reviewed: the status page speaks of the services users see. Incidents of
internal checks (backups, certificates) stay off it, one card per affected service, and the
banner follows the services' states, naming them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from browser import chromium, load, screenshot
from check_runs import CheckRun, run_checks
from pytest_maintcheck.config import load_config
from pytest_maintcheck.report.status import build_page, render
from pytest_maintcheck.sandbox.api_server import SandboxApi
from pytest_maintcheck.sandbox.postgres import free_port

SELECTION = (
    "test_daily_health.py",
    "test_monthly_security.py::test_certificate",
    "test_weekly_backups.py::test_backup_freshness",
)


def _config(tmp_path: Path, api: SandboxApi, down_port: int | None) -> dict[str, Any]:
    """clinical-api answers; ecg-viewer (when given a port) is refused; a backup folder with
    no backup and a certificate endpoint nothing listens on fail as internal checks."""
    empty = tmp_path / "backups"
    empty.mkdir(exist_ok=True)
    services: list[dict[str, Any]] = [
        {"service": "clinical-api", "type": "api", "endpoint": api.url("/health"), "samples": 1}
    ]
    if down_port is not None:
        services.append(
            {
                "service": "ecg-viewer",
                "type": "api",
                "endpoint": f"http://127.0.0.1:{down_port}/viewer/health",
                "samples": 1,
                "timeout": "2s",
            }
        )
    return {
        "version": 1,
        "system": "Cardiology",
        "environment": "production",
        "healthChecks": services,
        "certificates": [{"name": "fax-gateway", "host": f"127.0.0.1:{free_port()}"}],
        "backups": [
            {
                "name": "clinical-nightly",
                "kind": "pg_dump",
                "location": str(empty),
                "pattern": "clinical-*.dump",
            }
        ],
    }


def _page(report_dir: Path) -> str:
    return (report_dir / "status.html").read_text()


def _internals(run: CheckRun) -> list[str]:
    """What the run found, in its own words: none of it may reach the status page."""
    texts = []
    for check in run.check_list:
        if check["verdict"] in ("violation", "error"):
            texts.append(check["message"])
            texts += [f["description"] for f in check.get("findings", []) if f.get("description")]
    incidents = run.record("incidents.json")
    texts += [i["description"] for i in incidents]
    return [t for t in texts if t]


def _cards(page: str) -> list[str]:
    section = page.split("<h2>Current incidents</h2>")[1].split("<h2>Services</h2>")[0]
    return re.findall(r"<div class='card'><div class='row'><strong>([^<]*)</strong>", section)


def _banner(page: str) -> str:
    found = re.search(r"<div class='banner (\w+)'[^>]*>(.*?)</div>\s*\n", page)
    assert found, page
    lines = re.sub(r"<(?!div>)[^>]+>", "", found[2]).replace("<div>", " | ")
    return f"{found[1]}: {lines}"


def test_one_outage_card_for_the_down_service_and_none_for_internal_checks(
    pytester: pytest.Pytester, http_api: SandboxApi, tmp_path: Path
) -> None:
    down_port = free_port()
    reports = tmp_path / "reports"
    config = _config(tmp_path, http_api, down_port)
    run = run_checks(pytester, config, *SELECTION, report_dir=reports)
    incidents = run.record("incidents.json")
    # the run did open incidents for the internal checks: the page leaves them out by rule
    assert {i["check"] for i in incidents} == {"health", "certificate", "backup_freshness"}
    page = _page(reports)
    assert _cards(page) == ["ecg-viewer"]
    assert page.count("We are aware of a problem and are investigating.") == 1
    banner = _banner(page)
    assert banner.startswith("bad: Service outage")
    assert banner.endswith(" | Outage: ecg-viewer")
    assert "clinical-api" not in banner  # it answers
    for internal in (
        "fax-gateway",
        "clinical-nightly",
        "certificate",
        "backup",
        "127.0.0.1",
        f"127.0.0.1:{down_port}",
        f"127.0.0.1:{http_api.port}",
        "/viewer/health",
        *_internals(run),
    ):
        assert internal not in page, internal
    assert "<div class='card'><div class='row'><strong>Cardiology" not in page  # never the system


def test_only_internal_checks_failing_leaves_the_page_green_without_cards(
    pytester: pytest.Pytester, http_api: SandboxApi, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    config = _config(tmp_path, http_api, None)
    run = run_checks(pytester, config, *SELECTION, report_dir=reports)
    assert {i["check"] for i in run.record("incidents.json")} == {"certificate", "backup_freshness"}
    page = _page(reports)
    assert _banner(page) == "ok: All services operating normally"
    assert _cards(page) == []
    assert "No current incidents." in page
    assert "Operating normally" in page
    for internal in ("fax-gateway", "clinical-nightly", "127.0.0.1", *_internals(run)):
        assert internal not in page, internal


# ------------------------------------------------- the database behind a database health check


def _incident(check: str, target: str, at: str, text: str) -> dict[str, Any]:
    return {
        "id": f"INC-{check[:3]}{target[:3]}",
        "check": check,
        "target": target,
        "system": "Cardiology",
        "environment": "production",
        "severity": "high",
        "description": f"{check} on {target}: finding text",
        "timeline": {"detected": at, "responded": "", "resolved": ""},
        "publicUpdate": {"at": at, "text": text},
    }


def test_database_incidents_show_under_the_service_probing_that_database(tmp_path: Path) -> None:
    """Written state files (the incident store's format), read by the page: the rule alone."""
    (tmp_path / "maintcheck.yaml").write_text(
        "version: 1\nsystem: Cardiology\nenvironment: production\n"
        "databases:\n  primary: {dsn: 'postgresql://monitor@db.internal:5432/clinical'}\n"
        "  reporting: {dsn: 'postgresql://monitor@reports.internal:5432/reports'}\n"
        "healthChecks:\n  - {service: clinical-db, type: database, endpoint: primary}\n"
        "  - {service: clinical-api, type: api, endpoint: 'https://api.internal/health'}\n"
        "maintenanceWindows:\n"
        "  - {name: db-patch, targets: ['database:primary'], start: 2026-06-02T22:00:00Z,"
        " end: 2026-06-02T23:00:00Z}\n"
        "  - {name: backups, targets: ['backup:*'], start: 2026-06-03T02:00:00Z,"
        " end: 2026-06-03T03:00:00Z}\n"
    )
    config = load_config(tmp_path / "maintcheck.yaml", environ={})
    reports = tmp_path / "reports"
    reports.mkdir()
    incidents = [
        _incident("invalid_indexes", "primary", "2026-06-01T08:00:00Z", "Searches may be slow."),
        _incident("wraparound", "primary", "2026-06-01T09:30:00Z", "Engineers are on it."),
        _incident("config_review", "primary", "2026-06-01T10:00:00Z", "internal config"),
        _incident("dead_tuples", "reporting", "2026-06-01T10:00:00Z", "no service probes it"),
        _incident("backup_freshness", "primary", "2026-06-01T10:00:00Z", "backup is old"),
    ]
    (reports / "incidents-state.json").write_text(
        json.dumps({"version": 1, "incidents": incidents})
    )
    page = build_page(reports, config, datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert [(i["affected"], i["text"]) for i in page.incidents] == [
        ("clinical-db", "Engineers are on it.")  # one card, the latest public update
    ]
    # no health sample yet, but an open incident: not "operating normally"
    assert {s.name: s.state for s in page.services} == {
        "clinical-db": "investigating",
        "clinical-api": "unknown",
    }
    assert [p["services"] for p in page.planned] == ["clinical-db"]  # the backup window: internal
    html = render(page)
    for internal in ("internal config", "no service probes it", "backup is old", "db.internal"):
        assert internal not in html, internal
    assert "Searches may be slow." not in html  # superseded by the later update


# ------------------------------------------------------------------------- on a phone


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def test_on_a_phone_the_page_fits_and_keeps_each_service_name_whole(
    tmp_path: Path, browser: Browser
) -> None:
    names = ["clinical-api", "ecg-viewer-replica-west", "dictation-gateway", "lab-results-feed"]
    services = "".join(
        f"  - {{service: {n}, type: api, endpoint: 'https://{n}.internal/health'}}\n" for n in names
    )
    (tmp_path / "maintcheck.yaml").write_text(
        "version: 1\nsystem: Cardiology Clinical Assistant\nenvironment: production\n"
        "healthChecks:\n" + services
    )
    config = load_config(tmp_path / "maintcheck.yaml", environ={})
    reports = tmp_path / "reports"
    run = reports / "20260601T080000.000Z-abcdef"
    run.mkdir(parents=True)
    (run / "health.json").write_text(
        json.dumps(
            [{"service": n, "status": "down", "lastChecked": "2026-06-01T08:00:00Z"} for n in names]
        )
    )
    page = reports / "status.html"
    page.write_text(render(build_page(reports, config, datetime(2026, 6, 1, 9, tzinfo=UTC))))
    loaded = load(browser, page, width=390)
    screenshot(loaded, tmp_path / "status-390.png")  # to look at when this fails
    assert loaded.errors == []
    assert loaded.requests == []  # self-contained: nothing fetched
    assert loaded.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    shown = loaded.evaluate(
        "[...document.querySelectorAll('.banner .name')]"
        ".map(e => [e.textContent, e.getClientRects().length])"
    )
    assert shown == [[n, 1] for n in names]  # each name on one line, never split at a hyphen
    assert loaded.text(".banner").startswith("Service outage")
