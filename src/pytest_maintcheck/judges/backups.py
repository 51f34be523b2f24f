"""The weekly backup checks' rules: fresh, intact, plausible in size, restorable, stored,
rotated. Each judges the listing of the backups (newest first, from list_backups) and what
was measured of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pytest_maintcheck.config import Backup
from pytest_maintcheck.probes.backups import (
    ArchiveResult,
    BackupFile,
    IntegrityResult,
    StorageRoom,
    check_rotation,
    size_change,
)
from pytest_maintcheck.probes.restore import RestoreOutcome
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_size
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

FUTURE_SLACK = 3600.0  # a backup dated further ahead than this: a clock or time zone is wrong


def judge_backups_found(
    backup: Backup, found: Sequence[BackupFile], assessment: Assessment
) -> bool:
    """Record what was found; no backup at all is a violation. True when there is one."""
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
    return bool(found)


def judge_backup_freshness(
    backup: Backup,
    found: Sequence[BackupFile],
    assessment: Assessment,
    *,
    now: datetime | None = None,
) -> None:
    """The newest backup's age against maxAge; one dated in the future is a clock problem."""
    if not judge_backups_found(backup, found, assessment):
        return
    newest = found[0]
    age = ((now or datetime.now(UTC)) - newest.taken).total_seconds()
    if age < -FUTURE_SLACK:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{backup.name}: {newest.name} is dated {-age / 3600:.0f} h in the future",
            "Check the clocks of the backup host and this host, and the name's time zone (UTC).",
        )
    assessment.measure(
        Threshold("maxAge", fail=backup.max_age), max(age, 0.0), subject=f"{newest.name}"
    )


def judge_backup_integrity(
    backup: Backup, found: Sequence[BackupFile], result: IntegrityResult, assessment: Assessment
) -> None:
    """Each backup's SHA-256 against the manifest (verify_manifest measured them)."""
    if not judge_backups_found(backup, found, assessment):
        return
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


def judge_backup_size(backup: Backup, found: Sequence[BackupFile], assessment: Assessment) -> None:
    """The newest backup's size against the one before it (sizeChange); empty never passes."""
    if not judge_backups_found(backup, found, assessment):
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
    way = "shrank" if newest.size < previous.size else "grew"
    assessment.measure(
        backup.size_change,
        size_change(newest, previous),
        subject=f"{newest.name} ({format_size(newest.size)}) {way} against {previous.name} "
        f"({format_size(previous.size)})",
    )


def judge_backup_restore(
    backup: Backup,
    found: Sequence[BackupFile],
    outcome: RestoreOutcome | None,
    assessment: Assessment,
) -> None:
    """The restore test of the newest dump (None: nothing to restore). A restore target that
    could not be reached raises its ProbeError: the check could not measure."""
    test = backup.restore_test
    if not judge_backups_found(backup, found, assessment) or outcome is None or test is None:
        return
    assessment.details["restore"] = outcome.to_json()
    assessment.details["performed"] = outcome.performed
    if outcome.unreached is not None:
        raise outcome.unreached.about(str(test.target))
    where = f"{outcome.backup} on {outcome.server} ({test.target})"
    _judge_restore_run(outcome, where, str(test.target), assessment)
    assessment.measure(
        Threshold("restoreDuration", fail=test.max_duration),
        outcome.duration if outcome.restored or outcome.timed_out else None,
        subject=where,
        action="Speed up recovery (more restore jobs, faster storage) or revise the RTO.",
    )
    _judge_restored_content(outcome, where, dict(test.min_rows), assessment)
    _judge_scratch_cleanup(outcome, assessment)


def _judge_restore_run(
    outcome: RestoreOutcome, where: str, target: str, assessment: Assessment
) -> None:
    if outcome.refused:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"restore of {where} not attempted: {outcome.error}",
            f"Point databases.{target} at a role with LOGIN CREATEDB only (no superuser, "
            "no pg_execute_server_program / pg_write_server_files / pg_read_server_files).",
        )
    elif outcome.error:
        privilege = "missing privilege" in outcome.error
        assessment.add_finding(
            Verdict.VIOLATION,
            f"restore of {where} failed: {outcome.error}",
            f"Grant the role of databases.{target} CREATEDB (ALTER ROLE ... CREATEDB)."
            if privilege
            else None,
        )


def _judge_restored_content(
    outcome: RestoreOutcome, where: str, min_rows: dict[str, int], assessment: Assessment
) -> None:
    if outcome.missing_tables:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: expected tables missing after restore: {', '.join(outcome.missing_tables)}",
            "Check the dump job's table selection (-t/-n/--exclude) and take a full backup.",
        )
    for table in outcome.short_tables:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: {table} has {outcome.rows[table]} rows after restore, "
            f"expected >= {min_rows[table]}",
        )
    if outcome.skipped_extensions:
        assessment.add_finding(
            Verdict.PASS,
            "restored without extensions the restore role may not create (a disaster recovery "
            f"restore needs a superuser for them): {', '.join(outcome.skipped_extensions)}",
        )


def _judge_scratch_cleanup(outcome: RestoreOutcome, assessment: Assessment) -> None:
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


def judge_config_backup(
    backup: Backup,
    found: Sequence[BackupFile],
    archive: ArchiveResult | None,
    assessment: Assessment,
) -> None:
    """The newest configuration archive lists and holds content (None: nothing to list)."""
    if not judge_backups_found(backup, found, assessment) or archive is None:
        return
    newest = found[0]
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


def judge_backup_storage(
    backup: Backup, room: StorageRoom, found: Sequence[BackupFile], assessment: Assessment
) -> None:
    """Free space where backups go: room for two more of the newest, else degraded."""
    if not room.readable:
        assessment.could_not_measure(f"{backup.name}: {room.error}")
        return
    if not judge_backups_found(backup, found, assessment) or room.free_bytes is None:
        return
    need = max(found[0].size, 1)
    assessment.measure(
        Threshold("freeSpace", warn=2 * need, fail=need),
        room.free_bytes,
        subject=f"{backup.location} (newest backup {format_size(found[0].size)})",
    )


def judge_backup_rotation(
    backup: Backup, found: Sequence[BackupFile], assessment: Assessment
) -> None:
    """The grandfather-father-son policy: every promised slot within the history is filled."""
    policy = backup.rotation
    if policy is None or not judge_backups_found(backup, found, assessment):
        return
    result = check_rotation(list(found), policy.daily, policy.weekly, policy.monthly)
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
        assessment.add_finding(
            Verdict.DEGRADED,
            f"fewer backups than the policy promises: {len(result.not_yet)} slots are older than "
            f"the first backup {found[-1].name}: "
            + ", ".join(f"{s.kind} {s.label}" for s in result.not_yet[:12]),
            "Expected on a new system; keep the rotation job running until the slots fill.",
        )
    if result.removable:
        assessment.add_finding(
            Verdict.PASS,
            f"{len(result.removable)} backups past the policy, removable (not deleted): "
            + ", ".join(result.removable[:10]),
        )
