"""Demo part: a primary archiving into a real pgBackRest repository, and a streaming standby.

One fault is planted in each: a WAL segment removed from the repository (the WAL check names
the gap, the restore test sees recovery stop at it), archive_command failing (the archiving
check), and a forgotten replication slot holding WAL back (the replication check). Skipped with
a message when pgbackrest is not installed (scripts/ensure-backup-tools installs it).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

from pytest_maintcheck.sandbox.demo_backups import _pgpass_line
from pytest_maintcheck.sandbox.physical import ArchivedPrimary

if TYPE_CHECKING:  # demo.py imports this module for its PARTS
    from pytest_maintcheck.sandbox.demo import DemoContext

MONITOR_ROLE = "maint"


def _plant_wal_gap(primary: ArchivedPrimary) -> None:
    """Rows written after the backup, then one archived segment among them removed."""
    with primary.connect("clinical") as conn:
        for batch in range(3):
            conn.execute(
                "INSERT INTO patients (mrn) SELECT 'LATE-' || %s || '-' || g "
                "FROM generate_series(1, 100) g",
                (batch,),
            )
            conn.execute("SELECT pg_switch_wal()")
    primary.wait_archived()
    newest = primary.segment_files()
    newest[-2].unlink()  # archived segments on both sides of it: a gap, not a short tail


def _plant_failing_archiver(primary: ArchivedPrimary) -> None:
    primary.archive_switch.touch()
    primary.switch_wal()
    with primary.connect() as conn:  # the archiver tries at once; wait for its first failure
        for _ in range(100):
            row = conn.execute(
                "SELECT last_failed_time IS NOT NULL FROM pg_stat_archiver"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)


def physical_backups(ctx: DemoContext) -> None:
    """The archived primary, its stanza and backup, a standby, and the three faults."""
    if shutil.which("pgbackrest") is None:
        print(
            "maintcheck demo: pgbackrest is not installed, so the physical backup, WAL archiving "
            "and replication part is left out (scripts/ensure-backup-tools installs it)",
            flush=True,
        )
        return
    primary = ctx.stack.enter_context(ArchivedPrimary("clinical", backup=False))
    cluster = primary.cluster
    db = cluster.create_database("clinical")
    with db.connect() as conn:
        conn.execute("CREATE TABLE patients (id serial PRIMARY KEY, mrn text NOT NULL)")
        conn.execute("INSERT INTO patients (mrn) SELECT 'SYN-' || g FROM generate_series(1, 500) g")
    primary.backup("full")
    password = primary.create_monitor_role(MONITOR_ROLE)
    standby = primary.add_standby("standby1", slot="standby1")
    with primary.connect() as conn:  # a reporting replica decommissioned, its slot forgotten
        conn.execute("SELECT pg_create_physical_replication_slot('reporting_replica', true)")
    _plant_wal_gap(primary)
    _plant_failing_archiver(primary)

    passfile = ctx.workdir / "pgpass"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        for port in (cluster.port, standby.port):
            f.write(_pgpass_line(cluster.host, port, MONITOR_ROLE, password))
    ctx.env["PGPASSFILE"] = str(passfile)
    ctx.env["PGPASSWORD"] = ""  # libpq falls through to the pgpass file
    databases = ctx.section("databases", {})
    databases["archived-primary"] = {"dsn": cluster.dsn("postgres", user=MONITOR_ROLE)}
    databases["archived-standby"] = {"dsn": primary.standby_dsn(standby, MONITOR_ROLE)}
    ctx.section("backups", []).append(
        {
            "name": "cluster",
            "kind": "pgbackrest",
            "stanza": primary.stanza,
            "config": str(primary.config),
            "database": "archived-primary",
            "maxAge": "26h",
            "restoreTest": {
                "maxDuration": "5m",
                "targetTime": "latest",
                "expectTables": ["patients"],
                "minRows": {"patients": 500},
                "dbname": "clinical",
                "user": cluster.superuser,
            },
        }
    )
    ctx.section("archiving", []).append({"database": "archived-primary", "archiveMaxAge": "15m"})
    ctx.section("replication", []).extend(
        [
            {
                "database": "archived-primary",
                "standbys": ["standby1"],
                "replayLag": {"warn": "30s", "fail": "5m"},
                "slotRetained": {"warn": "16MB", "fail": "32MB"},
            },
            {"database": "archived-standby", "replayLag": {"warn": "30s", "fail": "5m"}},
        ]
    )
