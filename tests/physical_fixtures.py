"""One archived primary per session: pgBackRest stanza, a full backup, a streaming standby.

Built once (about 15 s) and shared by the WAL, replication and physical backup tests; each test
that plants a fault undoes it. tests/conftest.py loads this with pytest_plugins.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pytest_maintcheck.probes.local_server import LocalServer
from pytest_maintcheck.sandbox.physical import ArchivedPrimary

MONITOR = "maint_monitor"


@dataclass
class Physical:
    primary: ArchivedPrimary
    standby: LocalServer
    monitor_password: str

    @property
    def monitor_dsn(self) -> str:
        return self.primary.cluster.dsn("postgres", user=MONITOR)

    @property
    def standby_dsn(self) -> str:
        return self.primary.standby_dsn(self.standby, MONITOR)


@pytest.fixture(scope="session")
def physical() -> Iterator[Physical]:
    """The archived primary with data in ``clinical``, a full backup, and standby1 on a slot."""
    if shutil.which("pgbackrest") is None:
        pytest.fail("pgbackrest is not installed: run scripts/ensure-backup-tools (as root)")
    with ArchivedPrimary("clinical", backup=False) as primary:
        db = primary.cluster.create_database("clinical")
        with db.connect() as conn:
            conn.execute("CREATE TABLE patients (id int PRIMARY KEY, mrn text NOT NULL)")
            conn.execute(
                "INSERT INTO patients SELECT g, 'MRN-' || g FROM generate_series(1, 500) g"
            )
        primary.backup("full")
        password = primary.create_monitor_role(MONITOR)
        standby = primary.add_standby("standby1", slot="standby1")
        yield Physical(primary, standby, password)
