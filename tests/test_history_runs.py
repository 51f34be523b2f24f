"""History across real runs (pytester subprocesses): the store, uptime over the window, a store
that fails, two runs at once, and a demo and a real system sharing one report folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from check_runs import CHECKS, read_record, run_checks, run_dirs
from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import iso, using
from pytest_maintcheck.history.sqlite import STORE_NAME
from pytest_maintcheck.history.store import StoredCheck, StoredRun
from pytest_maintcheck.sandbox import SandboxDatabase
from test_history_store import HOLD_LOCK


def config(
    folder: Path, system: str = "Cardiology", env: str = "production", **extra: Any
) -> dict[str, Any]:
    """A storage health check on a real folder: fast, and fails when the folder is missing."""
    return {
        "version": 1,
        "system": system,
        "environment": env,
        "healthChecks": [
            {"service": "files", "type": "storage", "endpoint": str(folder),
             "thresholds": {"usage": {"warn": 0.999, "fail": 0.9999},
                            "availability": {"warn": 0.99, "fail": 0.95}}}
        ],
        **extra,
    }  # fmt: skip


def stored(report_dir: Path, settings: HistorySettings | None = None) -> list[dict[str, str]]:
    """Every stored number, as `maintcheck history export` gives it."""
    import csv
    import io

    from pytest_maintcheck.history.csvio import write_rows

    out = io.StringIO()
    with using(settings or HistorySettings(), report_dir) as store:
        write_rows(out, store.export_rows())
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def stored_runs(report_dir: Path, settings: HistorySettings | None = None) -> set[str]:
    with using(settings or HistorySettings(), report_dir) as store:
        return store.recorded_run_ids("")


def health(run_dir: Path) -> dict[str, Any]:
    (check,) = [c for c in read_record(run_dir, "results.json")["checks"] if c["check"] == "health"]
    return check


def seed(report_dir: Path, runs: list[tuple[float, dict[str, dict[str, float]]]],
         system: str = "Cardiology", env: str = "production") -> None:  # fmt: skip
    """Earlier runs, ``days ago`` before now, each {check:target: {metric: value}}."""
    now = datetime.now(UTC)
    made = []
    for i, (ago, checks) in enumerate(runs):
        at = iso(now - timedelta(days=ago))
        made.append(
            StoredRun(
                f"{at}-seed{i}", system, env, "old-runner", at, at, source="test",
                checks=tuple(
                    StoredCheck(key.split(":")[0], key.split(":")[1], at, "pass", measurements=m)
                    for key, m in checks.items()
                ),
            )
        )  # fmt: skip
    with using(HistorySettings(), report_dir) as store:
        store.record_runs(made)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "ecg-storage"
    made.mkdir()
    return made


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_every_run_lands_in_the_store_and_uptime_counts_the_runs(
    pytester: pytest.Pytester,
    folder: Path,
    engine: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg, settings = config(folder), HistorySettings()
    if engine == "postgres":
        db: SandboxDatabase = request.getfixturevalue("pg_db")
        monkeypatch.setenv("PGPASSWORD", db.password)
        cfg["history"] = {"dsn": db.dsn, "window": "7d"}
        settings = HistorySettings(dsn=db.dsn)
    report_dir = pytester.path / "reports"
    figures = []
    for _ in range(3):
        run = run_checks(pytester, cfg, "test_daily_health.py", report_dir=report_dir)
        assert run.result.ret == 0, run.result.stdout.str()
        figures.append(health(run.run_dir)["details"]["uptime"])
    assert [f["runs"] for f in figures] == [1, 2, 3]
    assert figures[-1]["window"] == ("7d" if engine == "postgres" else "30d")
    assert figures[-1]["samples"] == 3
    assert stored_runs(report_dir, settings) == {p.name for p in run_dirs(report_dir)}
    rows = [r for r in stored(report_dir, settings) if r["metric"] == "usage"]
    assert len(rows) == 3
    assert {(r["system"], r["environment"], r["check"], r["target"]) for r in rows} == {
        ("Cardiology", "production", "health", "files")
    }
    assert {r["host"] for r in rows} == {os.uname().nodename}
    assert (report_dir / STORE_NAME).exists() == (engine == "sqlite")
    assert not (report_dir / "history.jsonl").exists()


def test_uptime_is_the_window_figure_with_known_failures(
    pytester: pytest.Pytester, folder: Path
) -> None:
    report_dir = pytester.path / "reports"
    earlier = [
        (ago, {"health:files": {"samples": 4, "errorRate": rate}})
        for ago, rate in ((1.5, 0.0), (2.5, 0.25), (3.5, 0.0), (4.5, 0.25), (5.5, 0.0), (6.5, 0.0))
    ]
    seed(report_dir, [(40, {"health:files": {"samples": 100, "errorRate": 1.0}}), *earlier])
    seed(report_dir, [(1, {"health:files": {"samples": 50, "errorRate": 1.0}})], env="demo")
    run = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    check = health(run.run_dir)
    # 2 failures in 24 earlier samples, 0 in this run's 1; the run 40 days ago and the demo
    # environment's run are not this window's
    assert check["metrics"]["uptime"] == pytest.approx(23 / 25)
    assert check["details"]["uptime"]["runs"] == 7
    assert check["details"]["uptime"]["samples"] == 25
    assert check["verdict"] == "violation"
    assert "uptime 92%" in check["message"] or "availability 92%" in check["message"]
    assert read_record(run.run_dir, "health.json")[0]["metrics"]["uptime"] == pytest.approx(0.92)

    # a shorter window holds too few runs: the figure says so and is not judged
    short = run_checks(
        pytester, config(folder, history={"window": "3d"}), "test_daily_health.py",
        report_dir=report_dir,
    )  # fmt: skip
    check = health(short.run_dir)
    assert check["verdict"] == "pass"
    assert check["details"]["uptime"]["runs"] == 4  # 1.5 and 2.5 days ago, the run before, this
    assert check["metrics"]["uptime"] == pytest.approx(9 / 10)
    assert not check["details"]["uptime"]["judged"]
    assert "too little history" in check["message"]


@pytest.fixture
def lock_holder(pytester: pytest.Pytester) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), "NORMAL"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"

    def release() -> None:
        while procs:
            procs.pop().communicate("\n", timeout=10)

    hold.release = release  # type: ignore[attr-defined]
    yield hold
    release()


def test_a_locked_store_costs_the_run_nothing_and_the_next_run_catches_up(
    pytester: pytest.Pytester, folder: Path, lock_holder: Any
) -> None:
    report_dir = pytester.path / "reports"
    first = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    lock_holder(report_dir / STORE_NAME)
    started = time.monotonic()
    locked = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    assert time.monotonic() - started < 30
    assert locked.result.ret == 0
    locked.result.stdout.fnmatch_lines(["HISTORY [[]medium] history store * stayed locked*"])
    log = read_record(locked.run_dir, "maintenance-log.json")
    assert any("history store: degraded" in f and "locked" in f for f in log["details"]["findings"])
    assert health(locked.run_dir)["verdict"] == "pass"  # the run's own records are complete
    assert locked.run_dir.name not in stored_runs(report_dir)
    lock_holder.release()
    third = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    log = read_record(third.run_dir, "maintenance-log.json")
    assert not [f for f in log["details"]["findings"] if "history" in f]
    assert stored_runs(report_dir) == {first.run_dir.name, locked.run_dir.name, third.run_dir.name}
    index = (report_dir / "index.html").read_text()
    assert all(r.name in index for r in (first.run_dir, locked.run_dir, third.run_dir))


def test_two_runs_at_once_both_reach_the_store(pytester: pytest.Pytester, folder: Path) -> None:
    # two systems' configs into one report folder and store: two runs of one suite and one
    # config may not overlap (the run lock, issue 12), two configs may, and both must be kept
    report_dir = pytester.path / "reports"
    procs = []
    for system in ("Cardiology", "Radiology"):
        path = pytester.path / f"{system.lower()}.yaml"
        path.write_text(yaml.safe_dump(config(folder, system=system)))
        argv = [sys.executable, "-m", "pytest", str(CHECKS / "test_daily_health.py"), "-p",
                "no:cacheprovider", "--rootdir", str(pytester.path), "--maintcheck-config",
                str(path), "--maintcheck-report-dir", str(report_dir)]  # fmt: skip
        procs.append(subprocess.Popen(argv, cwd=pytester.path, stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not [o for o in outputs if "HISTORY" in o], outputs
    runs = run_dirs(report_dir)
    assert len(runs) == 2
    assert stored_runs(report_dir) == {r.name for r in runs}
    systems = {read_record(r, "maintenance-log.json")["system"] for r in runs}
    assert systems == {"Cardiology", "Radiology"}


def test_a_demo_run_and_a_real_run_in_one_report_folder_are_kept_apart(
    pytester: pytest.Pytester, folder: Path, tmp_path: Path
) -> None:
    report_dir = pytester.path / "reports"
    demo = config(tmp_path / "missing", system="Cardiology (demo sandbox)", env="demo")
    real = config(folder)
    first_demo = run_checks(pytester, demo, "test_daily_health.py", report_dir=report_dir)
    (incident,) = read_record(first_demo.run_dir, "incidents.json")
    assert (incident["check"], incident["target"], incident["environment"]) == (
        "health", "files", "demo"
    )  # fmt: skip
    real_run = run_checks(pytester, real, "test_daily_health.py", report_dir=report_dir)
    assert read_record(real_run.run_dir, "incidents.json") == []  # not the demo's incident
    assert health(real_run.run_dir)["details"]["uptime"]["runs"] == 1
    assert health(real_run.run_dir)["details"]["uptime"]["failures"] == 0
    second_demo = run_checks(pytester, demo, "test_daily_health.py", report_dir=report_dir)
    (still_open,) = read_record(second_demo.run_dir, "incidents.json")
    assert not still_open["timeline"]["resolved"]  # the real run did not resolve it
    assert still_open["occurrences"] == 2
    assert still_open["lastSeen"] >= incident["lastSeen"]
    assert health(second_demo.run_dir)["details"]["uptime"]["failures"] == 2


def test_an_incident_is_resolved_by_a_run_from_another_folder(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    report_dir = pytester.path / "reports"
    storage = tmp_path / "later"
    copied = pytester.path / "elsewhere" / "test_daily_health.py"
    copied.parent.mkdir()
    copied.write_text((CHECKS / "test_daily_health.py").read_text())
    path = pytester.path / "maintcheck.yaml"
    path.write_text(yaml.safe_dump(config(storage)))
    pytester.runpytest_subprocess(
        str(copied), "--maintcheck-config", str(path), "-p", "no:cacheprovider",
        "--rootdir", str(pytester.path), "--maintcheck-report-dir", str(report_dir),
    )  # fmt: skip
    (opened,) = read_record(run_dirs(report_dir)[-1], "incidents.json")
    assert opened["nodeid"].startswith("elsewhere/")
    storage.mkdir()
    later = run_checks(pytester, config(storage), "test_daily_health.py", report_dir=report_dir)
    (resolved,) = read_record(later.run_dir, "incidents.json")
    assert resolved["timeline"]["resolved"]
    assert resolved["timeline"]["detected"] == opened["timeline"]["detected"]


def test_the_old_history_jsonl_is_imported_once(pytester: pytest.Pytester, folder: Path) -> None:
    report_dir = pytester.path / "reports"
    report_dir.mkdir()
    old = [{"runId": f"20250{m}01T061500.000Z-0ld00{m}", "startedAt": f"2025-0{m}-01T06:15:00Z",
            "system": "Cardiology", "environment": "production", "suites": ["daily"],
            "status": "completed", "counts": {"pass": 3}} for m in (1, 2)]  # fmt: skip
    (report_dir / "history.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in old) + "{truncated\n"
    )
    run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    assert not (report_dir / "history.jsonl").exists()
    assert (report_dir / "history.jsonl.imported").is_file()
    run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    with using(HistorySettings(), report_dir) as store:
        assert store.run_count() == 4
        summaries = store.summaries([e["runId"] for e in old])
        assert summaries[old[0]["runId"]]["counts"] == {"pass": 3}
        assert any(k.startswith("imported:") for k in _meta_keys(store))


def _meta_keys(store: Any) -> list[str]:
    cur = store._cursor()
    cur.execute("SELECT key FROM meta")
    return [row[0] for row in cur.fetchall()]


def test_a_corrupt_store_is_moved_aside_and_rebuilt_from_the_run_folders(
    pytester: pytest.Pytester, folder: Path
) -> None:
    report_dir = pytester.path / "reports"
    first = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    (report_dir / STORE_NAME).write_bytes(b"\x00garbage, not SQLite\n" * 512)
    second = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    assert second.result.ret == 0
    log = read_record(second.run_dir, "maintenance-log.json")
    (finding,) = [f for f in log["details"]["findings"] if "history store" in f]
    assert "is corrupt" in finding
    assert "moved aside to history.sqlite.corrupt-" in finding
    assert list(report_dir.glob("history.sqlite.corrupt-*"))
    assert stored_runs(report_dir) == {first.run_dir.name, second.run_dir.name}


def _figures(page: str) -> dict[str, list[str]]:
    """Each chart's SVG by kind (``data-chart``), in page order."""
    out: dict[str, list[str]] = {}
    for kind, svg in re.findall(r'<figure class="chart" data-chart="([^"]+)">(.*?)</figure>',
                                page, re.DOTALL):  # fmt: skip
        out.setdefault(kind, []).append(svg)
    return out


def _dots(svg: str) -> dict[str, int]:
    """Points drawn per series of a pygal chart, by the series' legend name."""
    names = dict(re.findall(r'id="activate-serie-(\d+)" class="legend[^"]*">.*?<text[^>]*>'
                            r"([^<]*)</text>", svg, re.DOTALL))  # fmt: skip
    parts = re.split(r'<g class="series serie-(\d+) color-\d+"', svg)
    out: dict[str, int] = {}
    for index, drawn in zip(parts[1::2], parts[2::2], strict=True):
        out[names[index]] = out.get(names[index], 0) + drawn.count('class="dot ')
    return out


def test_the_first_demo_like_run_draws_the_seeded_weeks_in_the_index_and_review(
    pytester: pytest.Pytester, folder: Path
) -> None:
    from pytest_maintcheck.report.review import write_review
    from pytest_maintcheck.sandbox.demo_history import DAYS, seed_demo_history

    report_dir = pytester.path / "reports"
    cfg = config(folder, system="Cardiology (demo sandbox)", env="demo")
    cfg["healthChecks"][0]["service"] = "ecg-storage"  # the service the seed grows
    # noon today: each seeded run on its own UTC day, whatever the hour the test runs at
    seeded_at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    assert seed_demo_history(cfg, report_dir, 50_000_000, seeded_at) == DAYS
    run_checks(pytester, cfg, "test_daily_health.py", report_dir=report_dir)
    assert len(run_dirs(report_dir)) == 1  # the seeded runs live in the store only

    figures = _figures((report_dir / "index.html").read_text(encoding="utf-8"))
    (availability,) = figures["availability"]
    days = _dots(availability)
    assert days["clinical-api"] == DAYS
    assert days["ecg-storage"] == DAYS + 1  # and today's real run
    (p95,) = figures["p95"]
    assert _dots(p95)["ecg-viewer"] == DAYS
    (storage,) = figures["storage"]
    assert "projection" in storage
    assert "capacity" in storage
    assert _dots(storage)["ecg-storage"] == DAYS + 1
    (database,) = figures["database"]
    assert _dots(database)["primary"] == DAYS
    assert "projection" in database
    (verdicts,) = figures["verdicts"]
    assert verdicts.count('<desc class="value">') >= DAYS + 1

    month = f"{seeded_at - timedelta(days=1):%Y-%m}"  # always holds a seeded day
    review = write_review(report_dir, month).read_text(encoding="utf-8")
    table = review.split('id="review-availability"')[1].split("</table>")[0]
    for service in ("clinical-api", "clinical-db", "sso", "ecg-viewer", "ecg-storage"):
        assert f"<td>{service}</td>" in table, service


def test_planned_maintenance_is_left_out_of_the_stores_uptime_and_the_status_page_shows_it(
    pytester: pytest.Pytester, folder: Path, tmp_path: Path
) -> None:
    report_dir = pytester.path / "reports"
    # 45 of 50 samples up
    seed(report_dir, [(5 - i, {"health:files": {"samples": 10, "errorRate": 0.5 if i == 0 else 0}})
                      for i in range(5)])  # fmt: skip
    now = datetime.now(UTC)
    window = {"name": "disk-swap", "targets": ["files"], "reason": "replacing the array",
              "start": iso(now - timedelta(hours=1)),
              "end": iso(now + timedelta(hours=1))}  # fmt: skip
    planned = run_checks(pytester, config(tmp_path / "missing", maintenanceWindows=[window]),
                         "test_daily_health.py", report_dir=report_dir)  # fmt: skip
    assert health(planned.run_dir)["inMaintenance"] is True
    assert health(planned.run_dir)["metrics"]["errorRate"] == 1.0  # failed, in the window
    with using(HistorySettings(), report_dir) as store:
        left_out = store.in_maintenance("Cardiology", "production", "2000", ["health"])
    assert left_out == {(planned.run_dir.name, "health", "files")}  # visible in the store

    later = run_checks(pytester, config(folder), "test_daily_health.py", report_dir=report_dir)
    check = health(later.run_dir)
    samples = int(check["metrics"]["samples"])
    # the window's failed samples are not counted: 45 of 50 seeded, and this run's
    assert check["metrics"]["uptime"] == pytest.approx((45 + samples) / (50 + samples))
    assert check["details"]["uptime"]["runs"] == 6
    status = (report_dir / "status.html").read_text(encoding="utf-8")
    # the store's window figure, not the two run folders here (one down, one up)
    assert f"{check['metrics']['uptime'] * 100:.2f}% uptime (30 days)" in status
