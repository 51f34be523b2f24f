"""Version-aware performance trends (issue 17 point 4): the p95 since a service's newest
version change against its p95 on the version before, in the monthly capacity review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_results import check_result
from check_runs import run_checks
from pytest_maintcheck.config import HealthCheck, HistorySettings
from pytest_maintcheck.history import iso, using
from pytest_maintcheck.history.capacity import review_performance, review_record
from pytest_maintcheck.history.store import Point, StoredCheck, StoredRun
from pytest_maintcheck.history.trends import version_shift
from pytest_maintcheck.history.window import Window
from pytest_maintcheck.verdict import Assessment, Verdict
from test_history_runs import config

NOW = datetime(2025, 5, 20, 3, 0, tzinfo=UTC)  # injected: the figures do not depend on today
SERVICE = HealthCheck("clinical-api", "api", ("https://clinical.example/health",))


def window(runs: list[tuple[float, str]]) -> Window:
    """One health run a day, oldest first, each (p95 ms, running version or "")."""
    points, versions = [], {}
    for i, (p95, version) in enumerate(runs):
        at = iso(NOW - timedelta(days=len(runs) - i))
        run_id = f"{at}-run{i}"
        points.append(Point("health", "clinical-api", "responseTime", at, p95, run_id))
        if version:
            versions[run_id, "health", "clinical-api"] = version
    return Window(iso(NOW - timedelta(days=30)), 30 * 86400, points, versions=versions)


def review(runs: list[tuple[float, str]], factor: float = 1.3) -> Assessment:
    assessment = Assessment()
    review_performance(window(runs), SERVICE, factor, assessment)
    return assessment


def descriptions(assessment: Assessment) -> list[str]:
    """What the check says: its notes (passing findings), then its warnings."""
    return [*assessment.notes, *(f.description for f in assessment.findings)]


ON_231 = [(110.0, "2.3.1"), (120.0, "2.3.1"), (125.0, "2.3.1"), (300.0, "2.3.1")]  # median 122.5


def test_a_rise_since_the_version_change_beyond_the_factor_is_a_warning() -> None:
    # 2.2.0 before 2.3.1 is not the baseline: only the version that ran just before
    runs = [(900.0, "2.2.0"), (119.0, "2.3.1"), (120.0, "2.3.1"), (121.0, "2.3.1"),
            (160.0, "2.4.0"), (168.0, "2.4.0"), (170.0, "2.4.0")]  # fmt: skip
    assessment = review(runs)
    assert assessment.verdict == Verdict.DEGRADED
    (finding,) = assessment.findings
    assert finding.description == (
        "clinical-api: p95 rose 40% since 2.4.0 (from 120 ms on 2.3.1 to 168 ms); medians of "
        "3 runs on 2.3.1 and 3 since 2025-05-17: x1.40, above the trend factor 1.3"
    )
    assert str(finding.action).startswith("Compare 2.4.0 with 2.3.1")
    assert assessment.metrics["responseTimeTrend"] == 1.4
    assert assessment.details["versions"] == {
        "before": "2.3.1", "since": "2.4.0", "changedAt": "2025-05-17T03:00:00Z",
        "runsBefore": 3, "runsSince": 3, "medianBefore": 120.0, "medianSince": 168.0,
        "ratio": 1.4, "compared": True,
    }  # fmt: skip


def test_a_change_within_the_factor_is_a_note_and_a_fall_is_said_as_one() -> None:
    rose = review([*ON_231, (130.0, "2.4.0"), (140.0, "2.4.0"), (135.0, "2.4.0")])
    assert rose.verdict == Verdict.PASS
    assert descriptions(rose) == [
        "clinical-api: p95 rose 10% since 2.4.0 (from 122 ms on 2.3.1 to 135 ms); medians of "
        "4 runs on 2.3.1 and 3 since 2025-05-17 (trend factor 1.3)"
    ]
    fell = review([*ON_231, (60.0, "2.4.0"), (61.25, "2.4.0"), (70.0, "2.4.0")])
    assert fell.verdict == Verdict.PASS
    assert descriptions(fell)[0].startswith(
        "clinical-api: p95 fell 50% since 2.4.0 (from 122 ms on 2.3.1 to 61 ms)"
    )
    held = review([*ON_231, (122.0, "2.4.0"), (123.0, "2.4.0"), (124.0, "2.4.0")])
    assert descriptions(held)[0].startswith(
        "clinical-api: p95 unchanged since 2.4.0 (122 ms on 2.3.1, 123 ms since); medians of"
    )


def test_one_version_all_window_keeps_the_latest_against_the_baseline() -> None:
    runs = [(10.0, "2.3.1"), (11.0, "2.3.1"), (12.0, ""), (11.0, "2.3.1"), (30.0, "2.3.1")]
    assessment = review(runs, factor=1.5)
    assert assessment.verdict == Verdict.DEGRADED
    assert descriptions(assessment) == [
        "clinical-api p95 30 ms against its baseline 11 ms (median of 4 earlier runs): x2.73, "
        "above the trend factor 1.5"
    ]
    assert "versions" not in assessment.details
    unversioned = review([(v, "") for v, _ in runs], factor=1.5)
    assert descriptions(unversioned) == descriptions(assessment)


def test_too_few_runs_on_the_new_version_is_said_and_the_whole_window_judged() -> None:
    assessment = review([*ON_231, (400.0, "2.4.0")], factor=1.5)
    first, judged = descriptions(assessment)
    assert first == (
        "clinical-api: running 2.4.0 since 2025-05-19: 1 run(s) on it, too few to compare its "
        "p95 with 2.3.1's (3 needed); the latest p95 is judged against the whole window instead"
    )
    assert judged.startswith("clinical-api p95 400 ms against its baseline 122 ms")
    assert assessment.verdict == Verdict.DEGRADED  # the whole-window trend still warns
    assert assessment.details["versions"]["compared"] is False
    few_before = review([(120.0, "2.3.1"), *[(130.0, "2.4.0")] * 3])
    assert descriptions(few_before)[0].endswith(
        "1 run(s) on 2.3.1 in the window, too few to compare its p95 with 2.3.1's (3 needed); "
        "the latest p95 is judged against the whole window instead"
    )


def test_runs_without_a_version_are_left_out_and_a_rollback_is_a_change() -> None:
    shift = version_shift(
        [(NOW - timedelta(days=d), p, v) for d, p, v in [
            (9, 100.0, "2.3.1"), (8, 100.0, "2.3.1"), (7, 100.0, "2.3.1"),
            (6, 200.0, "2.4.0"), (5, 999.0, ""), (4, 200.0, "2.4.0"),
            (3, 110.0, "2.3.1"), (2, 120.0, "2.3.1"), (1, 130.0, "2.3.1"),
        ]]
    )  # fmt: skip
    assert shift is not None
    assert (shift.before, shift.since, shift.runs_before, shift.runs_since) == (
        "2.4.0", "2.3.1", 2, 3
    )  # fmt: skip
    assert (shift.median_before, shift.median_since) == (200.0, 120.0)


def test_the_versions_reach_capacity_review_json() -> None:
    assessment = review([*ON_231, (130.0, "2.4.0"), (140.0, "2.4.0"), (135.0, "2.4.0")])
    result = check_result(check="performance_trend", target="clinical-api", verdict="pass",
                          metrics=assessment.metrics, details=assessment.details)  # fmt: skip
    record = review_record([result])
    assert record is not None
    (entry,) = record["entries"]
    assert entry["versions"]["before"] == "2.3.1"
    assert entry["versions"]["since"] == "2.4.0"


# ---------------------------------------------------------------------------- end to end


def seed_versions(report_dir: Path, runs: list[tuple[float, str]]) -> list[str]:
    """Health runs of clinical-api, one a day up to yesterday, each (p95 ms, version) as a
    real run stores them; returns their start times."""
    now = datetime.now(UTC)
    made, times = [], []
    for i, (p95, version) in enumerate(runs):
        at = iso(now - timedelta(days=len(runs) - i))
        times.append(at)
        measured = {"responseTime": p95, "errorRate": 0.0, "samples": 3.0}
        check = StoredCheck("health", "clinical-api", at, "pass", measurements=measured,
                            version=version)  # fmt: skip
        made.append(StoredRun(f"{at}-seed{i}", "Cardiology", "production", "runner", at, at,
                              suites=("daily",), source="test", checks=(check,)))  # fmt: skip
    with using(HistorySettings(), report_dir) as store:
        store.record_runs(made)
    return times


def test_the_monthly_review_says_how_the_p95_moved_since_the_version_change(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    report_dir = pytester.path / "reports"
    times = seed_versions(report_dir, [
        (118.0, "2.3.1"), (120.0, "2.3.1"), (122.0, "2.3.1"), (120.0, "2.3.1"),
        (160.0, "2.4.0"), (168.0, "2.4.0"), (175.0, "2.4.0"),
    ])  # fmt: skip
    cfg = config(tmp_path)
    cfg["healthChecks"][0]["service"] = "clinical-api"
    cfg["capacity"] = {"trendFactor": 1.3}
    run = run_checks(pytester, cfg, "test_monthly_capacity.py::test_performance_trend",
                     report_dir=report_dir)  # fmt: skip
    check = run.by_test["test_performance_trend"]
    assert check["verdict"] == "degraded", run.result.stdout.str()
    (finding,) = check["findings"]
    assert finding["description"] == (
        "clinical-api: p95 rose 40% since 2.4.0 (from 120 ms on 2.3.1 to 168 ms); medians of "
        f"4 runs on 2.3.1 and 3 since {times[4][:10]}: x1.40, above the trend factor 1.3"
    )
    (entry,) = run.record("capacity-review.json")["entries"]
    assert entry["versions"]["before"] == "2.3.1"
    assert entry["versions"]["since"] == "2.4.0"
    assert entry["versions"]["changedAt"] == times[4]
    # index.html's p95 chart marks the change, and its caption says it in words
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    chart = page.split('data-chart="p95">')[1].split("</figure>")[0]
    assert "clinical-api -&gt; 2.4.0" in chart
    assert f"clinical-api 2.3.1 -&gt; 2.4.0 on {times[4][:10]}" in chart
