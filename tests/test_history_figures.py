"""Projections, trends and uptime on series with a known answer (pure functions, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_maintcheck.history.projections import describe, project, theil_sen
from pytest_maintcheck.history.store import Point
from pytest_maintcheck.history.trends import daily_growth, trend, uptime

NOW = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)  # any fixed moment: nothing reads the clock
DAY = 86400.0


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def daily(values: list[float]) -> list[tuple[datetime, float]]:
    """One value a day, the last one today."""
    return [(days_ago(len(values) - 1 - i), v) for i, v in enumerate(values)]


def test_theil_sen_finds_a_known_line() -> None:
    line = theil_sen([0, 1, 2, 3, 4], [1, 3, 5, 7, 9])
    assert line.slope == pytest.approx(2)
    assert line.intercept == pytest.approx(1)


def test_storage_growing_one_point_a_day_is_full_in_the_known_number_of_days() -> None:
    # 50% used growing 1 point a day for 20 days: 70% today, full (100%) in 30 days
    series = daily([0.50 + 0.01 * i for i in range(21)])
    projection = project(series, 1.0)
    assert projection.state == "filling"
    assert projection.days == pytest.approx(30, abs=1e-6)
    assert projection.slope_per_day == pytest.approx(0.01)
    assert "reaches 100.00% in 30 days" in describe(projection, "ecg", "{:.2%}".format)


def test_one_odd_day_does_not_bend_the_projection() -> None:
    values = [0.50 + 0.01 * i for i in range(21)]
    values[10] = 0.99  # a probe that read a half-restored disk
    values[15] = 0.05
    projection = project(daily(values), 1.0)
    assert projection.days == pytest.approx(30, abs=1e-6)
    # an ordinary least-squares line through the same points would be pulled well off
    assert projection.slope_per_day == pytest.approx(0.01)


def test_a_database_reaches_its_size_fail_level() -> None:
    gb = 1e9
    series = daily([40 * gb + 0.5 * gb * i for i in range(11)])  # 45 GB today, +0.5 GB/day
    projection = project(series, 80 * gb)
    assert projection.days == pytest.approx(70)


@pytest.mark.parametrize(
    ("values", "state", "said"),
    [
        ([0.5, 0.6], "too-short", "no projection: 2 measurement(s)"),
        ([0.9 - 0.01 * i for i in range(10)], "shrinking", "shrinking by"),
        ([0.42] * 12, "flat", "flat at"),
        ([0.1 + 1e-6 * i for i in range(30)], "flat", "flat at"),
        ([0.1 + 1e-4 * i for i in range(30)], "beyond-horizon", "not reached within 10 years"),
    ],
)
def test_short_flat_and_shrinking_series_get_no_date(
    values: list[float], state: str, said: str
) -> None:
    projection = project(daily(values), 1.0)
    assert projection.state == state
    assert projection.days is None
    assert said in describe(projection, "ecg")


def test_points_within_a_day_are_too_short_whatever_their_number() -> None:
    series = [(NOW - timedelta(hours=h), 0.5 + 0.01 * h) for h in range(10)]
    assert project(series, 1.0).state == "too-short"


def test_a_year_of_hourly_points_is_thinned_and_still_exact() -> None:
    series = [(NOW - timedelta(hours=h), 0.9 - 0.001 * h / 24) for h in range(24 * 365)]
    projection = project(series, 1.0)
    assert projection.days == pytest.approx(100, rel=1e-3)


def test_trend_compares_the_latest_with_the_median_of_earlier_runs() -> None:
    t = trend(daily([100, 110, 90, 105, 2000, 100, 160]))  # one slow day among the earlier
    assert t.baseline == 102.5
    assert t.latest == 160
    assert t.ratio == pytest.approx(160 / 102.5)
    assert t.enough
    assert not trend(daily([100, 160])).enough  # one earlier run is no baseline


def test_daily_growth_is_per_day_between_days() -> None:
    series = [(days_ago(4), 10.0), (days_ago(2), 30.0), (days_ago(1), 31.0), (NOW, 41.0)]
    assert [round(v, 6) for _, v in daily_growth(series)] == [10.0, 1.0, 10.0]


def points(runs: list[tuple[float, int, float]]) -> list[Point]:
    """(days ago, samples, error rate) per earlier run of service api."""
    out = []
    for i, (ago, samples, rate) in enumerate(runs):
        at = days_ago(ago).isoformat()
        out.append(Point("health", "api", "samples", at, samples, f"r{i}"))
        out.append(Point("health", "api", "errorRate", at, rate, f"r{i}"))
    return out


def test_uptime_is_weighted_by_samples_over_the_runs_given() -> None:
    earlier = points([(5, 10, 0.0), (4, 10, 0.2), (3, 5, 0.0), (2, 20, 0.05), (1, 4, 0.25)])
    figure = uptime(earlier, samples_now=5, failures_now=1, window=30 * DAY)
    # failures: 0 + 2 + 0 + 1 + 1 + 1 (now) = 5 of 54 samples
    assert figure.samples == 54
    assert figure.failures == 5
    assert figure.value == pytest.approx(49 / 54)
    assert figure.runs == 6
    assert figure.judged
    assert figure.to_json()["window"] == "30d"


def test_uptime_with_too_little_history_says_so() -> None:
    figure = uptime(points([(1, 5, 0.0)]), samples_now=5, failures_now=0, window=30 * DAY)
    assert figure.value == 1.0
    assert not figure.judged
    assert "too little history: 2 run(s) in the last 30d (5 needed)" in figure.note


def test_uptime_without_the_store_is_this_run_only_and_not_judged() -> None:
    figure = uptime([], samples_now=4, failures_now=1, window=30 * DAY, problem="locked")
    assert figure.value == 0.75
    assert not figure.judged
    assert "history store not read (locked)" in figure.note
