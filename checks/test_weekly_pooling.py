"""Weekly connection pooling (PgBouncer's admin console) and PostgreSQL's memory allocation
against its host's memory. The rules are in pytest_maintcheck.rules.pooling and .allocation."""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import Config
from pytest_maintcheck.config_operations import ConfigReview, Pooler
from pytest_maintcheck.probes import pgbouncer
from pytest_maintcheck.probes.host_resources import HostProbeError, measure_host
from pytest_maintcheck.probes.pg_config_review import review_snapshot
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.rules.allocation import judge_allocation
from pytest_maintcheck.rules.pooling import judge_pooler
from pytest_maintcheck.verdict import Assessment

pytestmark = pytest.mark.weekly


@pytest.mark.maintcheck("connection_pooling")
def test_connection_pooling(
    pooler: Pooler, maintcheck_config: Config, assessment: Assessment
) -> None:
    try:
        state = pgbouncer.read_pooler(
            pooler.dsn, connect_timeout=pooler.connect_timeout, timeout=pooler.timeout
        )
        limit = None
        if pooler.database is not None:
            db = maintcheck_config.database(pooler.database)
            limit = pgbouncer.server_limit(
                db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
            )
    except ProbeError as exc:
        assessment.could_not_measure(
            f"{pooler.name}: {exc}",
            "Check that PgBouncer runs and that the account is in its stats_users.",
        )
        return
    judge_pooler(pooler, state, limit, assessment)


@pytest.mark.maintcheck("resource_allocation")
def test_resource_allocation(
    allocated_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    review = allocated_database
    host = next(h for h in maintcheck_config.hosts if h.name == review.host)
    db = maintcheck_config.database(review.database)
    try:
        snap = review_snapshot(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
        reading = measure_host(host)
    except (ProbeError, HostProbeError) as exc:
        assessment.could_not_measure(f"{review.database} on {host.name}: {exc}")
        return
    judge_allocation(review, snap, reading, assessment)
