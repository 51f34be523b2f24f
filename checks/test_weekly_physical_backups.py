"""Weekly physical backup verification: pgBackRest stanzas and Barman servers.

Fresh, plausible in size, WAL archive continuous from the newest backup to now, and a real
point-in-time recovery into a scratch server (always removed) within the RTO. Each stanza or
server is listed once per run (``physical_catalogs``). The rules are in
pytest_maintcheck.judges.physical; a tool or database that cannot be read is a
MeasurementError: the check could not measure.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    Backup,
    CatalogCache,
    Config,
    archived_wal,
    judge_physical_backup_freshness,
    judge_physical_backup_size,
    judge_physical_restore,
    judge_wal_continuity,
    restore_physical_backup,
    server_archiver,
)

pytestmark = pytest.mark.weekly


@pytest.mark.maintcheck("physical_backup_freshness")
def test_physical_backup_freshness(
    physical_backup: Backup, physical_catalogs: CatalogCache, assessment: Assessment
) -> None:
    catalog = physical_catalogs.read(physical_backup)
    judge_physical_backup_freshness(physical_backup, catalog, assessment)


@pytest.mark.maintcheck("physical_backup_size")
def test_physical_backup_size(
    physical_backup: Backup, physical_catalogs: CatalogCache, assessment: Assessment
) -> None:
    catalog = physical_catalogs.read(physical_backup)
    judge_physical_backup_size(physical_backup, catalog, assessment)


@pytest.mark.maintcheck("wal_continuity")
def test_wal_continuity(
    physical_backup: Backup,
    physical_catalogs: CatalogCache,
    maintcheck_config: Config,
    assessment: Assessment,
) -> None:
    catalog = physical_catalogs.read(physical_backup)
    archived = archived_wal(physical_backup, catalog)
    server = server_archiver(physical_backup, maintcheck_config)  # "to now": what it archived
    judge_wal_continuity(physical_backup, catalog, archived, server, assessment)


@pytest.mark.maintcheck("physical_restore")
def test_physical_restore(
    restored_physical_backup: Backup,
    physical_catalogs: CatalogCache,
    maintcheck_config: Config,
    assessment: Assessment,
) -> None:
    backup = restored_physical_backup
    catalog = physical_catalogs.read(backup)
    outcome = restore_physical_backup(backup, maintcheck_config, catalog)
    judge_physical_restore(backup, outcome, assessment)
