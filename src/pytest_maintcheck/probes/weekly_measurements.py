"""What the weekly checks measure beyond one probe call: of a backup listing, its checksums
against the manifest, the newest archive read to its end, the newest dump restored; of a
pooler, its state and its database's max_connections; of a database and its host, what the
memory allocation review compares.

Each raises a MeasurementError (BackupError, ProbeError) when it could not measure, so the
check reports "could not measure" without a try/except of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_maintcheck.config import Backup, Config
from pytest_maintcheck.config_operations import ConfigReview, Pooler
from pytest_maintcheck.errors import MeasurementError, cause_of_os_error
from pytest_maintcheck.probes.backups import (
    ArchiveResult,
    BackupError,
    BackupFile,
    IntegrityResult,
    check_archive,
    read_manifest,
    verify_checksums,
)
from pytest_maintcheck.probes.host_resources import HostResources, measure_host
from pytest_maintcheck.probes.pg_config_review import ReviewSnapshot, review_snapshot
from pytest_maintcheck.probes.pgbouncer import PoolerState, ServerLimit, read_pooler, server_limit
from pytest_maintcheck.probes.restore import RestoreOutcome, restore_into_scratch
from pytest_maintcheck.redact import printable


def verify_manifest(backup: Backup, found: Sequence[BackupFile]) -> IntegrityResult:
    """Hash each backup against the ``checksums`` manifest; BackupError when it is unreadable."""
    path = backup.location / (backup.checksums or "")
    try:
        manifest = read_manifest(path)
    except OSError as exc:
        shown = printable(path, 200)
        raise BackupError(
            f"cannot read checksum manifest {shown}: {exc.strerror} (regenerate it with "
            "sha256sum after each backup)",
            cause=cause_of_os_error(exc),
            where=shown,
        ) from None
    return verify_checksums(found, manifest, backup.pattern)


def read_newest_archive(found: Sequence[BackupFile]) -> ArchiveResult | None:
    """The newest archive listed to its end; None when there is none."""
    return check_archive(found[0].path) if found else None


def restore_newest(
    backup: Backup, config: Config, found: Sequence[BackupFile]
) -> RestoreOutcome | None:
    """The newest dump restored into a scratch database of restoreTest.target, checked and
    dropped; None when there is no dump (or no restore test)."""
    test = backup.restore_test
    if not found or test is None or test.target is None:
        return None
    target = config.database(test.target)
    source = config.database(backup.database) if backup.database else None
    return restore_into_scratch(
        found[0].path, backup=backup.name, target_dsn=target.dsn,
        source_dsn=source.dsn if source else None, jobs=test.jobs,
        max_duration=test.max_duration, expect_tables=test.expect_tables,
        min_rows=test.min_rows, connect_timeout=target.connect_timeout,
        statement_timeout=max(target.statement_timeout, 60.0),
    )  # fmt: skip


def read_pooling(pooler: Pooler, config: Config) -> tuple[PoolerState, ServerLimit | None]:
    """The pooler's admin console, and max_connections of the database its pools serve (None
    without ``database``)."""
    state = read_pooler(pooler.dsn, connect_timeout=pooler.connect_timeout, timeout=pooler.timeout)
    if pooler.database is None:
        return state, None
    db = config.database(pooler.database)
    limit = server_limit(
        db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
    )
    return state, limit


def read_allocation(review: ConfigReview, config: Config) -> tuple[ReviewSnapshot, HostResources]:
    """The database's memory settings and its host's memory, for the allocation review."""
    host = next(h for h in config.hosts if h.name == review.host)
    db = config.database(review.database)
    try:
        snap = review_snapshot(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    except MeasurementError as exc:
        raise exc.about(review.database) from None
    try:
        reading = measure_host(host)
    except MeasurementError as exc:
        raise exc.about(host.name) from None
    return snap, reading
