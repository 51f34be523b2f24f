"""Weekly physical backup verification: pgBackRest stanzas and Barman servers.

Fresh, plausible in size, WAL archive continuous from the newest backup to now, and a real
point-in-time recovery into a scratch server (always removed) within the RTO.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pytest_maintcheck.config import Backup, Config
from pytest_maintcheck.probes.archiving import read_archiver
from pytest_maintcheck.probes.physical import (
    Catalog,
    ToolError,
    judge_freshness,
    judge_size,
    judge_wal,
)
from pytest_maintcheck.probes.physical_backends import (
    archived_wal,
    read_catalog,
    restore_command,
    restore_login,
    tool_runs_as_server_account,
)
from pytest_maintcheck.probes.physical_restore import judge_restore, restore_physical
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.verdict import Assessment

pytestmark = pytest.mark.weekly


@pytest.fixture(scope="session")
def physical_catalogs() -> dict[str, Catalog | str]:
    """One listing per backup entry and run, shared by its checks (or the error it gave)."""
    return {}


def _catalog(
    backup: Backup, cache: dict[str, Catalog | str], assessment: Assessment
) -> Catalog | None:
    if backup.name not in cache:
        try:
            cache[backup.name] = read_catalog(backup)
        except ToolError as exc:
            cache[backup.name] = f"{backup.name}: {exc}"
    found = cache[backup.name]
    assessment.details["backup"] = backup.name
    if isinstance(found, str):
        assessment.could_not_measure(found, f"Run the {backup.kind} command by hand as this user.")
        return None
    return found


@pytest.mark.maintcheck("physical_backup_freshness")
def test_physical_backup_freshness(
    physical_backup: Backup, physical_catalogs: dict[str, Catalog | str], assessment: Assessment
) -> None:
    catalog = _catalog(physical_backup, physical_catalogs, assessment)
    if catalog is not None:
        judge_freshness(catalog, physical_backup.max_age, datetime.now(UTC), assessment)


@pytest.mark.maintcheck("physical_backup_size")
def test_physical_backup_size(
    physical_backup: Backup, physical_catalogs: dict[str, Catalog | str], assessment: Assessment
) -> None:
    catalog = _catalog(physical_backup, physical_catalogs, assessment)
    if catalog is not None:
        judge_size(catalog, physical_backup.size_change, assessment)


@pytest.mark.maintcheck("wal_continuity")
def test_wal_continuity(
    physical_backup: Backup,
    physical_catalogs: dict[str, Catalog | str],
    maintcheck_config: Config,
    assessment: Assessment,
) -> None:
    catalog = _catalog(physical_backup, physical_catalogs, assessment)
    if catalog is None:
        return
    try:
        segments = archived_wal(physical_backup, catalog)
    except ToolError as exc:
        assessment.could_not_measure(f"{physical_backup.name}: {exc}")
        return
    last, failing = None, False
    if physical_backup.database:  # "to now": up to what the server says it archived
        db = maintcheck_config.database(physical_backup.database)
        try:
            status = read_archiver(db.dsn, connect_timeout=db.connect_timeout)
            last, failing = status.last_archived_wal, status.failing
        except ProbeError as exc:
            assessment.could_not_measure(f"{physical_backup.database}: {exc}")
    judge_wal(catalog, segments, assessment, server_archived=last, server_failing=failing)


@pytest.mark.maintcheck("physical_restore")
def test_physical_restore(
    restored_physical_backup: Backup,
    physical_catalogs: dict[str, Catalog | str],
    maintcheck_config: Config,
    assessment: Assessment,
) -> None:
    backup = restored_physical_backup
    catalog = _catalog(backup, physical_catalogs, assessment)
    if catalog is None:
        return
    assert backup.restore_test is not None
    user, dbname = restore_login(backup, maintcheck_config)
    outcome = restore_physical(
        backup,
        catalog,
        backup.restore_test,
        restore_command(backup, catalog),
        user=user,
        dbname=dbname,
        tool_as_server_account=tool_runs_as_server_account(backup),
    )
    judge_restore(outcome, backup.restore_test, assessment)
