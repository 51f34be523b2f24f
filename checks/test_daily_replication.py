"""Daily WAL archiving and streaming replication, one check per configured database.

Both read the statistics views as a pg_monitor role, read-only and bounded; the judging lives in
pytest_maintcheck.probes.archiving and .replication.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import ArchivingTarget, Config, ReplicationTarget
from pytest_maintcheck.probes.archiving import judge_archiving, read_archiver
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.probes.replication import judge_replication, read_replication
from pytest_maintcheck.verdict import Assessment

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("wal_archiving")
def test_wal_archiving(
    archiving_target: ArchivingTarget, maintcheck_config: Config, assessment: Assessment
) -> None:
    db = maintcheck_config.database(archiving_target.database)
    assessment.details["database"] = archiving_target.database
    try:
        status = read_archiver(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    except ProbeError as exc:
        assessment.could_not_measure(f"{archiving_target.database}: {exc}")
        return
    judge_archiving(status, archiving_target, assessment)


@pytest.mark.maintcheck("replication")
def test_replication(
    replication_target: ReplicationTarget, maintcheck_config: Config, assessment: Assessment
) -> None:
    db = maintcheck_config.database(replication_target.database)
    assessment.details["database"] = replication_target.database
    try:
        state = read_replication(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    except ProbeError as exc:
        assessment.could_not_measure(f"{replication_target.database}: {exc}")
        return
    judge_replication(state, replication_target, assessment)
