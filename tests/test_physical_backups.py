"""pgBackRest backups checked the way production runs them: a real posix repository filled by
archive_command, real `pgbackrest info` / `repo-ls`, and real restores with point-in-time
recovery into a scratch server.

Faults are produced for real: a WAL segment removed from the repository, a backup older than
maxAge, a recovery target before the oldest backup, a run killed in the middle of a restore.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_runs import run_checks
from physical_fixtures import Physical
from pytest_maintcheck.config import Backup, RestoreTest
from pytest_maintcheck.judges.physical import (
    judge_physical_backup_freshness,
    judge_physical_restore,
    judge_wal_continuity,
)
from pytest_maintcheck.probes import pgbackrest
from pytest_maintcheck.probes.physical import BackupSet, wal_gaps
from pytest_maintcheck.probes.physical_backends import restore_command
from pytest_maintcheck.probes.physical_restore import (
    OWNER_FILE,
    SCRATCH_PREFIX,
    restore_physical,
    sweep_leftovers,
)
from pytest_maintcheck.probes.restore import RestoreOutcome
from pytest_maintcheck.verdict import Assessment, Verdict


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    """A folder the server's unprivileged account can reach (pytest's tmp_path is 0700 root's)."""
    root = Path(tempfile.mkdtemp(prefix="maintcheck-test-scratch-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _backup(physical: Physical, tmp: Path | None = None, **restore: object) -> Backup:
    test = RestoreTest(
        max_duration=300.0, expect_tables=("patients",), user=physical.primary.cluster.superuser,
        dbname="clinical", scratch_dir=tmp, **restore,  # type: ignore[arg-type]
    )  # fmt: skip
    return Backup(
        name="cluster", kind="pgbackrest", stanza=physical.primary.stanza,
        tool_config=physical.primary.config, restore_test=test,
    )  # fmt: skip


def _scratch_left(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith(SCRATCH_PREFIX)]


def _repo_backups(physical: Physical) -> dict[str, float]:
    folder = physical.primary.repo / "backup"
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def test_end_to_end_backup_wal_and_recovery_to_latest(
    physical: Physical,
    pytester: pytest.Pytester,
    scratch_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All four checks pass; recovery to latest replays rows written after the backup."""
    primary = physical.primary
    with primary.connect("clinical") as conn:
        conn.execute("INSERT INTO patients SELECT g, 'MRN-' || g FROM generate_series(501, 650) g")
    primary.switch_wal()
    primary.wait_archived()
    monkeypatch.setenv("PGPASSWORD", physical.monitor_password)
    before = _repo_backups(physical)
    config = {
        "version": 1,
        "databases": {"primary": {"dsn": physical.monitor_dsn}},
        "backups": [
            {
                "name": "cluster", "kind": "pgbackrest", "stanza": primary.stanza,
                "config": str(primary.config), "database": "primary", "maxAge": "26h",
                "restoreTest": {
                    "maxDuration": "5m", "targetTime": "latest", "expectTables": ["patients"],
                    "minRows": {"patients": 650}, "dbname": "clinical",
                    "user": primary.cluster.superuser, "scratchDir": str(scratch_root),
                },
            }
        ],
    }  # fmt: skip
    run = run_checks(pytester, config, "test_weekly_physical_backups.py")
    checks = run.by_test
    for name in (
        "test_physical_backup_freshness", "test_physical_backup_size",
        "test_wal_continuity", "test_physical_restore",
    ):  # fmt: skip
        assert checks[name]["verdict"] == "pass", checks[name]["message"]
    restore = checks["test_physical_restore"]["details"]["restore"]
    assert restore["rows"] == {"patients": 650}  # 500 in the backup, 150 only in the WAL
    assert restore["scratchRemoved"] is True
    assert checks["test_physical_restore"]["metrics"]["restoreDuration"] > 0
    assert checks["test_wal_continuity"]["metrics"]["walGaps"] == 0
    assert _scratch_left(scratch_root) == []
    assert _repo_backups(physical) == before  # the repository was only read
    assert primary.cluster.running
    assert not (primary.cluster.data_dir / "recovery.signal").exists()
    compliance = {c["category"]: c for c in run.record("compliance.json")}
    clauses = compliance["Contingency plan: data backup and recovery testing"]["requirements"]
    assert "HIPAA 164.308(a)(7)(ii)(D) testing and revision procedures" in clauses
    assert "NIST SP 800-53 CP-10" in clauses


def test_recovery_to_a_target_time(physical: Physical, scratch_root: Path) -> None:
    """Rows written after targetTime are not in the recovered copy; those before are."""
    primary = physical.primary
    with primary.connect("clinical") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pitr_marks (n int)")
        conn.execute("INSERT INTO pitr_marks VALUES (1)")
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        target = row[0]
        time.sleep(1.1)
        conn.execute("INSERT INTO pitr_marks VALUES (2)")
    primary.switch_wal()
    primary.wait_archived()
    backup = _backup(physical, scratch_root, target_time=target, min_rows=(("pitr_marks", 2),))
    catalog = pgbackrest.read_catalog(backup)
    assert backup.restore_test is not None
    outcome = restore_physical(
        backup, catalog, backup.restore_test, restore_command(backup, catalog),
        user=primary.cluster.superuser, dbname="clinical",
    )  # fmt: skip
    assert outcome.error is None, outcome.error
    assert outcome.restored
    assert outcome.rows == {"pitr_marks": 1}  # the second row came after the target
    assert outcome.short_tables == ["pitr_marks"]
    assert outcome.dropped
    assert _scratch_left(scratch_root) == []


def test_wal_segment_removed_from_the_repository_is_a_gap(
    physical: Physical, tmp_path: Path, scratch_root: Path
) -> None:
    """The gap is named by the WAL check, and the restore test sees recovery to latest stop at
    it (PostgreSQL then promotes silently, every later transaction lost)."""
    primary = physical.primary
    for _ in range(3):
        primary.switch_wal()
    primary.wait_archived()
    backup = _backup(physical)
    catalog = pgbackrest.read_catalog(backup)
    assert catalog.newest is not None
    start = catalog.newest.wal_start
    assert start is not None
    after = [p for p in primary.segment_files() if p.name[:24] > start]
    victim = after[1]  # one with archived segments on both sides
    aside = tmp_path / victim.name  # out of the repository, put back afterwards
    shutil.move(victim, aside)
    try:
        segments = pgbackrest.list_segments(backup, catalog, start)
        assessment = Assessment()
        judge_wal_continuity(backup, catalog, segments, None, assessment)
        restoring = _backup(physical, scratch_root)
        assert restoring.restore_test is not None
        outcome = restore_physical(
            restoring, catalog, restoring.restore_test, restore_command(restoring, catalog),
            user=primary.cluster.superuser, dbname="clinical",
        )  # fmt: skip
        restored = Assessment()
        judge_physical_restore(restoring, outcome, restored)
    finally:
        shutil.move(aside, victim)
    assert assessment.verdict is Verdict.VIOLATION
    assert assessment.metrics["walGaps"] == 1
    assert victim.name[:24] in assessment.findings[0].description
    assert outcome.restored  # PostgreSQL promoted at the gap, as it does
    assert restored.verdict is Verdict.VIOLATION
    assert "a missing segment cut it short" in restored.findings[0].description
    healed = Assessment()
    segments = pgbackrest.list_segments(backup, catalog, start)
    judge_wal_continuity(backup, catalog, segments, None, healed)
    assert healed.verdict is Verdict.PASS, healed.message()


def test_backup_older_than_max_age(physical: Physical) -> None:
    backup = _backup(physical)  # maxAge 26 h
    catalog = pgbackrest.read_catalog(backup)
    assert catalog.newest is not None
    assessment = Assessment()
    later = catalog.newest.stopped + timedelta(hours=27)
    judge_physical_backup_freshness(backup, catalog, assessment, now=later)
    assert assessment.verdict is Verdict.VIOLATION
    assert "newest backup" in assessment.findings[0].description
    fresh = Assessment()
    soon = catalog.newest.stopped + timedelta(hours=1)
    judge_physical_backup_freshness(backup, catalog, fresh, now=soon)
    assert fresh.verdict is Verdict.PASS


def test_recovery_target_before_the_oldest_backup(physical: Physical, scratch_root: Path) -> None:
    catalog = pgbackrest.read_catalog(_backup(physical))
    early = catalog.backups[0].started - timedelta(hours=1)
    backup = _backup(physical, scratch_root, target_time=early)
    assert backup.restore_test is not None
    outcome = restore_physical(
        backup, catalog, backup.restore_test, restore_command(backup, catalog)
    )
    assert not outcome.restored
    assert outcome.error is not None
    assert "before the oldest backup" in outcome.error
    assert _scratch_left(scratch_root) == []


def test_not_enough_room_refuses_before_restoring(physical: Physical, scratch_root: Path) -> None:
    backup = _backup(physical, scratch_root)
    catalog = pgbackrest.read_catalog(backup)
    huge = catalog.backups[-1]
    catalog.backups[-1] = BackupSet(
        huge.label, huge.type, huge.started, huge.stopped, size=10**18, wal_start=huge.wal_start
    )  # a measurement no disk here can hold: statvfs is real, the size is planted
    assert backup.restore_test is not None
    outcome = restore_physical(
        backup, catalog, backup.restore_test, restore_command(backup, catalog)
    )
    assert outcome.error is not None
    assert "not enough room" in outcome.error
    assert _scratch_left(scratch_root) == []


def test_wal_gaps_across_log_files_and_timelines() -> None:
    archived = [
        "0000000100000000000000FE-abc", "0000000100000000000000FF-abc",
        "000000010000000100000001-abc", "000000020000000100000002-abc",
        "000000020000000100000002.partial-abc",
    ]  # fmt: skip
    gaps = wal_gaps(archived, "0000000100000000000000FE", "000000020000000100000002")
    assert gaps == ["000000020000000100000000"]


_RESTORE_SCRIPT = """
import json, sys
from datetime import datetime
from pathlib import Path
from pytest_maintcheck.config import Backup, RestoreTest
from pytest_maintcheck.probes import pgbackrest
from pytest_maintcheck.probes.physical_backends import restore_command
from pytest_maintcheck.probes.physical_restore import restore_physical
a = json.loads(sys.argv[1])
test = RestoreTest(max_duration=300.0, scratch_dir=Path(a["scratch"]),
                   target_time=datetime.fromisoformat(a["target"]) if a["target"] else None)
backup = Backup(name="cluster", kind="pgbackrest", stanza=a["stanza"],
                tool_config=Path(a["config"]), restore_test=test)
catalog = pgbackrest.read_catalog(backup)
restore_physical(backup, catalog, test, restore_command(backup, catalog), user=a["user"])
"""


def _start_restore(physical: Physical, scratch: Path, target: str = "") -> subprocess.Popen[bytes]:
    args = {
        "scratch": str(scratch), "stanza": physical.primary.stanza,
        "config": str(physical.primary.config), "user": physical.primary.cluster.superuser,
        "target": target,
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", _RESTORE_SCRIPT, json.dumps(args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for_server(scratch: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> Path:
    """The scratch folder once its server has started (its postmaster.pid exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for folder in _scratch_left(scratch):
            if (folder / "data" / "postmaster.pid").exists():
                return folder
        time.sleep(0.05)
    raise AssertionError("the scratch server never started")


def _postmaster_running(folder: Path) -> bool:
    try:
        pid = int((folder / "data" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def test_sigterm_during_recovery_stops_and_removes_everything(
    physical: Physical, scratch_root: Path
) -> None:
    proc = _start_restore(physical, scratch_root)
    folder = _wait_for_server(scratch_root, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert not folder.exists()
    assert _scratch_left(scratch_root) == []


def test_a_crashed_run_is_cleaned_up_by_the_next(physical: Physical, scratch_root: Path) -> None:
    """SIGKILL leaves the server and folder behind; the next run's sweep stops and removes them."""
    proc = _start_restore(physical, scratch_root)
    folder = _wait_for_server(scratch_root, proc)
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(0.3)
    assert folder.exists()
    assert _postmaster_running(folder)
    pid = int((folder / "data" / "postmaster.pid").read_text().splitlines()[0])
    outcome = RestoreOutcome(backup="cluster", server="scratch")
    sweep_leftovers(scratch_root, outcome)
    assert outcome.leftovers_dropped == [str(folder)]
    assert not folder.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_sweep_leaves_live_runs_and_foreign_folders_alone(tmp_path: Path) -> None:
    live = tmp_path / f"{SCRATCH_PREFIX}live"
    foreign = tmp_path / f"{SCRATCH_PREFIX}foreign"
    live.mkdir()
    foreign.mkdir()
    deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    owner = {"pid": os.getpid(), "host": os.uname().nodename, "deadline": deadline}
    (live / OWNER_FILE).write_text(json.dumps(owner))
    outcome = RestoreOutcome(backup="cluster", server="scratch")
    sweep_leftovers(tmp_path, outcome)
    assert live.exists()
    assert foreign.exists()  # no owner file: never ours to remove
    past = datetime.now(UTC) + timedelta(hours=2)
    sweep_leftovers(tmp_path, outcome, now=past)
    assert not live.exists()
    assert foreign.exists()
