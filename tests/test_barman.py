"""Barman (`kind: barman`) with the real Debian package: a local server archiving through
archive_command into Barman's incoming folder, `backup_method = postgres` (pg_basebackup),
and `barman recover` into a scratch server. Faults: a WAL file removed behind Barman's back,
a backup older than maxAge."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from check_runs import run_checks
from pytest_maintcheck.config import Backup
from pytest_maintcheck.judges.physical import judge_physical_backup_freshness, judge_wal_continuity
from pytest_maintcheck.probes import barman
from pytest_maintcheck.sandbox.physical import BarmanPrimary
from pytest_maintcheck.verdict import Assessment, Verdict


@pytest.fixture(scope="session")
def barman_primary() -> Iterator[BarmanPrimary]:
    if shutil.which("barman") is None:
        pytest.fail("barman is not installed: run scripts/ensure-backup-tools (as root)")
    with BarmanPrimary("clinical") as primary:
        db = primary.cluster.create_database("clinical")
        with db.connect() as conn:
            conn.execute("CREATE TABLE patients (id int PRIMARY KEY)")
            conn.execute("INSERT INTO patients SELECT generate_series(1, 300)")
        primary.backup()
        with db.connect() as conn:  # after the backup: only in the archived WAL
            conn.execute("INSERT INTO patients SELECT generate_series(301, 400)")
        for _ in range(3):
            primary.switch_wal()
        yield primary


def _backup(primary: BarmanPrimary) -> Backup:
    return Backup(
        name="cluster-barman", kind="barman", server="clinical", tool_config=primary.config
    )


def test_barman_end_to_end_with_recovery_to_latest(
    barman_primary: BarmanPrimary, pytester: pytest.Pytester
) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="maintcheck-test-barman-", dir="/tmp"))
    scratch.chmod(0o755)
    try:
        config = {
            "version": 1,
            "backups": [
                {
                    "name": "cluster-barman", "kind": "barman", "server": "clinical",
                    "config": str(barman_primary.config), "maxAge": "26h",
                    "restoreTest": {
                        "maxDuration": "5m", "expectTables": ["patients"],
                        "minRows": {"patients": 400}, "dbname": "clinical",
                        "user": barman_primary.cluster.superuser, "scratchDir": str(scratch),
                    },
                }
            ],
        }  # fmt: skip
        run = run_checks(pytester, config, "test_weekly_physical_backups.py")
        assert list(scratch.iterdir()) == []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for name, check in run.by_test.items():
        assert check["verdict"] == "pass", (name, check["message"])
    restore = run.by_test["test_physical_restore"]["details"]["restore"]
    assert restore["rows"] == {"patients": 400}  # 100 of them replayed from Barman's WAL


def test_barman_wal_removed_behind_its_back_is_a_gap(
    barman_primary: BarmanPrimary, tmp_path: Path
) -> None:
    backup = _backup(barman_primary)
    catalog = barman.read_catalog(backup)
    files = barman_primary.wal_files()
    newest = catalog.newest
    assert newest is not None
    assert newest.wal_start is not None
    after = [p for p in files if p.name > newest.wal_start]
    victim = after[1]
    shutil.move(victim, tmp_path / victim.name)
    try:
        assessment = Assessment()
        segments = barman.list_segments(backup, catalog)
        judge_wal_continuity(backup, catalog, segments, None, assessment)
    finally:
        shutil.move(tmp_path / victim.name, victim)
    assert assessment.verdict is Verdict.VIOLATION
    assert victim.name in assessment.findings[0].description


def test_barman_backup_older_than_max_age(barman_primary: BarmanPrimary) -> None:
    backup = replace(_backup(barman_primary), max_age=3600.0)
    catalog = barman.read_catalog(backup)
    assert catalog.status_ok, catalog.status
    assert catalog.newest is not None
    assessment = Assessment()
    later = catalog.newest.stopped + timedelta(hours=2)
    judge_physical_backup_freshness(backup, catalog, assessment, now=later)
    assert assessment.verdict is Verdict.VIOLATION


def test_barman_check_failure_is_reported() -> None:
    doc = {
        "clinical": {
            "wal_level": {"hint": "", "status": "OK"},
            "continuous_archiving": {"hint": "", "status": "FAILED"},
            "backup_maximum_age": {"hint": "interval provided: 1 day, latest backup age: 3 days",
                                   "status": "FAILED"},
        }
    }  # fmt: skip
    ok, status = barman.parse_check(doc, "clinical")
    assert not ok
    assert "continuous archiving" in status
    assert "latest backup age: 3 days" in status


def test_barman_latest_recovers_to_the_start_of_the_newest_segment() -> None:
    assert barman.segment_lsn("000000010000000000000007") == "0/7000000"
    assert barman.segment_lsn("00000002000000010000000A") == "1/A000000"
