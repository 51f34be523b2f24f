"""Concurrent runs (issue 8, point 18): none lost from the index, which is rebuilt under one
lock. (history.jsonl itself gave way to the history store of issue 10: tests/test_history_runs.py
runs two real runs at once against it.)"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from pytest_maintcheck.redact import Redactor
from pytest_maintcheck.report.files import publish_run
from pytest_maintcheck.report.index import read_history

RUNNERS = 6
RUNS_EACH = 8


def _records(run_id: str) -> dict[str, Any]:
    log = {"taskId": run_id, "status": "completed", "performed": {"at": "x"}, "counts": {}}
    return {"maintenance-log.json": log}


def _publish(report_dir: Path, run_id: str) -> None:
    staging = report_dir / f".staging-{run_id}"
    staging.mkdir(parents=True)
    publish_run(report_dir, staging, run_id, _records(run_id), Redactor())


def _runner(report_dir: str, runner: int, start: Any) -> None:
    start.wait()
    for i in range(RUNS_EACH):
        _publish(Path(report_dir), f"20260101T000000.000Z-{runner:02d}{i:04d}")


def test_concurrent_runs_are_all_listed_in_the_index(
    tmp_path: Path,
) -> None:
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(RUNNERS)
    runners = [
        ctx.Process(target=_runner, args=(str(report_dir), n, start)) for n in range(RUNNERS)
    ]
    for p in runners:
        p.start()
    for p in runners:
        p.join(120)
        assert p.exitcode == 0
    expected = {
        f"20260101T000000.000Z-{n:02d}{i:04d}" for n in range(RUNNERS) for i in range(RUNS_EACH)
    }
    assert {e["runId"] for e in read_history(report_dir)} == expected
    index = (report_dir / "index.html").read_text()
    assert all(run_id in index for run_id in expected)
