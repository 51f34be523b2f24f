"""Weekly connection pooling (PgBouncer's admin console) and PostgreSQL's memory allocation
against its host's memory. The rules are in pytest_maintcheck.rules.pooling and .allocation;
a pooler, database or host that cannot be read is a MeasurementError: could not measure."""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    Config,
    ConfigReview,
    Pooler,
    judge_allocation,
    judge_pooler,
    read_allocation,
    read_pooling,
)

pytestmark = pytest.mark.weekly


@pytest.mark.maintcheck("connection_pooling")
def test_connection_pooling(
    pooler: Pooler, maintcheck_config: Config, assessment: Assessment
) -> None:
    state, limit = read_pooling(pooler, maintcheck_config)
    judge_pooler(pooler, state, limit, assessment)


@pytest.mark.maintcheck("resource_allocation")
def test_resource_allocation(
    allocated_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    snapshot, host = read_allocation(allocated_database, maintcheck_config)
    judge_allocation(allocated_database, snapshot, host, assessment)
