"""The weekly physical backup rules (pgBackRest stanzas, Barman servers), judged on a catalog
(probes.physical.Catalog: the backup sets, oldest first, and the WAL archive beside them).

Fresh: the newest set's age against ``maxAge``. Plausible in size: the newest set against the
previous one (``sizeChange``). WAL continuous: every segment from the newest set's start to the
newest one the server says it archived is in the archive. Restorable: a real point-in-time
recovery within ``restoreTest.maxDuration`` that reaches the end of the archive and holds the
expected tables and rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pytest_maintcheck.config import Backup
from pytest_maintcheck.probes.archiving import ArchiverStatus
from pytest_maintcheck.probes.physical import (
    DEFAULT_SEGMENT_SIZE,
    BackupSet,
    Catalog,
    is_segment,
    is_whole_segment,
    segment_name,
    segment_number,
    wal_gaps,
)
from pytest_maintcheck.probes.physical_restore import PhysicalRestoreOutcome
from pytest_maintcheck.units import format_duration, format_size
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

FUTURE_SLACK = 3600.0  # a set ending further ahead than this: a clock is wrong
MAX_GAPS_SHOWN = 10


def judge_catalog(backup: Backup, catalog: Catalog, assessment: Assessment) -> BackupSet | None:
    """The catalog's state; its newest set, or None (and a violation) when there is none."""
    assessment.details["backup"] = backup.name
    assessment.details["catalog"] = catalog.to_json()
    if not catalog.status_ok:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{catalog.tool} {catalog.name}: {catalog.status}",
            f"Run `{catalog.tool} ... check` for {catalog.name} and fix what it reports.",
        )
    newest = catalog.newest
    if newest is None:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{catalog.tool} {catalog.name}: no backup in the repository",
            "Take a full backup now and check the backup schedule.",
        )
    return newest


def judge_physical_backup_freshness(
    backup: Backup, catalog: Catalog, assessment: Assessment, *, now: datetime | None = None
) -> None:
    """The newest set's age against maxAge; page checksum errors and future dates degrade."""
    newest = judge_catalog(backup, catalog, assessment)
    if newest is None:
        return
    fulls = [b for b in catalog.backups if b.type == "full"]
    assessment.details["newestFull"] = fulls[-1].to_json() if fulls else None
    if newest.error:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{newest.label}: {catalog.tool} found page checksum errors while copying it",
            "Check the data files named in the backup log; take a new full backup.",
        )
    age = ((now or datetime.now(UTC)) - newest.stopped).total_seconds()
    if age < -FUTURE_SLACK:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{newest.label} ended {format_duration(-age)} in the future",
            "Check the clocks of the database, backup and this host.",
        )
    assessment.measure(
        Threshold("maxAge", fail=backup.max_age),
        max(age, 0.0),
        subject=f"{catalog.tool} {catalog.name}: newest backup {newest.label} ({newest.type})",
        action="Check the backup schedule and the tool's log, and take a backup now.",
    )


def judge_physical_backup_size(backup: Backup, catalog: Catalog, assessment: Assessment) -> None:
    """The newest set's size against the previous set's (sizeChange)."""
    newest = judge_catalog(backup, catalog, assessment)
    if newest is None or newest.size is None:
        return
    assessment.metrics["backupSize"] = newest.size
    earlier = [b for b in catalog.backups[:-1] if b.size is not None]
    if not earlier:
        assessment.add_finding(Verdict.PASS, f"{newest.label}: no earlier backup to compare with")
        return
    previous = earlier[-1]
    assert previous.size is not None  # kept above for having one
    assessment.details["previous"] = previous.to_json()
    assessment.metrics["previousSize"] = previous.size
    change = abs(newest.size - previous.size) / max(previous.size, 1)
    way = "shrank" if newest.size < previous.size else "grew"
    assessment.measure(
        backup.size_change,
        change,
        subject=f"{newest.label} ({format_size(newest.size)}) {way} against {previous.label} "
        f"({format_size(previous.size)})",
        action="Compare the cluster with the previous backup: a large drop means lost data.",
    )


def judge_wal_continuity(
    backup: Backup,
    catalog: Catalog,
    archived: Sequence[str],
    server: ArchiverStatus | None,
    assessment: Assessment,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> None:
    """The archive is continuous from the newest set's first segment to the newest one the
    server archived (``server``: its archiver; None without a database to ask: to the
    repository's newest)."""
    newest = judge_catalog(backup, catalog, assessment)
    if newest is None or newest.wal_start is None:
        return
    server_archived = server.last_archived_wal if server else None
    names = sorted(n[:24] for n in archived if is_whole_segment(n))
    repo_max = names[-1] if names else None
    until = _archive_end(repo_max or newest.wal_start, server_archived, segment_size)
    gaps = wal_gaps(archived, newest.wal_start, until, segment_size)
    assessment.details["wal"] = {
        "from": newest.wal_start, "to": until, "repositoryNewest": repo_max,
        "serverLastArchived": server_archived, "segmentSize": segment_size,
        "missing": gaps[:100],
    }  # fmt: skip
    assessment.metrics["walGaps"] = len(gaps)
    assessment.thresholds["walGaps"] = Threshold("walGaps", fail=0).to_json()
    if gaps:
        shown = ", ".join(gaps[:MAX_GAPS_SHOWN]) + (" ..." if len(gaps) > MAX_GAPS_SHOWN else "")
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{catalog.tool} {catalog.name}: {len(gaps)} WAL segments missing between "
            f"{newest.wal_start} (start of {newest.label}) and {until}: {shown}; "
            "point-in-time recovery stops at the first gap",
            "Find what removed or never archived them (archive_command errors, retention, "
            "storage), then take a new full backup so recovery starts after the gap.",
        )
    failing = server is not None and server.failing
    if failing:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"the server's archive_command is failing: WAL after {server_archived or '?'} does "
            "not reach the repository, so recovery to now is not possible",
            "Fix archive_command (see test_wal_archiving and the server log).",
        )
    if not gaps and not failing:
        assessment.add_finding(
            Verdict.PASS,
            f"WAL continuous from {newest.wal_start} to {until} ({len(names)} segments listed)",
        )


def _archive_end(repository: str, server_archived: str | None, segment_size: int) -> str:
    """The later of the repository's newest segment and the server's last archived one."""
    if server_archived is None or not is_segment(server_archived):
        return repository
    later = (
        segment_number(server_archived, segment_size)[1]
        > segment_number(repository, segment_size)[1]
    )
    return server_archived if later else repository


def cut_short(outcome: PhysicalRestoreOutcome) -> str:
    """Why recovery to latest ended before the archive's end (a gap stops it silently)."""
    if outcome.target != "latest" or not outcome.restored or outcome.archive_end is None:
        return ""
    if outcome.replayed_segment is None or not is_segment(outcome.archive_end):
        return ""
    timeline, end = segment_number(outcome.archive_end)
    if outcome.replayed_segment >= end:
        return ""
    ended = segment_name(timeline, outcome.replayed_segment)
    return (
        f"recovery to latest ended in WAL segment {ended} but the archive reaches "
        f"{outcome.archive_end}: a missing segment cut it short and every later transaction "
        "is lost"
    )


def judge_physical_restore(
    backup: Backup, outcome: PhysicalRestoreOutcome, assessment: Assessment
) -> None:
    """One restore: failure, recovery time against maxDuration, recovery cut short by a gap,
    the expected tables and rows, and the scratch copy removed."""
    test = backup.restore_test
    assert test is not None  # only entries with a restoreTest are restored
    assessment.details["backup"] = backup.name
    assessment.details["restore"] = outcome.to_json()
    assessment.details["performed"] = outcome.performed
    where = f"{outcome.label or outcome.backup} recovered to {outcome.target}"
    if outcome.error:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"restore of {where} failed: {outcome.error}",
            "Fix the backup, the WAL archive or the recovery target named; until then this "
            "backup cannot bring the database back.",
        )
    assessment.measure(
        Threshold("restoreDuration", fail=test.max_duration),
        outcome.duration
        if outcome.restored
        else (outcome.total_duration if outcome.timed_out else None),
        subject=f"{where} (restore start to accepting queries)",
        action="Speed up recovery (parallel restore, faster storage, more frequent full or "
        "differential backups so less WAL is replayed) or revise the RTO.",
    )
    short = cut_short(outcome)
    if short:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: {short}",
            "Find the missing WAL (test_wal_continuity names it); take a new full backup so "
            "recovery to now does not need it.",
        )
    _judge_recovered_content(outcome, where, dict(test.min_rows), assessment)
    _judge_scratch_removed(outcome, assessment)


def _judge_recovered_content(
    outcome: PhysicalRestoreOutcome, where: str, min_rows: dict[str, int], assessment: Assessment
) -> None:
    if outcome.missing_tables:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: expected tables missing after recovery: {', '.join(outcome.missing_tables)}",
            "Check restoreTest.dbname and the backup's database list.",
        )
    for table in outcome.short_tables:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{where}: {table} has {outcome.rows[table]} rows after recovery, "
            f"expected >= {min_rows[table]}",
        )


def _judge_scratch_removed(outcome: PhysicalRestoreOutcome, assessment: Assessment) -> None:
    if outcome.scratch and not outcome.dropped:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"scratch restore {outcome.scratch} could not be removed: {outcome.drop_error}",
            f"Stop its server and remove it by hand: {outcome.scratch}.",
        )
    for item in outcome.leftovers_failed:
        assessment.add_finding(Verdict.DEGRADED, f"leftover scratch restore not removed: {item}")
