"""The weekly backup rules, judged in-process on listings and results made for the test.

tests/test_backups.py runs the checks end to end on real files and a real restore: it proves
the wiring; these prove each rule, fast. Backup files here are descriptions only (the rules
never open them), so their paths need not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_maintcheck.config import Backup, RestoreTest, Rotation
from pytest_maintcheck.judges import backups as judges
from pytest_maintcheck.probes.backups import ArchiveResult, BackupFile, IntegrityResult, StorageRoom
from pytest_maintcheck.probes.restore import RestoreOutcome
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

NOW = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)
HOUR = 3600.0
FOLDER = Path("/srv/backups/clinical")


def backup(**extra: object) -> Backup:
    made = Backup("clinical", "pg_dump", FOLDER, "clinical-*.dump", max_age=26 * HOUR)
    return made.__class__(**(made.__dict__ | extra))


def dump(hours_ago: float, size: int = 1000) -> BackupFile:
    taken = NOW - timedelta(hours=hours_ago)
    return BackupFile(FOLDER / f"clinical-{taken:%Y%m%dT%H%M%SZ}.dump", size, taken, "name")


def daily(days: int) -> list[BackupFile]:
    return [dump(24.0 * d) for d in range(days)]


def test_no_backup_at_all_is_a_violation_for_every_check() -> None:
    for judge in (judges.judge_backup_size, judges.judge_backup_rotation):
        made = Assessment()
        judge(backup(rotation=Rotation(daily=7)), [], made)
        assert made.verdict is Verdict.VIOLATION
        assert made.findings[0].description == (
            f"clinical: no backup matching 'clinical-*.dump' in {FOLDER}"
        )
        assert made.details["count"] == 0


def test_freshness_is_the_newest_backups_age_against_max_age() -> None:
    made = Assessment()
    judges.judge_backup_freshness(backup(), [dump(30), dump(54)], made, now=NOW)
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["maxAge"] == 30 * HOUR
    assert made.findings[0].description.startswith("clinical-20250308T210000Z.dump: ")
    made = Assessment()
    judges.judge_backup_freshness(backup(), [dump(2)], made, now=NOW)
    assert made.verdict is Verdict.PASS


def test_a_backup_dated_in_the_future_is_a_clock_problem() -> None:
    made = Assessment()
    judges.judge_backup_freshness(backup(), [dump(-5)], made, now=NOW)
    assert made.verdict is Verdict.DEGRADED
    assert made.findings[0].description.endswith("is dated 5 h in the future")
    assert made.metrics["maxAge"] == 0.0


def test_integrity_names_corrupt_unlisted_and_missing_backups() -> None:
    result = IntegrityResult(
        verified=["a.dump"], mismatched=["b.dump"], unlisted=["c.dump"], missing=["d.dump"],
        unreadable=["e.dump (Permission denied)"], bad_lines=[3],
    )  # fmt: skip
    made = Assessment()
    judges.judge_backup_integrity(backup(checksums="SHA256SUMS"), [dump(1)], result, made)
    assert [(f.verdict, f.description) for f in made.findings] == [
        (Verdict.VIOLATION, "b.dump does not match its SHA-256 in SHA256SUMS: corrupt"),
        (Verdict.VIOLATION, "cannot read e.dump (Permission denied)"),
        (Verdict.DEGRADED, "not in SHA256SUMS, so unverifiable: c.dump"),
        (Verdict.DEGRADED, "listed in SHA256SUMS but no file: d.dump"),
        (Verdict.DEGRADED, "SHA256SUMS: lines not in sha256sum format: [3]"),
    ]
    assert made.metrics == {"verified": 1, "mismatched": 1}


def test_size_change_against_the_previous_backup() -> None:
    halved = backup(size_change=Threshold.parse("sizeChange", {"warn": 0.2, "fail": 0.5}))
    made = Assessment()
    judges.judge_backup_size(halved, [dump(1, size=500), dump(25, size=1000)], made)
    assert made.verdict is Verdict.VIOLATION  # reaching 0.5 crosses it (at_level)
    assert "shrank against" in made.findings[0].description
    made = Assessment()
    judges.judge_backup_size(halved, [dump(1, size=0), dump(25, size=0)], made)
    assert made.findings[0].description.endswith("is empty (0 bytes): the backup job wrote nothing")
    made = Assessment()
    judges.judge_backup_size(halved, [dump(1)], made)
    assert made.verdict is Verdict.PASS
    assert made.notes[0].endswith("no earlier backup to compare with")


def restore_test() -> RestoreTest:
    return RestoreTest(target="scratch", max_duration=600.0, min_rows=(("visits", 100),))


def test_a_restore_that_worked_is_judged_on_its_time_and_content() -> None:
    outcome = RestoreOutcome(
        backup="clinical-1.dump", server="db:5432", scratch="maintcheck_restore_1",
        restored=True, duration=900.0, missing_tables=["public.labs"], rows={"visits": 3},
        short_tables=["visits"], dropped=True,
    )  # fmt: skip
    made = Assessment()
    judges.judge_backup_restore(backup(restore_test=restore_test()), [dump(1)], outcome, made)
    where = "clinical-1.dump on db:5432 (scratch)"
    assert [f.description for f in made.findings] == [
        f"{where}: restore time 15m (fail > 10m)",
        f"{where}: expected tables missing after restore: public.labs",
        f"{where}: visits has 3 rows after restore, expected >= 100",
    ]
    assert made.details["restore"]["restoreDuration"] == 900.0


def test_a_refused_restore_and_an_undropped_scratch_database_are_violations() -> None:
    outcome = RestoreOutcome(
        backup="clinical-1.dump", server="db:5432", scratch="maintcheck_restore_1",
        refused=True, error="the role may run server programs", dropped=False,
        drop_error="in use",
    )  # fmt: skip
    made = Assessment()
    judges.judge_backup_restore(backup(restore_test=restore_test()), [dump(1)], outcome, made)
    assert made.findings[0].description.endswith("not attempted: the role may run server programs")
    assert "LOGIN CREATEDB only" in made.findings[0].action
    assert made.findings[1].description == (
        "scratch database maintcheck_restore_1 could not be dropped: in use"
    )
    assert made.metrics["restoreDuration"] is None  # not restored: no time to judge


def test_a_config_archive_must_list_and_hold_content() -> None:
    files = backup(kind="files", pattern="etc-*.tar.gz")
    for archive, expected in [
        (ArchiveResult("tar.gz", 12, 4096), Verdict.PASS),
        (ArchiveResult("tar.gz", 3, 0), Verdict.VIOLATION),
        (ArchiveResult("tar.gz", 0, 0, "the archive is empty"), Verdict.VIOLATION),
    ]:
        made = Assessment()
        judges.judge_config_backup(files, [dump(1)], archive, made)
        assert made.verdict is expected, archive
        assert made.metrics["members"] == archive.members


def test_storage_needs_room_for_two_more_of_the_newest_backup() -> None:
    for free, expected in [
        (5000, Verdict.PASS),
        (1500, Verdict.DEGRADED),
        (500, Verdict.VIOLATION),
    ]:
        made = Assessment()
        judges.judge_backup_storage(backup(), StorageRoom(True, free), [dump(1, size=1000)], made)
        assert made.verdict is expected, free
    made = Assessment()
    unreadable = StorageRoom(False, error=f"{FOLDER} is not readable by this account")
    judges.judge_backup_storage(backup(), unreadable, [], made)
    assert made.findings[0].description == (f"clinical: {FOLDER} is not readable by this account")


def test_rotation_gaps_are_violations_and_a_short_history_degraded() -> None:
    gap = [b for b in daily(10) if b.taken.date() != (NOW - timedelta(days=3)).date()]
    made = Assessment()
    judges.judge_backup_rotation(backup(rotation=Rotation(daily=7)), gap, made)
    assert made.findings[0].description == "rotation gap, no backup for: daily 2025-03-07"
    assert made.findings[0].verdict is Verdict.VIOLATION
    assert made.notes[0].startswith("3 backups past the policy, removable (not deleted): ")
    made = Assessment()
    judges.judge_backup_rotation(backup(rotation=Rotation(daily=7)), daily(4), made)
    assert made.verdict is Verdict.DEGRADED
    assert made.findings[0].description.startswith(
        "fewer backups than the policy promises: 3 slots are older than the first backup"
    )
    assert made.metrics["emptySlots"] == 3
