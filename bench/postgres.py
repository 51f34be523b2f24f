"""Benchmark: the weekly database checks on a database of 2,000 tables against one of 10.

Goal (issue 3): under 2x the time, because a database costs one session and a fixed number of
catalog queries whatever its number of tables. Starts its own throwaway PostgreSQL.

    .venv/bin/python bench/postgres.py [--tables 2000] [--repeat 5]
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
from pathlib import Path

import yaml

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes.pg_maintenance import take_snapshot
from pytest_maintcheck.sandbox import PostgresCluster

CHECKS = Path(__file__).resolve().parents[1] / "checks" / "test_weekly_database.py"
ROLE, PASSWORD = "bench_monitor", "bench-monitor-password"


def build(cluster: PostgresCluster, name: str, tables: int) -> None:
    """A healthy database: every table with a primary key, 100 rows, vacuumed and analyzed."""
    db = cluster.create_database(name)
    with db.connect() as conn:
        conn.execute(f"GRANT CONNECT ON DATABASE {name} TO {ROLE}")
        conn.execute(
            f"DO $$BEGIN FOR i IN 1..{int(tables)} LOOP EXECUTE format("  # noqa: S608 (our int)
            "'CREATE TABLE t_%s (id int PRIMARY KEY, v text);"
            " INSERT INTO t_%s SELECT g, md5(g::text) FROM generate_series(1, 100) g', i, i);"
            " END LOOP; END$$"
        )
        conn.execute("VACUUM ANALYZE")


def snapshot_seconds(cluster: PostgresCluster, name: str, repeat: int) -> tuple[float, int]:
    target, db = DatabaseMaintenanceTarget(name), Database(name, cluster.dsn(name, user=ROLE))
    times, trips = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        snap = take_snapshot(target, db)
        times.append(time.perf_counter() - started)
        trips = snap.round_trips
    return statistics.median(times), trips


def checks_seconds(cluster: PostgresCluster, name: str, repeat: int) -> tuple[float, float]:
    """Median of (sum of the nine checks' durations, wall time of the pytest run)."""
    sums, walls = [], []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "maintcheck.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "system": "bench",
                    "databases": {"db": {"dsn": cluster.dsn(name, user=ROLE)}},
                    "databaseMaintenance": [{"database": "db"}],
                }
            )
        )
        for i in range(repeat):
            reports = Path(tmp) / f"r{i}"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pytest", str(CHECKS), "-q", "-p", "no:cacheprovider",
                 "--rootdir", tmp, "--maintcheck-config", str(config),
                 "--maintcheck-report-dir", str(reports)],
                env={**os.environ, "PGPASSWORD": PASSWORD}, cwd=tmp, check=False,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            walls.append(time.perf_counter() - started)
            (run_dir,) = (p for p in reports.iterdir() if p.is_dir())
            checks = json.loads((run_dir / "results.json").read_text())["checks"]
            sums.append(sum(c["duration"] for c in checks))
    return statistics.median(sums), statistics.median(walls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["PGPASSWORD"] = PASSWORD
    with PostgresCluster() as cluster:
        cluster.create_role(ROLE, PASSWORD, "pg_monitor")
        print(f"building databases of {args.small} and {args.tables} tables ...", flush=True)
        build(cluster, "small", args.small)
        build(cluster, "large", args.tables)
        rows = []
        for name, tables in (("small", args.small), ("large", args.tables)):
            snap, trips = snapshot_seconds(cluster, name, args.repeat)
            checks, wall = checks_seconds(cluster, name, args.repeat)
            rows.append((tables, snap, trips, checks, wall))
    print(f"{'tables':>7} {'snapshot':>10} {'queries':>8} {'9 checks':>10} {'pytest run':>11}")
    for tables, snap, trips, checks, wall in rows:
        print(
            f"{tables:>7} {snap * 1000:>8.1f}ms {trips:>8} {checks * 1000:>8.1f}ms {wall:>10.2f}s"
        )
    (_, s1, _, c1, w1), (_, s2, _, c2, w2) = rows
    print(f"ratio {args.tables}/{args.small} tables: snapshot {s2 / s1:.2f}x, "
          f"checks {c2 / c1:.2f}x, whole pytest run {w2 / w1:.2f}x (goal: under 2x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
