"""WAL archiving health from ``pg_stat_archiver``, read as a pg_monitor role in one round trip.

The archiver's settings and counters and the segments waiting in pg_wal; the rules are in
pytest_maintcheck.judges.replication (judge_wal_archiving).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from pytest_maintcheck.config import Database
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)

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


def measure_archiver(database: Database) -> ArchiverStatus:
    """The archiver of a configured database; ProbeError naming it when it cannot be read."""
    try:
        return read_archiver(
            database.dsn,
            connect_timeout=database.connect_timeout,
            statement_timeout=database.statement_timeout,
        )
    except ProbeError as exc:
        raise exc.about(database.name) from None
