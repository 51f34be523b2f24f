"""Public fixtures that give checks their measurements, shared by a run's checks.

The bundled weekly database checks (and a site's own checks) ask for ``measured_database``:
the snapshot of one ``databaseMaintenance`` entry, read once per run and database. The physical
backup checks ask for ``physical_catalogs``: each pgBackRest stanza or Barman server listed
once per run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_maintcheck.config import Config, DatabaseMaintenanceTarget
from pytest_maintcheck.verdict import Assessment

if TYPE_CHECKING:  # psycopg is imported only by a run that measures a database
    from pytest_maintcheck.probes.pg_maintenance import SnapshotCache
    from pytest_maintcheck.probes.pg_measured import MeasuredDatabase
    from pytest_maintcheck.probes.physical_backends import CatalogCache


@pytest.fixture(scope="session")
def db_snapshots() -> SnapshotCache:
    """Snapshots of this run, one per database, shared by all its checks."""
    from pytest_maintcheck.probes.pg_maintenance import SnapshotCache

    return SnapshotCache()


@pytest.fixture
def measured_database(
    maintained_database: DatabaseMaintenanceTarget,
    maintcheck_config: Config,
    db_snapshots: SnapshotCache,
    assessment: Assessment,
    maintcheck_apply: bool,
) -> MeasuredDatabase:
    """One databaseMaintenance entry's database (the check runs once per entry): its snapshot,
    and with --maintcheck-apply the repair of what the check finds."""
    from pytest_maintcheck.probes.pg_measured import MeasuredDatabase

    database = maintcheck_config.databases[maintained_database.database]
    return MeasuredDatabase(
        maintained_database, database, db_snapshots, assessment, maintcheck_apply
    )


@pytest.fixture(scope="session")
def physical_catalogs() -> CatalogCache:
    """The physical backup checks' listings (pgbackrest info, barman list-backups), one per
    backup entry and run: ``physical_catalogs.read(backup)`` lists it or raises its ToolError."""
    from pytest_maintcheck.probes.physical_backends import CatalogCache

    return CatalogCache()
