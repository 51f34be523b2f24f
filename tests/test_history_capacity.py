"""The monthly capacity review end to end, on a store seeded with a known history, and the
``maintcheck history`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from check_runs import read_record, run_checks
from pytest_maintcheck.cli import main
from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import using
from pytest_maintcheck.history.trends import uptime
from test_history_runs import config, seed, stored

GB = 1e9


def capacity_config(folder: Path) -> dict[str, Any]:
    cfg = config(folder)
    cfg["databases"] = {"primary": {"dsn": "postgresql://maint@127.0.0.1:5432/clinical"}}
    cfg["databaseMaintenance"] = [{"database": "primary", "thresholds": {"size": "80GB"}}]
    cfg["capacity"] = {"daysToFull": {"warn": 90, "fail": 30}, "trendFactor": 1.5}
    return cfg


def test_the_capacity_review_projects_compares_and_lists_usage(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    folder = tmp_path / "ecg"
    folder.mkdir()
    report_dir = pytester.path / "reports"
    history = []
    for i in range(20):  # one run a day, 20 days ago to 1 day ago
        ago = 20 - i
        history.append(
            (
                ago,
                {
                    # 1 point of the disk a day: 80% a day ago, full 20 days after that
                    "health:files": {"usage": 0.61 + 0.01 * i, "responseTime": 10 + i % 3,
                                     "requests": 1000 + 10 * i},
                    # +1 GB a day: 60 GB a day ago, 80 GB 20 days after that
                    "database_size:primary": {"size": (41 + i) * GB},
                    "slow_queries:primary": {"slowQuery": 0.2},
                    "connections:primary": {"connections": 10 + i, "activeSessions": 2 + i % 4},
                },
            )
        )  # fmt: skip
    history[9][1]["health:files"]["usage"] = 0.02  # one odd day does not bend the line
    history[-1][1]["health:files"]["responseTime"] = 30.0  # the latest p95 tripled
    history[-1][1]["slow_queries:primary"]["slowQuery"] = 0.5
    seed(report_dir, history)
    run = run_checks(
        pytester, capacity_config(folder), "test_monthly_capacity.py", report_dir=report_dir
    )
    by_test = run.by_test
    storage = by_test["test_storage_capacity"]
    assert storage["verdict"] == "violation"
    assert storage["metrics"]["daysToFull"] == pytest.approx(20, abs=0.2)
    assert "reaches 100.00% in 20 days" in storage["message"]
    database = by_test["test_database_capacity"]
    assert database["metrics"]["daysToFull"] == pytest.approx(20, abs=0.2)
    assert database["verdict"] == "violation"
    assert any(
        "slowest statement mean 500ms against its baseline 200ms" in f["description"]
        for f in database["findings"]
    ), database["findings"]
    trend = by_test["test_performance_trend"]
    assert trend["verdict"] == "degraded"
    (finding,) = trend["findings"]
    assert (
        "files p95 30 ms against its baseline 11 ms (median of 19 earlier runs): x2.73"
        in (finding["description"])
    )
    review = read_record(run.run_dir, "capacity-review.json")
    entries = {e["check"]: e for e in review["entries"]}
    assert entries["database_capacity"]["usagePatterns"]["connections"] == {
        "peak": 29.0, "typical": 19.5, "runs": 20
    }  # fmt: skip
    assert entries["performance_trend"]["usagePatterns"]["requests"]["peak"] == 1190.0
    assert entries["storage_capacity"]["projection"]["state"] == "filling"
    assert entries["storage_capacity"]["window"]["length"] == "30d"


@pytest.mark.parametrize(
    ("usage", "said"),
    [
        ([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], "flat at 50.00%"),
        ([0.6, 0.58, 0.56, 0.54, 0.52, 0.5], "shrinking by"),
        ([0.5, 0.6], "no projection: 2 measurement(s)"),
    ],
)
def test_a_series_without_a_date_is_said_plainly_and_passes(
    pytester: pytest.Pytester, tmp_path: Path, usage: list[float], said: str
) -> None:
    report_dir = pytester.path / "reports"
    seed(
        report_dir, [(len(usage) - i, {"health:files": {"usage": u}}) for i, u in enumerate(usage)]
    )
    run = run_checks(
        pytester, config(tmp_path), "test_monthly_capacity.py::test_storage_capacity",
        report_dir=report_dir,
    )  # fmt: skip
    check = run.by_test["test_storage_capacity"]
    assert check["verdict"] == "pass"
    assert check["metrics"]["daysToFull"] is None
    assert said in check["message"]


def write_config(path: Path, folder: Path) -> Path:
    path.write_text(yaml.safe_dump(config(folder)))
    return path


def test_history_import_and_export_through_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "maintcheck.yaml", tmp_path)
    csv_file = tmp_path / "nagios.csv"
    csv_file.write_text(
        "at,check,target,metric,value\n"
        "2025-10-01,health,files,responseTime,120\n"
        "2025-10-01,health,files,errorRate,0\n"
        "2025-10-02,health,files,responseTime,130\n"
    )
    reports = tmp_path / "reports"
    common = ["--report-dir", str(reports), "--config", str(cfg)]
    assert main(["history", "import", str(csv_file), *common]) == 0
    assert "imported 3 measurements in 2 runs" in capsys.readouterr().out
    assert main(["history", "import", str(csv_file), *common]) == 0  # twice: nothing doubled
    assert len(stored(reports)) == 3
    out = tmp_path / "out.csv"
    assert main(["history", "export", "--output", str(out), *common]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "at,system,environment,check,target,metric,value,verdict,host,runId"
    assert lines[1].startswith("2025-10-01T00:00:00Z,Cardiology,production,health,files,")
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("at,check,target,metric\n", "nagios.csv:1: missing column(s) value"),
        ("at,check,target,metric,value\n2025-13-01,health,files,x,1\n", "nagios.csv:2: at"),
    ],
)
def test_a_bad_import_is_one_message_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    cfg = write_config(tmp_path / "maintcheck.yaml", tmp_path)
    (tmp_path / "nagios.csv").write_text(content)
    status = main(["history", "import", str(tmp_path / "nagios.csv"), "--config", str(cfg),
                   "--report-dir", str(tmp_path / "reports")])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 4
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_export_without_a_store_or_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "maintcheck.yaml", tmp_path)
    assert main(["history", "export", "--config", str(cfg), "--report-dir", str(tmp_path)]) == 4
    assert "no history store at" in capsys.readouterr().err
    assert main(["history", "export", "--config", str(tmp_path / "nope.yaml")]) == 4
    assert "config file not found" in capsys.readouterr().err


def test_the_first_demo_run_already_shows_uptime_a_trend_and_a_projection(tmp_path: Path) -> None:
    import subprocess
    import sys

    from check_runs import newest_run

    reports = tmp_path / "r"
    out = subprocess.run(
        [sys.executable, "-m", "pytest_maintcheck.cli", "demo", "--suite", "monthly",
         "--report-dir", str(reports)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "seeded 21 days of history" in out.stdout
    entries = read_record(newest_run(reports), "capacity-review.json")["entries"]
    found = {(e["check"], e["target"]): e for e in entries}
    viewer = found["performance_trend", "ecg-viewer"]
    assert viewer["verdict"] == "degraded"
    assert viewer["trends"]["responseTime"]["baselineRuns"] == 20
    storage = found["storage_capacity", "ecg-storage"]
    assert storage["projection"]["state"] == "filling"
    assert storage["daysToFull"] == pytest.approx(60, abs=2)
    # the runner's filesystem holding the reports reaches its usage fail level (0.9) in 120 days
    runner = found["host_capacity", "runner"]
    (growing,) = [p for p in runner["projections"].values() if p["state"] == "filling"]
    assert growing["limit"] == 0.9
    assert growing["daysToLimit"] == pytest.approx(120, abs=2)
    assert runner["daysToFull"] == pytest.approx(120, abs=2)
    # the daily health of the same demo reads the seeded window: uptime judged on 22 runs
    with using(HistorySettings(), reports) as store:
        system = read_record(newest_run(reports), "results.json")["system"]
        points = store.points(system, "demo", "2000", ["health"])
    figure = uptime([p for p in points if p.target == "clinical-api"], samples_now=5,
                    failures_now=0, window=30 * 86400)  # fmt: skip
    assert figure.judged
    assert figure.value == pytest.approx(109 / 110)  # 21 seeded runs of 5 samples, 1 failed
    # the index draws the seeded weeks from the store, and the review reads them too
    page = (reports / "index.html").read_text(encoding="utf-8")
    for kind in ("availability", "p95", "storage", "database", "verdicts"):
        assert f'data-chart="{kind}"><svg' in page, kind
    assert "Trends need two runs" not in page
    assert "maintcheck demo: monthly review: " in out.stdout
    review = out.stdout.split("maintcheck demo: monthly review: ")[1].splitlines()[0]
    table = Path(review).read_text(encoding="utf-8").split('id="review-availability"')[1]
    assert "<td>clinical-api</td>" in table.split("</table>")[0]
