"""Daily WAL archiving and streaming replication, one check per configured database.

Both read the statistics views as a pg_monitor role, read-only and bounded. The rules are in
pytest_maintcheck.judges.replication; a database that cannot be read is a MeasurementError:
the check could not measure.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    ArchivingTarget,
    Assessment,
    Config,
    ReplicationTarget,
    judge_replication,
    judge_wal_archiving,
    measure_archiver,
    measure_replication,
)

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("wal_archiving")
def test_wal_archiving(
    archiving_target: ArchivingTarget, maintcheck_config: Config, assessment: Assessment
) -> None:
    status = measure_archiver(maintcheck_config.database(archiving_target.database))
    judge_wal_archiving(status, archiving_target, assessment)


@pytest.mark.maintcheck("replication")
def test_replication(
    replication_target: ReplicationTarget, maintcheck_config: Config, assessment: Assessment
) -> None:
    state = measure_replication(maintcheck_config.database(replication_target.database))
    judge_replication(state, replication_target, assessment)
