"""history.jsonl under concurrent runs (issue 8, point 18): whole lines, none lost, the index
lists every run, and a cut-short last line cannot swallow the next run's line."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from pytest_maintcheck.redact import Redactor
from pytest_maintcheck.report.files import publish_run
from pytest_maintcheck.report.index import HISTORY, read_history

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


def test_concurrent_runs_lose_no_history_line_and_the_index_lists_every_run(
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
    lines = (report_dir / HISTORY).read_text().splitlines()
    assert all(json.loads(line)["runId"] in expected for line in lines)  # every line whole
    assert {json.loads(line)["runId"] for line in lines} == expected
    assert {e["runId"] for e in read_history(report_dir)} == expected
    index = (report_dir / "index.html").read_text()
    assert all(run_id in index for run_id in expected)


def test_a_cut_short_last_line_does_not_swallow_the_next_run(tmp_path: Path) -> None:
    report_dir = tmp_path / "reports"
    _publish(report_dir, "20260101T000000.000Z-aaaaaa")
    history = report_dir / HISTORY
    whole = history.read_text()
    history.write_text(whole + whole[: len(whole) // 2])  # a crash mid-append
    _publish(report_dir, "20260101T000001.000Z-bbbbbb")
    assert [e["runId"] for e in read_history(report_dir)] == [
        "20260101T000000.000Z-aaaaaa",
        "20260101T000001.000Z-bbbbbb",
    ]
    assert history.read_text().endswith("\n")
