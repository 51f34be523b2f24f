"""Which tool reads and restores a physical backup entry: pgBackRest or Barman; and what the
weekly physical checks measure: the catalog (listed once per run), the archived WAL, the
source server's archiver, a real point-in-time restore.

Each raises a MeasurementError (ToolError, ProbeError) naming the entry or database when it
could not measure, so a check reports "could not measure" without a try/except of its own.
"""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from pytest_maintcheck.config import Backup, Config
from pytest_maintcheck.probes import barman, pgbackrest
from pytest_maintcheck.probes.archiving import ArchiverStatus, measure_archiver
from pytest_maintcheck.probes.physical import BackupSet, Catalog, ToolError
from pytest_maintcheck.probes.physical_restore import (
    PhysicalRestoreOutcome,
    RestoreCommand,
    restore_physical,
)


def read_catalog(backup: Backup) -> Catalog:
    if backup.kind == "pgbackrest":
        return pgbackrest.read_catalog(backup)
    if backup.kind == "barman":
        return barman.read_catalog(backup)
    raise ToolError(f"{backup.name}: kind {backup.kind} is not a physical backup")


def archived_wal(backup: Backup, catalog: Catalog) -> list[str]:
    """WAL segment names in the archive from the newest set's start on."""
    start = catalog.newest.wal_start if catalog.newest else None
    if backup.kind == "pgbackrest":
        return pgbackrest.list_segments(backup, catalog, start)
    return barman.list_segments(backup, catalog, start)


def restore_command(backup: Backup, catalog: Catalog) -> RestoreCommand:
    test = backup.restore_test
    assert test is not None
    if backup.kind == "barman":

        def recover(chosen: BackupSet, data: Path, scratch: Path) -> list[str]:
            return barman.recover_argv(
                backup, chosen.label, data, scratch, test.target_time,
                archive_end=catalog.archive_max, tablespaces=catalog.tablespaces,
            )  # fmt: skip

        return recover

    def run(chosen: BackupSet, data: Path, scratch: Path) -> list[str]:
        return list(pgbackrest.restore_argv(backup, chosen.label, data, scratch, test.target_time))

    return run


def tool_runs_as_server_account(backup: Backup) -> bool:
    """pgBackRest runs as the cluster's account; Barman as its barman_user (this user)."""
    return backup.kind == "pgbackrest"


def restore_login(backup: Backup, config: Config) -> tuple[str, str]:
    """(user, dbname) the restored cluster is queried as: restoreTest's, the source DSN's,
    else postgres."""
    test = backup.restore_test
    params: dict[str, object] = {}
    if backup.database:
        params = dict(conninfo_to_dict(config.database(backup.database).dsn))
    user = (test.user if test else None) or str(params.get("user") or "postgres")
    dbname = (test.dbname if test else None) or str(params.get("dbname") or "postgres")
    return user, dbname


class CatalogCache:
    """One listing per physical backup entry and run, shared by its checks (or its error)."""

    def __init__(self) -> None:
        self._found: dict[str, Catalog | ToolError] = {}

    def read(self, backup: Backup) -> Catalog:
        """The entry's catalog; ToolError naming the entry when the tool could not list it."""
        if backup.name not in self._found:
            try:
                self._found[backup.name] = read_catalog(backup)
            except ToolError as exc:
                exc.about(backup.name)
                self._found[backup.name] = exc
        found = self._found[backup.name]
        if isinstance(found, ToolError):
            raise found.reworded(found.detail) from None  # a fresh copy for each check
        return found


def server_archiver(backup: Backup, config: Config) -> ArchiverStatus | None:
    """The source server's archiver (how far "to now" reaches); None without a database."""
    if not backup.database:
        return None
    return measure_archiver(config.database(backup.database))


def restore_physical_backup(
    backup: Backup, config: Config, catalog: Catalog
) -> PhysicalRestoreOutcome:
    """The newest set (or targetTime's) restored and recovered into a scratch server, checked
    and removed; the outcome says what happened (a failed restore is not an error)."""
    test = backup.restore_test
    assert test is not None  # only entries with a restoreTest are restored
    user, dbname = restore_login(backup, config)
    return restore_physical(
        backup,
        catalog,
        test,
        restore_command(backup, catalog),
        user=user,
        dbname=dbname,
        tool_as_server_account=tool_runs_as_server_account(backup),
    )
