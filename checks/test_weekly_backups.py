"""Weekly backup verification: fresh, intact, plausible in size, restorable, stored, rotated.

The restore check restores the newest dump for real into a scratch database and drops it.
The rules are in pytest_maintcheck.judges.backups; an unreadable location or manifest is a
MeasurementError: the check could not measure.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    Backup,
    Config,
    judge_backup_freshness,
    judge_backup_integrity,
    judge_backup_restore,
    judge_backup_rotation,
    judge_backup_size,
    judge_backup_storage,
    judge_config_backup,
    list_backups,
    read_newest_archive,
    restore_newest,
    storage_room,
    verify_manifest,
)

pytestmark = pytest.mark.weekly


@pytest.mark.maintcheck("backup_freshness")
def test_backup_freshness(backup: Backup, assessment: Assessment) -> None:
    judge_backup_freshness(backup, list_backups(backup.location, backup.pattern), assessment)


@pytest.mark.maintcheck("backup_integrity")
def test_backup_integrity(checksummed_backup: Backup, assessment: Assessment) -> None:
    backup = checksummed_backup
    found = list_backups(backup.location, backup.pattern)
    judge_backup_integrity(backup, found, verify_manifest(backup, found), assessment)


@pytest.mark.maintcheck("backup_size")
def test_backup_size(backup: Backup, assessment: Assessment) -> None:
    judge_backup_size(backup, list_backups(backup.location, backup.pattern), assessment)


@pytest.mark.maintcheck("backup_restore")
def test_backup_restore(
    pg_dump_backup: Backup, maintcheck_config: Config, assessment: Assessment
) -> None:
    backup = pg_dump_backup
    found = list_backups(backup.location, backup.pattern)
    outcome = restore_newest(backup, maintcheck_config, found)
    judge_backup_restore(backup, found, outcome, assessment)


@pytest.mark.maintcheck("config_backup")
def test_config_backup(files_backup: Backup, assessment: Assessment) -> None:
    found = list_backups(files_backup.location, files_backup.pattern)
    judge_config_backup(files_backup, found, read_newest_archive(found), assessment)


@pytest.mark.maintcheck("backup_storage")
def test_backup_storage(backup: Backup, assessment: Assessment) -> None:
    room = storage_room(backup.location)
    found = list_backups(backup.location, backup.pattern) if room.readable else []
    judge_backup_storage(backup, room, found, assessment)


@pytest.mark.maintcheck("backup_rotation")
def test_backup_rotation(rotated_backup: Backup, assessment: Assessment) -> None:
    found = list_backups(rotated_backup.location, rotated_backup.pattern)
    judge_backup_rotation(rotated_backup, found, assessment)
