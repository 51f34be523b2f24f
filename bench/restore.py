"""Benchmark: the restore check against plain pg_restore of the same dump.

Starts its own PostgreSQL, fills a few wide tables (a few hundred MB), dumps them with
``pg_dump -Fc``, then alternates (a) ``createdb`` + ``pg_restore -j N`` into a fresh database
and (b) ``restore_into_scratch`` (leftover scan, create, ``pg_restore -j N``, table checks,
drop). Prints the median of each and their ratio; goal: at most 1.15x.

    .venv/bin/python bench/restore.py [--rows 1000000] [--jobs N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pytest_maintcheck.probes.restore import find_client_tool, restore_into_scratch
from pytest_maintcheck.sandbox import PostgresCluster

TABLES = ("ecg_a", "ecg_b", "ecg_c", "ecg_d")


def fill(cluster: PostgresCluster, rows: int) -> None:
    db = cluster.create_database("clinical")
    per_table = rows // len(TABLES)
    with db.connect() as conn:
        for table in TABLES:
            conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, a text, b text, c text)")
            conn.execute(
                f"INSERT INTO {table} SELECT g, "  # noqa: S608
                "md5(random()::text) || md5(random()::text) || md5(random()::text), "
                "md5(random()::text) || md5(random()::text) || md5(random()::text), "
                "md5(random()::text) || md5(random()::text) || md5(random()::text) "
                "FROM generate_series(1, %s) g",
                (per_table,),
            )
        size = conn.execute("SELECT pg_size_pretty(pg_database_size('clinical'))").fetchone()
    print(f"database clinical: {rows} rows in {len(TABLES)} tables, {size[0] if size else '?'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pg_restore = find_client_tool("pg_restore")
    with PostgresCluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        os.environ["PGPASSWORD"] = cluster.password  # libpq reads it; never on a command line
        started = time.perf_counter()
        fill(cluster, args.rows)
        dump = Path(tmp) / "clinical.dump"
        subprocess.run(
            [str(find_client_tool("pg_dump")), "-Fc", f"--dbname={cluster.dsn('clinical')}",
             f"--file={dump}"],
            check=True, timeout=1800,
        )  # fmt: skip
        print(
            f"dump: {dump.stat().st_size / 1e6:.0f} MB, made in "
            f"{time.perf_counter() - started:.1f} s; jobs={args.jobs}"
        )
        plain: list[float] = []
        check: list[float] = []
        for n in range(args.rounds):
            fresh = f"plain_{n}"
            t0 = time.perf_counter()
            cluster.create_database(fresh)
            subprocess.run(
                [str(pg_restore), "--exit-on-error", f"--jobs={args.jobs}",
                 f"--dbname={cluster.dsn(fresh)}", str(dump)],
                check=True, timeout=1800,
            )  # fmt: skip
            plain.append(time.perf_counter() - t0)
            cluster.drop_database(fresh)

            t0 = time.perf_counter()
            outcome = restore_into_scratch(
                dump, backup="bench", target_dsn=cluster.dsn("postgres"), jobs=args.jobs,
                max_duration=1800, expect_tables=TABLES,
                min_rows=[(t, 1000) for t in TABLES],
            )  # fmt: skip
            check.append(time.perf_counter() - t0)
            assert outcome.restored, outcome.error
            assert outcome.dropped
            assert not outcome.missing_tables
            assert not outcome.short_tables
            print(f"round {n + 1}: plain {plain[-1]:.2f} s, restore check {check[-1]:.2f} s")
        p, c = statistics.median(plain), statistics.median(check)
        print(f"median: plain pg_restore -j{args.jobs} {p:.2f} s, restore check {c:.2f} s")
        print(f"ratio restore check / plain pg_restore: {c / p:.3f}x (goal <= 1.15x)")


if __name__ == "__main__":
    main()
