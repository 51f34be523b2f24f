"""Benchmark: the physical restore check against a plain pgBackRest restore of the same backup.

Starts its own archived primary (PostgreSQL + a posix pgBackRest repository), fills a table,
takes a full backup, writes more rows after it (WAL to replay), then alternates (a) a plain
``pgbackrest restore`` + ``postgres`` started on it + waiting until recovery has finished and
it accepts queries, then stop and remove, and (b) ``restore_physical`` (leftover sweep, room
check, the same restore and recovery, expectTables/minRows, stop and remove). Prints the median
of each and their ratio; goal: at most 1.15x.

    .venv/bin/python bench/physical_restore.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from pytest_maintcheck.config import Backup, RestoreTest
from pytest_maintcheck.probes import pgbackrest
from pytest_maintcheck.probes.local_server import LocalServer, child_kwargs, give_to
from pytest_maintcheck.probes.physical_backends import restore_command
from pytest_maintcheck.probes.physical_restore import restore_physical
from pytest_maintcheck.sandbox.physical import ArchivedPrimary
from pytest_maintcheck.sandbox.postgres import free_port


def fill(primary: ArchivedPrimary, rows: int) -> None:
    db = primary.cluster.create_database("clinical")
    with db.connect() as conn:
        conn.execute("CREATE TABLE ecg (id bigint PRIMARY KEY, a text, b text)")
        conn.execute(
            "INSERT INTO ecg SELECT g, md5(g::text) || md5(random()::text), md5(random()::text) "
            "FROM generate_series(1, %s) g",
            (rows,),
        )


def write_after_backup(primary: ArchivedPrimary, rows: int) -> None:
    with primary.connect("clinical") as conn:
        conn.execute(
            "INSERT INTO ecg SELECT g, md5(g::text), md5(random()::text) "
            "FROM generate_series(%s, %s) g",
            (rows + 1, rows + rows // 5),
        )
    primary.switch_wal()
    primary.wait_archived(timeout=300)


def plain_restore(primary: ArchivedPrimary, backup: Backup, label: str, root: Path) -> float:
    """pgbackrest restore + postgres until it accepts queries out of recovery; seconds."""
    scratch = Path(tempfile.mkdtemp(prefix="plain-", dir=root))
    started = time.perf_counter()
    sock = scratch / "sock"
    for sub in ("sock", "lock", "log", "tablespaces"):
        (scratch / sub).mkdir()
    give_to(primary.run_as, scratch, *scratch.iterdir())
    argv = pgbackrest.restore_argv(backup, label, scratch / "data", scratch, None)
    subprocess.run(list(argv), check=True, timeout=1800,
                   **child_kwargs(primary.run_as, scratch, {"PATH": "/usr/bin:/bin"}))  # fmt: skip
    hba = scratch / "hba.conf"
    hba.write_text("local all all trust\n")
    give_to(primary.run_as, hba)
    bindir = primary.cluster.bindir
    assert bindir is not None
    server = LocalServer(
        data=scratch / "data", port=free_port(), log_path=scratch / "server.log", bindir=bindir,
        run_as=primary.run_as,
        settings={"listen_addresses": "", "unix_socket_directories": str(sock),
                  "hba_file": str(hba), "archive_mode": "off", "hot_standby": "off"},
    )  # fmt: skip
    server.start()
    try:
        while True:
            try:
                with psycopg.connect(
                    host=str(sock), port=server.port, user=primary.cluster.superuser,
                    dbname="clinical", connect_timeout=5,
                ) as conn:  # fmt: skip
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row and not row[0]:
                        break
            except psycopg.OperationalError:
                pass
            assert not server.exited, server.log_tail()
            time.sleep(0.2)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return time.perf_counter() - started  # stopped and removed too, as the check does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="maintcheck-bench-pitr-", dir="/tmp"))
    root.chmod(0o755)
    try:
        with ArchivedPrimary("bench", backup=False) as primary:
            t0 = time.perf_counter()
            fill(primary, args.rows)
            primary.backup("full")
            write_after_backup(primary, args.rows)
            test = RestoreTest(
                max_duration=1800.0, expect_tables=("ecg",), min_rows=(("ecg", 1000),),
                dbname="clinical", user=primary.cluster.superuser, scratch_dir=root,
            )  # fmt: skip
            backup = Backup(
                name="bench", kind="pgbackrest", stanza="bench",
                tool_config=primary.config, restore_test=test,
            )  # fmt: skip
            catalog = pgbackrest.read_catalog(backup)
            assert catalog.newest is not None
            print(
                f"{args.rows} rows, backup {catalog.newest.label} of "
                f"{(catalog.newest.size or 0) / 1e6:.0f} MB, WAL written after it; "
                f"set up in {time.perf_counter() - t0:.1f} s"
            )
            plain: list[float] = []
            check: list[float] = []
            for n in range(args.rounds):
                plain.append(plain_restore(primary, backup, catalog.newest.label, root))
                t1 = time.perf_counter()
                outcome = restore_physical(
                    backup, catalog, test, restore_command(backup, catalog),
                    user=primary.cluster.superuser, dbname="clinical",
                )  # fmt: skip
                check.append(time.perf_counter() - t1)
                assert outcome.restored, outcome.error
                assert outcome.dropped
                assert not outcome.short_tables, outcome.rows
                print(f"round {n + 1}: plain {plain[-1]:.2f} s, restore check {check[-1]:.2f} s")
            p, c = statistics.median(plain), statistics.median(check)
            print(f"median: plain pgbackrest restore + recovery {p:.2f} s, restore check {c:.2f} s")
            print(f"ratio restore check / plain: {c / p:.3f}x (goal <= 1.15x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
