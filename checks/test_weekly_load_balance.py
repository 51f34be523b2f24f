"""Weekly load balancing: the replicas behind one service answer alike.

A health check entry with several ``endpoints`` is one service behind a balancer; its
replicas' p95 latencies and error rates are compared, each replica named (the rules are in
pytest_maintcheck.judges.load_balance).
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import Assessment, HealthCheck, ServiceResult, judge_load_balance

pytestmark = pytest.mark.weekly


@pytest.mark.maintcheck("load_balance")
def test_load_balance(
    replicated_service: HealthCheck,
    health_fleet: dict[str, ServiceResult],
    assessment: Assessment,
) -> None:
    judge_load_balance(replicated_service, health_fleet[replicated_service.service], assessment)
