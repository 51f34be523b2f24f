"""`maintcheck review` (issue 11, point 3) and the history reading the pages share."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from check_results import check_result
from pytest_maintcheck.cli import main
from pytest_maintcheck.report.review import last_month, month_bounds
from pytest_maintcheck.report.series import FolderHistory, changes, previous_run, project


def _run_folder(reports: Path, run_id: str, started: str, checks: list[dict[str, object]]) -> None:
    folder = reports / run_id
    folder.mkdir(parents=True)
    log = {"performed": {"at": started, "by": "op", "duration": 1.0}, "system": "s",
           "environment": "prod", "status": "completed", "counts": {}}  # fmt: skip
    (folder / "maintenance-log.json").write_text(json.dumps(log))
    (folder / "results.json").write_text(json.dumps({"checks": checks}))


def _check(target: str, verdict: str, **extra: object) -> dict[str, object]:
    return {"check": "health", "target": target, "name": f"test_health[{target}]",
            "verdict": verdict, "severity": "high", "findings": [], **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("today", "month"),
    [
        (date(2026, 11, 29), "2026-10"),
        (date(2027, 1, 1), "2026-12"),
        (date(2026, 3, 31), "2026-02"),
    ],
)
def test_the_default_month_is_last_month(today: date, month: str) -> None:
    assert last_month(today) == month


def test_a_month_is_its_first_instant_to_the_next_months(tmp_path: Path) -> None:
    assert month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize("month", ["2026-13", "11-2026", "2026-1", "last"])
def test_a_month_that_is_not_yyyy_mm_is_a_usage_error(
    month: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--month", month, "--report-dir", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "expected a month as YYYY-MM" in err


def test_a_missing_report_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--month", "2026-11", "--report-dir", str(tmp_path / "nope")]) == 4
    assert "no such report folder" in capsys.readouterr().err


def test_review_reads_only_the_months_runs_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    _run_folder(reports, "20261031T230000.000Z-aaaaaa", "2026-10-31T23:00:00Z",
                [_check("october-only", "violation")])  # fmt: skip
    _run_folder(reports, "20261102T060000.000Z-bbbbbb", "2026-11-02T06:00:00Z",
                [_check("api", "pass")])  # fmt: skip
    out = tmp_path / "audit.html"
    assert main(["review", "--month", "2026-11", "--report-dir", str(reports),
                 "--output", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert "test_health[api]" in page
    assert "october-only" not in page


def test_changes_compare_checks_by_key_and_target() -> None:
    before = [_check("a", "violation"), _check("b", "pass"), _check("c", "degraded")]
    now = [check_result(**_check(t, v)) for t, v in
           [("a", "pass"), ("b", "violation"), ("c", "degraded"), ("d", "error")]]  # fmt: skip
    found = changes(before, now)
    assert [c.name for c in found["fixed"]] == ["test_health[a]"]
    assert [c.name for c in found["new"]] == ["test_health[b]", "test_health[d]"]
    assert [c.name for c in found["still"]] == ["test_health[c]"]


def test_the_previous_run_is_of_the_same_system_and_environment(tmp_path: Path) -> None:
    _run_folder(tmp_path, "20261101T000000.000Z-aaaaaa", "2026-11-01T00:00:00Z", [])
    _run_folder(tmp_path, "20261102T000000.000Z-bbbbbb", "2026-11-02T00:00:00Z", [])
    other = tmp_path / "20261103T000000.000Z-cccccc"
    _run_folder(tmp_path, other.name, "2026-11-03T00:00:00Z", [])
    log = json.loads((other / "maintenance-log.json").read_text())
    (other / "maintenance-log.json").write_text(json.dumps({**log, "environment": "staging"}))
    found = previous_run(FolderHistory(tmp_path), "s", "prod", datetime(2026, 11, 4, tzinfo=UTC))
    assert found is not None
    assert found.run_id == "20261102T000000.000Z-bbbbbb"


def test_a_projection_needs_a_day_of_measurements_and_finds_the_day_capacity_is_reached() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    minutes = [(start, 0.5), (start + timedelta(minutes=5), 0.6)]
    assert project(minutes, 1.0) is None  # minutes apart say nothing of daily growth
    days = [(start + timedelta(days=d), 0.5 + 0.01 * d) for d in range(10)]
    projection = project(days, 0.99)
    assert projection is not None
    assert projection.per_day == pytest.approx(0.01)
    assert projection.reaches_at is not None
    assert projection.reaches_at.date() == date(2026, 12, 20)
