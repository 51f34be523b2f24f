"""Monthly resource planning: the capacity review, read from the run history.

Growth projections (storage, database size, each host's filesystems and memory) against
capacity.daysToFull, and each service's and database's latest figures against their own
baseline (capacity.trendFactor), with the usage patterns of the window beside them in
capacity-review.json.
The rules are in pytest_maintcheck.history.capacity; ``capacity_history`` is the window, read
once per run.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    Config,
    DatabaseMaintenanceTarget,
    HealthCheck,
    Host,
    Window,
    review_database,
    review_host,
    review_performance,
    review_storage,
)

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("storage_capacity")
def test_storage_capacity(
    storage_service: HealthCheck,
    maintcheck_config: Config,
    capacity_history: Window,
    assessment: Assessment,
) -> None:
    review_storage(
        capacity_history, storage_service, maintcheck_config.capacity_days_to_full, assessment
    )


@pytest.mark.maintcheck("database_capacity")
def test_database_capacity(
    maintained_database: DatabaseMaintenanceTarget,
    maintcheck_config: Config,
    capacity_history: Window,
    assessment: Assessment,
) -> None:
    review_database(
        capacity_history,
        maintained_database,
        maintcheck_config.capacity_days_to_full,
        maintcheck_config.capacity_trend_factor,
        assessment,
    )


@pytest.mark.maintcheck("performance_trend")
def test_performance_trend(
    health_check: HealthCheck,
    maintcheck_config: Config,
    capacity_history: Window,
    assessment: Assessment,
) -> None:
    review_performance(
        capacity_history, health_check, maintcheck_config.capacity_trend_factor, assessment
    )


@pytest.mark.maintcheck("host_capacity")
def test_host_capacity(
    host: Host, maintcheck_config: Config, host_history: Window, assessment: Assessment
) -> None:
    review_host(host_history, host, maintcheck_config.capacity_days_to_full, assessment)
