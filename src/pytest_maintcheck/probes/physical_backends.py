"""Which tool reads and restores a physical backup entry: pgBackRest or Barman."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from pytest_maintcheck.config import Backup, Config
from pytest_maintcheck.probes import barman, pgbackrest
from pytest_maintcheck.probes.physical import BackupSet, Catalog, ToolError
from pytest_maintcheck.probes.physical_restore import RestoreCommand


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
