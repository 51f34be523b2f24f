"""Benchmark: run history at the size of a hospital group, on SQLite and PostgreSQL.

    .venv/bin/python bench/history.py [--services 200] [--days 365] [--engine sqlite|postgres|both]

A store holding a year of daily runs for ``services`` health checks (a tenth of them storage)
and ten databases (size, connections, slow queries) is built once per engine. Then:

1. Daily suite: a real ``pytest -m daily`` of ``checks/test_daily_health.py`` against the
   sandbox API (200 ms per answer, 3 samples) with that store, wall time measured. The history
   work of such a run (the window read before judging, and the write of the run with the index
   lines at its end) is then timed on the same store with the very calls the plugin makes, on
   the run's own records. Ratio: history work / suite wall time; goal under 0.10.
2. Monthly capacity review: the review's read and every projection, trend and usage pattern
   for every target, over the whole year (window 365d) and over the default 30d. Ratio: time /
   2 s; goal under 1.
Medians of ``--repeat`` timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pytest_maintcheck.config import Config, HistorySettings, load_config
from pytest_maintcheck.history import capacity, iso, using
from pytest_maintcheck.history.recording import record_run
from pytest_maintcheck.history.store import StoredCheck, StoredRun
from pytest_maintcheck.history.window import CAPACITY_CHECKS, CAPACITY_METRICS, read_points
from pytest_maintcheck.sandbox import PostgresCluster, SandboxApi
from pytest_maintcheck.verdict import Assessment

REPO = Path(__file__).resolve().parents[1]
DAILY_CHECKS = REPO / "checks" / "test_daily_health.py"
SUITE_GOAL = 0.10
REVIEW_GOAL = 2.0
DATABASES = 10


def services(count: int) -> list[tuple[str, str]]:
    """(name, type): every tenth a storage service."""
    return [(f"svc-{i:03d}", "storage" if i % 10 == 0 else "api") for i in range(count)]


def year_of_runs(count: int, days: int, now: datetime) -> Iterator[list[StoredRun]]:
    """One run a day, in batches of 30, oldest first."""
    batch = []
    for ago in range(days, 0, -1):
        at = iso(now - timedelta(days=ago))
        checks = []
        for i, (name, kind) in enumerate(services(count)):
            values = {
                "samples": 3.0,
                "errorRate": 0.0 if (ago + i) % 97 else 1 / 3,
                "responseTime": 80 + (i % 40) + (days - ago) * 0.05,
                "uptime": 1.0,
            }
            if kind == "storage":
                values["usage"] = 0.3 + 0.4 * (days - ago) / days
            checks.append(StoredCheck("health", name, at, "pass", measurements=values))
        for d in range(DATABASES):
            db = f"db-{d}"
            checks += [
                StoredCheck("database_size", db, at, "pass",
                            measurements={"size": 1e9 * (10 + (days - ago) * 0.02)}),
                StoredCheck("connections", db, at, "pass",
                            measurements={"connections": 20.0 + ago % 7, "activeSessions": 4.0}),
                StoredCheck("slow_queries", db, at, "pass", measurements={"slowQuery": 0.1}),
            ]  # fmt: skip
        batch.append(
            StoredRun(f"{at}-bench{ago:03d}", "bench", "production", "bench-runner", at, at,
                      status="completed", suites=("daily",), source="bench", checks=tuple(checks))
        )  # fmt: skip
        if len(batch) == 30:
            yield batch
            batch = []
    if batch:
        yield batch


def write_config(workdir: Path, api: SandboxApi, count: int, dsn: str | None) -> Path:
    health = []
    for name, kind in services(count):
        if kind == "storage":
            folder = workdir / "storage" / name
            folder.mkdir(parents=True, exist_ok=True)
            health.append({"service": name, "type": "storage", "endpoint": str(folder)})
        else:
            health.append({"service": name, "type": "api", "samples": 3,
                           "endpoint": api.url(f"/health?service={name}")})  # fmt: skip
    config: dict[str, Any] = {
        "version": 1, "system": "bench", "environment": "production", "healthChecks": health,
        "databases": {f"db-{d}": {"dsn": f"postgresql://maint@127.0.0.1:1/db{d}"}
                      for d in range(DATABASES)},
        "databaseMaintenance": [{"database": f"db-{d}"} for d in range(DATABASES)],
    }  # fmt: skip
    if dsn:
        config["history"] = {"dsn": dsn}
    path = workdir / "maintcheck.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def median_time(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def review(config: Config, report_dir: Path, now: datetime) -> None:
    """What the monthly capacity checks do, for every target, from one read."""
    window = read_points(config, report_dir, now, CAPACITY_CHECKS, CAPACITY_METRICS)
    assert window.problem is None, window.problem
    assert window.points, "the review read nothing"
    for h in config.health_checks:
        capacity.review_performance(window, h, config.capacity_trend_factor, Assessment())
        if h.type == "storage":
            capacity.review_storage(window, h, config.capacity_days_to_full, Assessment())
    for db in config.database_maintenance:
        capacity.review_database(
            window, db, config.capacity_days_to_full, config.capacity_trend_factor, Assessment()
        )


def bench_engine(engine: str, args: argparse.Namespace, workdir: Path, dsn: str | None) -> None:
    now = datetime.now(UTC)
    report_dir = workdir / "reports"
    settings = HistorySettings(dsn=dsn)
    started = time.perf_counter()
    with using(settings, report_dir) as store:
        for batch in year_of_runs(args.services, args.days, now):
            store.record_runs(batch)
        runs = store.run_count()
    print(
        f"{engine}: {runs} runs x {args.services} services + {DATABASES} databases stored "
        f"in {time.perf_counter() - started:.1f} s"
    )
    with SandboxApi(latency_ms=200) as api:
        path = write_config(workdir, api, args.services, dsn)
        cmd = [sys.executable, "-m", "pytest", str(DAILY_CHECKS), "-m", "daily", "-q",
               "-p", "no:cacheprovider", "--maintcheck-config", str(path),
               "--maintcheck-report-dir", str(report_dir), "--rootdir", str(workdir)]  # fmt: skip
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600,
                                  check=False, env=dict(os.environ))  # fmt: skip
            walls.append(time.perf_counter() - t0)
            if done.returncode not in (0, 1):
                sys.exit(f"daily run failed ({done.returncode}):\n{done.stdout[-3000:]}")
    suite = statistics.median(walls)
    config = load_config(path)
    run = sorted(p for p in report_dir.iterdir() if p.is_dir())[-1]
    records = {
        n: json.loads((run / n).read_text()) for n in ("results.json", "maintenance-log.json")
    }
    uptime = records["results.json"]["checks"][0]["details"]["uptime"]
    assert uptime["runs"] > 30, uptime  # the run really read its window of the year

    def history_work() -> None:
        window = read_points(config, report_dir, now, ("health",), ("samples", "errorRate"))
        assert window.points
        assert window.problem is None
        outcome = record_run(settings, report_dir, records, now=now)
        assert not outcome.problems, outcome.problems

    history = median_time(history_work, args.repeat)
    ratio = history / suite
    print(f"  daily suite ({args.services} services), wall  {suite:6.2f} s")
    print(
        f"  history read + write             {history:6.3f} s  = {ratio:.3f} of the suite "
        f"(goal < {SUITE_GOAL})  {'ok' if ratio < SUITE_GOAL else 'MISSED'}"
    )
    for label, window in (("365d", 365 * 86400.0), ("30d", 30 * 86400.0)):
        shaped = replace(config, history=replace(config.history, window=window))
        took = median_time(lambda shaped=shaped: review(shaped, report_dir, now), args.repeat)
        print(
            f"  capacity review, window {label:<5}    {took:6.3f} s  = {took / REVIEW_GOAL:.3f} of "
            f"{REVIEW_GOAL:g} s  {'ok' if took < REVIEW_GOAL else 'MISSED'}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args(argv)
    if args.engine in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="maintcheck-bench-") as tmp:
            bench_engine("sqlite", args, Path(tmp), None)
    if args.engine in ("postgres", "both"):
        with (
            tempfile.TemporaryDirectory(prefix="maintcheck-bench-") as tmp,
            PostgresCluster() as pg,
        ):
            db = pg.create_database("history")
            os.environ["PGPASSWORD"] = db.password  # libpq reads it; the DSN carries none
            bench_engine("postgres", args, Path(tmp), db.dsn)


if __name__ == "__main__":
    main()
