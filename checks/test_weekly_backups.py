"""Weekly backup verification: fresh, intact, plausible in size, restorable, stored, rotated.

The restore check restores the newest dump for real into a scratch database and drops it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pytest_maintcheck.config import Backup, Config
from pytest_maintcheck.probes.backups import (
    BackupFile,
    check_archive,
    check_rotation,
    list_backups,
    read_manifest,
    size_change,
    storage_room,
    verify_checksums,
)
from pytest_maintcheck.probes.restore import restore_into_scratch
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_size
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

pytestmark = pytest.mark.weekly


def _backups(backup: Backup, assessment: Assessment) -> list[BackupFile] | None:
    """The backups on disk, newest first; None (and a violation) when none can be found.
    An unreadable location raises BackupError: the check could not measure."""
    found = list_backups(backup.location, backup.pattern)
    assessment.details.update(
        backup=backup.name, location=str(backup.location), count=len(found),
        newest=found[0].to_json() if found else None,
    )  # fmt: skip
    if not found:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{backup.name}: no backup matching {backup.pattern!r} in {backup.location}",
            "Check the backup job: it has not written a single backup here. Take one now.",
        )
        return None
    return found


@pytest.mark.maintcheck("backup_freshness")
def test_backup_freshness(backup: Backup, assessment: Assessment) -> None:
    found = _backups(backup, assessment)
    if found is None:
        return
    newest = found[0]
    age = (datetime.now(UTC) - newest.taken).total_seconds()
    if age < -3600:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{backup.name}: {newest.name} is dated {-age / 3600:.0f} h in the future",
            "Check the clocks of the backup host and this host, and the name's time zone (UTC).",
        )
    assessment.measure(
        Threshold("maxAge", fail=backup.max_age), max(age, 0.0), subject=f"{newest.name}"
    )


@pytest.mark.maintcheck("backup_integrity")
def test_backup_integrity(checksummed_backup: Backup, assessment: Assessment) -> None:
    backup = checksummed_backup
    found = _backups(backup, assessment)
    if found is None:
        return
    manifest_path = backup.location / (backup.checksums or "")
    try:
        manifest = read_manifest(manifest_path)
    except OSError as exc:
        assessment.could_not_measure(
            f"{backup.name}: cannot read checksum manifest {manifest_path}: {exc.strerror}",
            "Regenerate the manifest with sha256sum after each backup.",
        )
        return
    result = verify_checksums(found, manifest, backup.pattern)
    assessment.details.update(
        verified=result.verified, mismatched=result.mismatched,
        unlisted=result.unlisted, missing=result.missing,
    )  # fmt: skip
    assessment.metrics.update(verified=len(result.verified), mismatched=len(result.mismatched))
    for name in result.mismatched:
        assessment.add_finding(
            Verdict.VIOLATION, f"{name} does not match its SHA-256 in {backup.checksums}: corrupt"
        )
    for item in result.unreadable:
        assessment.add_finding(Verdict.VIOLATION, f"cannot read {item}")
    if result.unlisted:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"not in {backup.checksums}, so unverifiable: {', '.join(result.unlisted)}",
            "Add each backup's sha256sum to the manifest when it is written.",
        )
    if result.missing:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"listed in {backup.checksums} but no file: {', '.join(result.missing)}",
            "Find out what removed these backups; drop rotated-out entries from the manifest.",
        )
    if result.bad_lines:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{backup.checksums}: lines not in sha256sum format: {result.bad_lines[:10]}",
        )


@pytest.mark.maintcheck("backup_size")
def test_backup_size(backup: Backup, assessment: Assessment) -> None:
    found = _backups(backup, assessment)
    if found is None:
        return
    newest = found[0]
    assessment.metrics["backupSize"] = newest.size
    if newest.size == 0:  # 0 against 0 would read as "no change"
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{newest.name} is empty (0 bytes): the backup job wrote nothing",
            "Check the backup job's log and disk, and take a backup now.",
        )
        return
    if len(found) < 2:
        assessment.add_finding(Verdict.PASS, f"{newest.name}: no earlier backup to compare with")
        return
    previous = found[1]
    assessment.details["previous"] = previous.to_json()
    assessment.metrics["previousSize"] = previous.size
    change = size_change(newest, previous)
    way = "shrank" if newest.size < previous.size else "grew"
    assessment.measure(
        backup.size_change,
        change,
        subject=f"{newest.name} ({format_size(newest.size)}) {way} against {previous.name} "
        f"({format_size(previous.size)})",
    )


@pytest.mark.maintcheck("backup_restore")
def test_backup_restore(
    pg_dump_backup: Backup, maintcheck_config: Config, assessment: Assessment
) -> None:
    backup, test = pg_dump_backup, pg_dump_backup.restore_test
    assert test is not None
    assert test.target is not None
    found = _backups(backup, assessment)
    if found is None:
        return
    target = maintcheck_config.database(test.target)
    source = maintcheck_config.database(backup.database) if backup.database else None
    outcome = restore_into_scratch(
        found[0].path, backup=backup.name, target_dsn=target.dsn,
        source_dsn=source.dsn if source else None, jobs=test.jobs,
        max_duration=test.max_duration, expect_tables=test.expect_tables,
        min_rows=test.min_rows, connect_timeout=target.connect_timeout,
        statement_timeout=max(target.statement_timeout, 60.0),
    )  # fmt: skip
    assessment.details["restore"] = outcome.to_json()
    assessment.details["performed"] = outcome.performed
    if outcome.unreached is not None:
        raise outcome.unreached.about(test.target)
    where = f"{outcome.backup} on {outcome.server} ({test.target})"
    if outcome.refused:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"restore of {where} not attempted: {outcome.error}",
            f"Point databases.{test.target} at a role with LOGIN CREATEDB only (no superuser, "
            "no pg_execute_server_program / pg_write_server_files / pg_read_server_files).",
        )
    elif outcome.error:
        privilege = "missing privilege" in outcome.error
        assessment.add_finding(
            Verdict.VIOLATION,
            f"restore of {where} failed: {outcome.error}",
            f"Grant the role of databases.{test.target} CREATEDB (ALTER ROLE ... CREATEDB)."
            if privilege
            else None,
        )
    assessment.measure(
        Threshold("restoreDuration", fail=test.max_duration),
        outcome.duration if outcome.restored or outcome.timed_out else None,
        subject=where,
        action="Speed up recovery (more restore jobs, faster storage) or revise the RTO.",
    )
    if outcome.missing_tables:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: expected tables missing after restore: {', '.join(outcome.missing_tables)}",
            "Check the dump job's table selection (-t/-n/--exclude) and take a full backup.",
        )
    for table in outcome.short_tables:
        least = dict(test.min_rows)[table]
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: {table} has {outcome.rows[table]} rows after restore, expected >= {least}",
        )
    if outcome.skipped_extensions:
        assessment.add_finding(
            Verdict.PASS,
            "restored without extensions the restore role may not create (a disaster recovery "
            f"restore needs a superuser for them): {', '.join(outcome.skipped_extensions)}",
        )
    if not outcome.dropped and outcome.scratch:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"scratch database {outcome.scratch} could not be dropped: {outcome.drop_error}",
            f"Drop it by hand: DROP DATABASE {outcome.scratch} WITH (FORCE).",
        )
    if outcome.not_ours:
        assessment.add_finding(
            Verdict.PASS,
            "left alone, not made by maintcheck (no marker, or another owner): "
            + ", ".join(printable(n, 80) for n in outcome.not_ours),
        )
    for item in outcome.leftovers_failed:
        assessment.add_finding(
            Verdict.DEGRADED, f"leftover scratch database could not be dropped: {item}"
        )


@pytest.mark.maintcheck("config_backup")
def test_config_backup(files_backup: Backup, assessment: Assessment) -> None:
    found = _backups(files_backup, assessment)
    if found is None:
        return
    newest = found[0]
    archive = check_archive(newest.path)
    assessment.details["archive"] = {
        "name": newest.name, "format": archive.format,
        "members": archive.members, "contentBytes": archive.content_bytes,
    }  # fmt: skip
    assessment.metrics["members"] = archive.members
    if archive.error:
        assessment.add_finding(
            Verdict.VIOLATION, f"{newest.name} cannot be listed, so it is corrupt: {archive.error}"
        )
    elif archive.content_bytes == 0:  # a job archiving truncated or vanished files
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{newest.name}: its {archive.members} members hold 0 bytes: no configuration saved",
            "Check the archive job's file list and sources (empty or missing files), then take "
            "a new archive and check that its files hold content.",
        )
    else:
        assessment.add_finding(Verdict.PASS, f"{newest.name}: {archive.members} files listed")


@pytest.mark.maintcheck("backup_storage")
def test_backup_storage(backup: Backup, assessment: Assessment) -> None:
    room = storage_room(backup.location)
    if not room.readable:
        assessment.could_not_measure(f"{backup.name}: {room.error}")
        return
    found = _backups(backup, assessment)
    if found is None or room.free_bytes is None:
        return
    need = max(found[0].size, 1)
    assessment.measure(
        Threshold("freeSpace", warn=2 * need, fail=need),
        room.free_bytes,
        subject=f"{backup.location} (newest backup {format_size(found[0].size)})",
    )


@pytest.mark.maintcheck("backup_rotation")
def test_backup_rotation(rotated_backup: Backup, assessment: Assessment) -> None:
    backup, policy = rotated_backup, rotated_backup.rotation
    assert policy is not None  # the target filter guarantees it
    found = _backups(backup, assessment)
    if found is None:
        return
    result = check_rotation(found, policy.daily, policy.weekly, policy.monthly)
    assessment.details["rotation"] = {
        "policy": {"daily": policy.daily, "weekly": policy.weekly, "monthly": policy.monthly},
        "filled": {f"{s.kind} {s.label}": name for s, name in result.filled.items()},
        "empty": [f"{s.kind} {s.label}" for s in result.empty],
        "beforeFirstBackup": [f"{s.kind} {s.label}" for s in result.not_yet],
        "removable": result.removable,
    }
    assessment.metrics.update(emptySlots=len(result.empty) + len(result.not_yet))
    if result.empty:
        assessment.add_finding(
            Verdict.VIOLATION,
            "rotation gap, no backup for: "
            + ", ".join(f"{s.kind} {s.label}" for s in result.empty),
        )
    if result.not_yet:
        oldest = found[-1]
        assessment.add_finding(
            Verdict.DEGRADED,
            f"fewer backups than the policy promises: {len(result.not_yet)} slots are older than "
            f"the first backup {oldest.name}: "
            + ", ".join(f"{s.kind} {s.label}" for s in result.not_yet[:12]),
            "Expected on a new system; keep the rotation job running until the slots fill.",
        )
    if result.removable:
        assessment.add_finding(
            Verdict.PASS,
            f"{len(result.removable)} backups past the policy, removable (not deleted): "
            + ", ".join(result.removable[:10]),
        )
