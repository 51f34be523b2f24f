"""Daily system health: every healthChecks entry answers, fast enough and without errors."""

from __future__ import annotations

import pytest

from pytest_maintcheck.change import record_version
from pytest_maintcheck.config import HealthCheck
from pytest_maintcheck.history.window import Window
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.verdict import Assessment, Verdict

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("health")
def test_health(
    health_check: HealthCheck,
    health_fleet: dict[str, ServiceResult],
    health_history: Window,
    assessment: Assessment,
) -> None:
    result = health_fleet[health_check.service]
    limits = health_check.thresholds
    assessment.details.update(type=health_check.type, endpoints=list(health_check.endpoints))
    # uptime: the success fraction over the history window, this run's samples included
    failures = round(result.error_rate * result.samples)
    uptime = health_history.uptime(health_check.service, result.samples, failures)
    assessment.details["uptime"] = uptime.to_json()
    p95_ms = None if result.p95_ms is None else round(result.p95_ms, 1)
    # nothing answered: the time until the samples failed or timed out (README: responseTime)
    until_failed = result.response_time_ms
    assessment.metrics.update(
        responseTime=p95_ms if result.reachable else round(until_failed or 0.0, 1),
        errorRate=result.error_rate,
        uptime=uptime.value,
        samples=result.samples,
    )
    assessment.details["responseTimeOf"] = "answers" if result.reachable else "failures"
    if not result.reachable:
        raise result.failure()  # the plugin reports "could not measure" with its cause
    assessment.measure(limits.get("responseTime"), p95_ms, subject=health_check.service)
    seen = "; ".join(sorted(set(result.errors))[:3])
    assessment.measure(
        limits.get("errorRate"),
        result.error_rate,
        subject=f"{health_check.service} ({seen})" if seen else health_check.service,
    )
    availability = limits.get("availability")
    if uptime.judged:
        assessment.measure(
            availability,
            uptime.value,
            subject=f"{health_check.service} ({uptime.note})",
            action="Find the failed samples in the earlier runs' records (results.json) and fix "
            "what made the service fail; check the alerting caught each outage.",
        )
    elif availability is not None:
        assessment.add_finding(Verdict.PASS, f"availability: {uptime.note}")
    if health_check.type == "storage":
        storage = result.endpoints[0]
        assessment.measure(limits.get("usage"), storage.usage, subject=health_check.endpoint)
        assessment.measure(
            limits.get("inodeUsage"),
            storage.inode_usage,
            subject=health_check.endpoint,
            key="inodeUsage",
        )
    if health_check.type == "authentication":
        # an endpoint whose probe failed outright is a plain EndpointResult, without these
        provider = next((e for e in result.endpoints if getattr(e, "issuer", None)), None)
        assessment.details.update(
            issuer=getattr(provider, "issuer", None), jwksKeys=getattr(provider, "jwks_keys", None)
        )
    for problem in result.problems:
        assessment.add_finding(Verdict.VIOLATION, f"{health_check.service}: {problem}")
    if health_check.version_pointer is not None:
        record_version(assessment, health_check.version_pointer, result)
