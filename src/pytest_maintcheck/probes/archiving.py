"""WAL archiving health from ``pg_stat_archiver``, read as a pg_monitor role in one round trip.

What is judged: archiving switched on (``archive_mode`` and a command or library), the archiver
failing now (its last failure after its last success), and, while segments wait to be archived,
the age of the last archived one against ``archiveMaxAge``: the recovery point at risk. An idle
server with nothing waiting is not late, however long ago its last segment was archived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from pytest_maintcheck.config import ArchivingTarget
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_duration
from pytest_maintcheck.verdict import Assessment, Verdict

# the command itself is never read into a record: it may carry credentials (S3 keys, URLs)
ARCHIVER_SQL = """
SELECT pg_is_in_recovery(),
       current_setting('archive_mode'),
       coalesce(current_setting('archive_command', true), '') NOT IN ('', '(disabled)'),
       coalesce(current_setting('archive_library', true), '') <> '',
       a.archived_count, a.last_archived_wal, a.last_archived_time,
       a.failed_count, a.last_failed_wal, a.last_failed_time, a.stats_reset,
       w.ready, w.oldest, now()
FROM pg_stat_archiver a,
     LATERAL (SELECT count(*) AS ready, min(modification) AS oldest
              FROM pg_ls_archive_statusdir() WHERE name LIKE '%%.ready') w
"""


@dataclass(frozen=True)
class ArchiverStatus:
    """One reading of the archiver; times are the server's."""

    in_recovery: bool
    archive_mode: str
    has_command: bool
    has_library: bool
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    stats_reset: datetime | None
    waiting: int  # segments with a .ready file: complete, not yet archived
    oldest_waiting: datetime | None
    now: datetime

    @property
    def failing(self) -> bool:
        """The archiver's last attempt failed: a failure after its last success."""
        if self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time

    @property
    def last_archived_age(self) -> float | None:
        if self.last_archived_time is None:
            return None
        return max(0.0, (self.now - self.last_archived_time).total_seconds())

    def to_json(self) -> dict[str, Any]:
        def at(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "inRecovery": self.in_recovery,
            "archiveMode": self.archive_mode,
            "archiveCommandSet": self.has_command,
            "archiveLibrarySet": self.has_library,
            "archivedCount": self.archived_count,
            "lastArchivedWal": self.last_archived_wal,
            "lastArchivedTime": at(self.last_archived_time),
            "failedCount": self.failed_count,
            "lastFailedWal": self.last_failed_wal,
            "lastFailedTime": at(self.last_failed_time),
            "statsReset": at(self.stats_reset),
            "waitingSegments": self.waiting,
            "oldestWaiting": at(self.oldest_waiting),
        }


def _read(dsn: str, connect_timeout: float, statement_timeout: float) -> ArchiverStatus:
    with connect(dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout) as c:
        row: tuple[Any, ...] | None = c.execute(ARCHIVER_SQL).fetchone()
    assert row is not None  # pg_stat_archiver always has its one row
    return ArchiverStatus(
        in_recovery=bool(row[0]),
        archive_mode=str(row[1]),
        has_command=bool(row[2]),
        has_library=bool(row[3]),
        archived_count=int(row[4] or 0),
        last_archived_wal=row[5],
        last_archived_time=row[6],
        failed_count=int(row[7] or 0),
        last_failed_wal=row[8],
        last_failed_time=row[9],
        stats_reset=row[10],
        waiting=int(row[11] or 0),
        oldest_waiting=row[12],
        now=row[13],
    )


def read_archiver(
    dsn: str, *, connect_timeout: float = 10.0, statement_timeout: float = 30.0
) -> ArchiverStatus:
    """The archiver's state; ProbeError (safe to print) when it cannot be read."""
    bound = session_bound(connect_timeout, statement_timeout, 1)
    try:
        return run_bounded(
            bound, "pg_stat_archiver", _read, dsn, connect_timeout, statement_timeout
        )
    except psycopg.Error as exc:
        text = describe_pg_error(exc)
        if "missing privilege" in text:
            text += " (the monitoring role needs pg_monitor: GRANT pg_monitor TO <role>)"
        raise ProbeError(text) from None


def judge_archiving(
    status: ArchiverStatus, target: ArchivingTarget, assessment: Assessment
) -> None:
    """Findings and metrics for one reading against the target's limits."""
    assessment.details["archiver"] = status.to_json()
    assessment.details["database"] = target.database
    failures = status.failed_count if status.failing else 0
    age = status.last_archived_age
    assessment.details["dbMetrics"] = {
        "archiveFailing": status.failing,
        "walWaitingToArchive": status.waiting,
        "lastArchivedAge": age,
    }
    if status.in_recovery and status.archive_mode != "always":
        assessment.add_finding(
            Verdict.PASS,
            f"standby (archive_mode={status.archive_mode}): its WAL is archived on the primary",
        )
        return
    if status.archive_mode == "off":
        assessment.add_finding(
            Verdict.VIOLATION,
            "WAL archiving is off (archive_mode=off): no point-in-time recovery is possible "
            "past the newest base backup",
            "Set archive_mode=on and an archive_command (pgbackrest archive-push, barman-wal-"
            "archive), restart the server, then take a full backup.",
        )
        return
    if not (status.has_command or status.has_library):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"archive_mode={status.archive_mode} but neither archive_command nor archive_library "
            f"is set: {status.waiting} WAL segments wait in pg_wal and nothing archives them",
            "Set archive_command (or archive_library) and reload; pg_wal grows until then.",
        )
    assessment.metrics["archiveFailures"] = failures
    if status.failing:
        since = (
            f"; last success {status.last_archived_wal} at {_at(status.last_archived_time)}"
            if status.last_archived_time
            else "; no segment ever archived since the statistics reset"
        )
        wal = printable(status.last_failed_wal or "?")
        assessment.add_finding(
            Verdict.VIOLATION,
            f"archive_command is failing: last attempt for {wal} "
            f"failed at {_at(status.last_failed_time)} ({status.failed_count} "
            f"failures since the statistics reset){since}; {status.waiting} segments waiting",
            "Read the archiver's error in the server log, fix the archive target (space, "
            "credentials, pgbackrest/barman config); the archiver retries by itself.",
        )
    _judge_age(status, target, assessment, age)


def _at(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "?"


def _judge_age(
    status: ArchiverStatus, target: ArchivingTarget, assessment: Assessment, age: float | None
) -> None:
    if status.waiting == 0:
        last = f"{format_duration(age)} ago" if age is not None else "never since the reset"
        assessment.add_finding(
            Verdict.PASS, f"nothing waiting to be archived; last segment archived {last}"
        )
        assessment.metrics["archiveMaxAge"] = 0.0
        if target.archive_max_age is not None:
            assessment.thresholds["archiveMaxAge"] = target.archive_max_age.to_json()
        return
    if age is None and status.oldest_waiting is not None:
        age = max(0.0, (status.now - status.oldest_waiting).total_seconds())
    assessment.measure(
        target.archive_max_age,
        age,
        subject=f"{status.waiting} WAL segments waiting to be archived",
        action="Fix the archiver (failing or too slow for the write load); until then the "
        "recovery point is this old.",
    )
