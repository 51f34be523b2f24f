"""Weekly database maintenance and performance, one check per databaseMaintenance entry.

All checks of one database judge one shared snapshot (one session, a fixed number of catalog
queries). Read-only unless --maintcheck-apply: then the tables and indexes at fault are
repaired and the check judges the state measured after the repair. The rules are in
pytest_maintcheck.judges.database.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    MeasuredDatabase,
    dead_tuple_repairs,
    invalid_index_repairs,
    judge_cache_hit,
    judge_connections,
    judge_database_size,
    judge_dead_tuples,
    judge_index_usage,
    judge_invalid_indexes,
    judge_slow_queries,
    judge_vacuum_age,
    judge_wraparound,
    statements_missing,
    vacuum_age_repairs,
)

pytestmark = pytest.mark.weekly


@pytest.mark.maintcheck("dead_tuples")
def test_dead_tuples(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    snapshot = measured_database.repaired(dead_tuple_repairs)
    judge_dead_tuples(snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("vacuum_age")
def test_vacuum_age(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    snapshot = measured_database.repaired(vacuum_age_repairs)
    judge_vacuum_age(snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("invalid_indexes")
def test_invalid_indexes(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    snapshot = measured_database.repaired(invalid_index_repairs)
    judge_invalid_indexes(snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("wraparound")
def test_wraparound(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    judge_wraparound(measured_database.snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("connections")
def test_connections(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    judge_connections(measured_database.snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("database_size")
def test_database_size(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    judge_database_size(measured_database.snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("cache_hit")
def test_cache_hit(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    judge_cache_hit(measured_database.snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("slow_queries")
def test_slow_queries(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    snapshot = measured_database.snapshot
    missing = statements_missing(snapshot)
    if missing is not None:  # no pg_stat_statements: nothing to judge, the reason says why
        pytest.skip(missing)
    judge_slow_queries(snapshot, measured_database.target, assessment)


@pytest.mark.maintcheck("index_usage")
def test_index_usage(measured_database: MeasuredDatabase, assessment: Assessment) -> None:
    judge_index_usage(measured_database.snapshot, measured_database.target, assessment)
