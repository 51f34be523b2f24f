"""Daily system health: every healthChecks entry answers, fast enough and without errors.

The fleet is probed once, concurrently, before the first check (``health_fleet``); the rules
are in pytest_maintcheck.judges.health."""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import Assessment, HealthCheck, ServiceResult, Window, judge_health

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("health")
def test_health(
    health_check: HealthCheck,
    health_fleet: dict[str, ServiceResult],
    health_history: Window,
    assessment: Assessment,
) -> None:
    judge_health(health_check, health_fleet[health_check.service], health_history, assessment)
