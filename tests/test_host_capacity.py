"""The monthly host capacity review: each filesystem's usage and the memory in use measured by
the daily host_resources runs, projected toward the host's fail levels (issue 14 point 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_results import check_result
from check_runs import read_record, run_checks
from pytest_maintcheck.config import Thresholds
from pytest_maintcheck.config_operations import Host
from pytest_maintcheck.history import iso
from pytest_maintcheck.history.capacity import HOST_CHECK, review_host, review_record
from pytest_maintcheck.history.store import Point
from pytest_maintcheck.history.window import Window
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict
from test_history_runs import config, seed

NOW = datetime(2026, 3, 1, 4, 30, tzinfo=UTC)  # any moment: the series are relative to it
DAYS_TO_FULL = Threshold.parse("daysToFull", {"warn": 90, "fail": 30})


def host(**thresholds: object) -> Host:
    limits = {"usage": {"warn": 0.8, "fail": 0.9}, "memory": {"warn": 0.85, "fail": 0.95}}
    limits.update(thresholds)  # type: ignore[arg-type]
    return Host(
        name="db-host",
        node_exporter="https://db.internal:9100/metrics",
        thresholds=Thresholds(tuple(Threshold.parse(k, v) for k, v in limits.items() if v)),
    )


def window(runs: list[dict[str, float]], name: str = "db-host") -> Window:
    """One host_resources run a day, the last one a day before NOW."""
    points = []
    for i, metrics in enumerate(runs):
        at = iso(NOW - timedelta(days=len(runs) - i))
        points += [Point(HOST_CHECK, name, m, at, v, f"run{i}") for m, v in metrics.items()]
    return Window(iso(NOW - timedelta(days=30)), 30 * 86400, points)


def filling(days: int = 14) -> list[dict[str, float]]:
    """/ grows a point a day to 63% (27 days before the 90% fail level); /var and memory flat."""
    return [{"usage:/": 0.50 + 0.01 * i, "usage:/var": 0.40, "memory": 0.50} for i in range(days)]


def reviewed(w: Window, h: Host | None = None) -> Assessment:
    made = Assessment()
    review_host(w, h or host(), DAYS_TO_FULL, made)
    return made


def test_a_filesystem_filling_linearly_reaches_its_fail_level_on_the_known_day() -> None:
    a = reviewed(window(filling()))
    assert a.metrics["daysToFull:/"] == pytest.approx(27.0, abs=0.05)
    assert a.metrics["daysToFull"] == pytest.approx(27.0, abs=0.05)  # the soonest is the headline
    assert a.verdict is Verdict.VIOLATION  # 27 days is under capacity.daysToFull's fail of 30
    (late,) = [f for f in a.findings if f.verdict is Verdict.VIOLATION]
    assert "db-host:/ space used (toward its usage fail level): growing 1.00%/day" in (
        late.description
    )
    assert "reaches 90.00% in 27 days" in late.description
    assert "Free space on db-host:/" in late.action
    assert a.details["projections"]["/"]["state"] == "filling"
    assert a.details["projections"]["/"]["limit"] == 0.9
    assert a.metrics["daysToFull:/var"] is None
    assert a.details["projections"]["/var"]["state"] == "flat"
    assert a.details["projections"]["memory"]["state"] == "flat"


def test_a_date_far_enough_passes_and_is_still_said() -> None:
    a = reviewed(window([{"usage:/": 0.20 + 0.002 * i, "memory": 0.5} for i in range(14)]))
    assert a.verdict is Verdict.PASS
    assert a.metrics["daysToFull:/"] == pytest.approx(337.0, abs=0.05)  # 22.6% to 90%
    assert "db-host:/ space used (toward its usage fail level): growing 0.20%/day" in a.message()
    assert "reaches 90.00% in 337 days" in a.message()


def test_without_a_usage_fail_level_a_filesystem_is_projected_to_full() -> None:
    a = reviewed(window(filling()), host(usage={"warn": 0.8}))
    assert a.metrics["daysToFull:/"] == pytest.approx(37.0, abs=0.05)  # 63% to 100%
    assert a.verdict is Verdict.DEGRADED  # under the warn level of 90 days
    assert any("db-host:/ space used (toward full)" in f.description for f in a.findings)


def test_one_odd_reading_does_not_bend_the_projection() -> None:
    runs = filling()
    runs[6]["usage:/"] = 0.02  # a probe that read a half-mounted disk
    runs[9]["usage:/"] = 0.99
    a = reviewed(window(runs))
    assert a.metrics["daysToFull:/"] == pytest.approx(27.0, abs=0.5)


def test_memory_growing_toward_its_fail_level_is_a_warning_with_its_date() -> None:
    runs = [{"usage:/": 0.30, "memory": 0.50 + 0.005 * i} for i in range(14)]
    a = reviewed(window(runs))
    assert a.metrics["daysToFull:memory"] == pytest.approx(77.0, abs=0.05)  # 56.5% to 95%
    assert a.verdict is Verdict.DEGRADED
    (warning,) = [f for f in a.findings if f.verdict is Verdict.DEGRADED]
    assert "db-host memory in use (toward its memory fail level)" in warning.description
    assert "reaches 95.00% in 77 days" in warning.description


@pytest.mark.parametrize(
    ("usage", "said"),
    [
        ([0.5, 0.6, 0.7], "no projection: 3 measurement(s) over 2.0 days"),
        ([0.6 - 0.01 * i for i in range(10)], "shrinking by 1.00%/day over 9 days"),
        ([0.4] * 10, "flat at 40.00% over 9 days"),
    ],
)
def test_a_series_without_a_date_is_said_plainly_and_passes(usage: list[float], said: str) -> None:
    a = reviewed(window([{"usage:/": u, "memory": 0.5} for u in usage]))
    assert a.verdict is Verdict.PASS
    assert a.metrics["daysToFull:/"] is None
    assert a.metrics["daysToFull"] is None
    assert any(said in n and n.startswith("db-host:/ space used") for n in a.notes), a.notes


def test_a_filesystem_no_longer_mounted_is_not_projected() -> None:
    runs = filling()
    for run in runs[:7]:
        run["usage:/mnt/old-backups"] = 0.85
    a = reviewed(window(runs))
    assert set(a.details["projections"]) == {"/", "/var", "memory"}


def test_a_host_never_measured_says_so_and_an_unreadable_store_is_not_measured() -> None:
    a = reviewed(window(filling(), name="another-host"))
    assert a.verdict is Verdict.PASS
    assert (
        "db-host: no filesystem measured by host_resources in the window (0 run(s))" in (a.notes[0])
    )
    broken = Window(iso(NOW), 86400, problem="history.sqlite is locked")
    b = reviewed(broken)
    assert b.verdict is Verdict.VIOLATION  # could not measure: never a pass
    assert "history not readable: history.sqlite is locked" in b.findings[0].description


def test_the_review_record_lists_each_projection_of_a_host() -> None:
    a = reviewed(window(filling()))
    entry = check_result(check="host_capacity", target="db-host", verdict=a.verdict.value,
                         metrics=a.metrics, details=a.details, message="m")  # fmt: skip
    record = review_record([entry])
    assert record is not None
    (listed,) = record["entries"]
    assert listed["daysToFull"] == pytest.approx(27.0, abs=0.05)
    assert set(listed["projections"]) == {"/", "/var", "memory"}


def test_the_monthly_run_projects_two_weeks_of_a_hosts_daily_readings(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    report_dir = pytester.path / "reports"
    readings = [
        {"usage:/": 0.50 + 0.01 * i, "usage": 0.50 + 0.01 * i, "usage:/srv": 0.2, "memory": 0.6}
        for i in range(14)
    ]  # what two weeks of daily host_resources runs recorded: / grows a point a day
    seed(report_dir, [(14 - i, {"host_resources:db-host": r}) for i, r in enumerate(readings)])
    cfg = config(
        tmp_path,
        hosts=[{"name": "db-host", "nodeExporter": "https://db.internal:9100/metrics"}],
        capacity={"daysToFull": {"warn": 90, "fail": 30}},
    )
    run = run_checks(
        pytester, cfg, "test_monthly_capacity.py::test_host_capacity", report_dir=report_dir
    )
    check = run.by_name["test_host_capacity[db-host]"]
    assert check["check"] == "host_capacity"
    assert check["verdict"] == "violation"  # the default usage fail level 0.9 in 27 days
    assert check["metrics"]["daysToFull:/"] == pytest.approx(27.0, abs=0.05)
    assert check["metrics"]["daysToFull:/srv"] is None
    assert "reaches 90.00% in 27 days" in check["message"]
    review = read_record(run.run_dir, "capacity-review.json")
    (entry,) = [e for e in review["entries"] if e["check"] == "host_capacity"]
    assert entry["target"] == "db-host"
    assert entry["daysToFull"] == pytest.approx(27.0, abs=0.05)
    assert entry["projections"]["/"]["daysToLimit"] == pytest.approx(27.0, abs=0.05)
    assert entry["projections"]["/srv"]["state"] == "flat"
    assert entry["projections"]["memory"]["state"] == "flat"
    assert entry["window"]["length"] == "30d"
