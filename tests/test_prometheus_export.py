"""`reporting.prometheusTextfile` (issue 12, point 3): gauges of verdicts, measured values and
each suite's last success, read back with prometheus_client's own parser."""

from __future__ import annotations

import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from check_results import check_result
from check_runs import newest_run, pytest_run, read_record
from pytest_maintcheck.export.prometheus import export_run, run_samples
from pytest_maintcheck.result import CheckResult

NOW = datetime(2026, 3, 1, 2, 15, tzinfo=UTC)


def _site(tmp_path: Path, services: list[str], textfile: Path) -> Path:
    for name in services:
        (tmp_path / name).mkdir(exist_ok=True)
    config = {
        "version": 1,
        "system": "Cardiology",
        "environment": "production",
        "healthChecks": [{"service": s, "type": "storage", "endpoint": s} for s in services],
        "reporting": {"prometheusTextfile": str(textfile)},
    }
    path = tmp_path / "maintcheck.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _daily(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return pytest_run(
        tmp_path,
        config,
        "test_daily_health.py",
        report_dir=tmp_path / "reports",
        args=["-m", "daily"],
    )


def _parsed(path: Path) -> dict[str, Any]:
    """family name -> (type, {frozenset(labels): value})"""
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(path.read_text()):
        out[family.name] = (
            family.type,
            {frozenset(s.labels.items()): s.value for s in family.samples},
        )
    return out


def _value(parsed: dict[str, Any], family: str, **labels: str) -> float | None:
    samples = parsed[family][1]
    return samples.get(frozenset(labels.items()))


def _weekly_result(target: str, verdict: str) -> CheckResult:
    return check_result(
        suite="weekly",
        check="dead_tuples",
        target=target,
        verdict=verdict,
        metrics={"deadTupleRatio": 0.15, "tables": ["a"]},
        thresholds={"deadTupleRatio": {"warn": 0.1, "fail": 0.2, "unit": "ratio"}},
    )


def test_a_run_writes_gauges_that_parse_back(tmp_path: Path) -> None:
    textfile = tmp_path / "textfile" / "maintcheck.prom"
    textfile.parent.mkdir()
    config = _site(tmp_path, ["scans", "archive"], textfile)
    done = _daily(tmp_path, config)
    assert done.returncode == 0, done.stdout[-3000:]
    parsed = _parsed(textfile)
    assert {kind for kind, _ in parsed.values()} == {"gauge"}  # never a counter
    health = read_record(newest_run(tmp_path / "reports"), "health.json")
    assert len(health) == 2
    for service in ("scans", "archive"):
        ident = {"suite": "daily", "check": "health", "target": service}
        assert _value(parsed, "maintcheck_check_verdict", **ident) == 0
        usage = _value(parsed, "maintcheck_check_metric", **ident, metric="usage", unit="ratio")
        assert usage is not None
        assert 0 <= usage <= 1
        fail = _value(parsed, "maintcheck_check_threshold", **ident, metric="usage", level="fail")
        assert fail == 0.9  # the default level
    finished = _value(parsed, "maintcheck_last_success_timestamp_seconds", suite="daily")
    assert finished is not None
    assert abs(finished - datetime.now(UTC).timestamp()) < 300
    assert _value(parsed, "maintcheck_run_checks", suite="daily", verdict="pass") == 2
    assert sorted(p.name for p in textfile.parent.iterdir()) == ["maintcheck.prom"]  # no temp
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644  # node_exporter's account reads it


def test_a_run_keeps_the_other_suites_series_and_replaces_its_own(tmp_path: Path) -> None:
    textfile = tmp_path / "maintcheck.prom"
    week = NOW - timedelta(days=3)
    notes = export_run(
        textfile,
        [_weekly_result("primary", "degraded")],
        started=week - timedelta(minutes=5),
        finished=week,
        interrupted=False,
    )
    assert notes == []
    config = _site(tmp_path, ["scans", "archive"], textfile)
    assert _daily(tmp_path, config).returncode == 0
    _site(tmp_path, ["scans"], textfile)  # archive is no longer checked
    assert _daily(tmp_path, config).returncode == 0
    parsed = _parsed(textfile)
    assert _value(parsed, "maintcheck_last_success_timestamp_seconds", suite="weekly") == (
        week.timestamp()
    )
    weekly = {"suite": "weekly", "check": "dead_tuples", "target": "primary"}
    assert _value(parsed, "maintcheck_check_verdict", **weekly) == 1
    daily = {"suite": "daily", "check": "health"}
    assert _value(parsed, "maintcheck_check_verdict", **daily, target="scans") == 0
    assert _value(parsed, "maintcheck_check_verdict", **daily, target="archive") is None


def test_a_suite_that_did_not_fully_run_keeps_its_last_success(tmp_path: Path) -> None:
    textfile = tmp_path / "maintcheck.prom"
    export_run(
        textfile,
        [_weekly_result("primary", "pass")],
        started=NOW - timedelta(minutes=1),
        finished=NOW,
        interrupted=False,
    )
    later = NOW + timedelta(days=7)
    export_run(
        textfile,
        [_weekly_result("primary", "error")],
        started=later - timedelta(minutes=1),
        finished=later,
        interrupted=False,
    )
    parsed = _parsed(textfile)
    success = _value(parsed, "maintcheck_last_success_timestamp_seconds", suite="weekly")
    assert success == NOW.timestamp()  # the error run is not a success
    last_run = _value(parsed, "maintcheck_last_run_timestamp_seconds", suite="weekly")
    assert last_run == later.timestamp()
    weekly = {"suite": "weekly", "check": "dead_tuples", "target": "primary"}
    assert _value(parsed, "maintcheck_check_verdict", **weekly) == 2  # could not measure


def test_an_interrupted_run_is_not_a_success() -> None:
    samples, suites = run_samples(
        [_weekly_result("primary", "pass")], started=NOW, finished=NOW, interrupted=True
    )
    assert suites == {"weekly"}
    assert samples.rows["maintcheck_last_success_timestamp_seconds"] == {}
    assert samples.rows["maintcheck_last_run_timestamp_seconds"] == {("weekly",): NOW.timestamp()}


def test_a_textfile_folder_that_is_not_a_folder_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "textfile"
    folder.write_text("a file where the folder should be")
    result = _weekly_result("p", "pass")
    notes = export_run(folder / "m.prom", [result], started=NOW, finished=NOW, interrupted=False)
    assert len(notes) == 1
    assert "could not write the Prometheus textfile" in notes[0]


def test_a_missing_textfile_folder_is_a_notice_and_the_records_are_written(
    tmp_path: Path,
) -> None:
    config = _site(tmp_path, ["scans"], tmp_path / "no-such-folder" / "maintcheck.prom")
    done = _daily(tmp_path, config)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "could not write the Prometheus textfile" in done.stdout
    assert (newest_run(tmp_path / "reports") / "maintenance-log.json").is_file()
