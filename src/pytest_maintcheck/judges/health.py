"""Daily system health: a service answered, fast enough, without errors, often enough over the
history window; storage space and inodes; an identity provider's issuer and keys."""

from __future__ import annotations

from pytest_maintcheck.config import HealthCheck
from pytest_maintcheck.history.window import Window
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.probes.oidc import OidcResult
from pytest_maintcheck.probes.storage import StorageResult
from pytest_maintcheck.verdict import Assessment, Verdict

AVAILABILITY_ACTION = (
    "Find the failed samples in the earlier runs' records (results.json) and fix what made the "
    "service fail; check the alerting caught each outage."
)


def judge_health(
    check: HealthCheck, result: ServiceResult, history: Window, assessment: Assessment
) -> None:
    """One service's samples of this run, and its uptime over the window with them."""
    service, limits = check.service, check.thresholds
    assessment.details.update(type=check.type, endpoints=list(check.endpoints))
    # uptime: the success fraction over the history window, this run's samples included
    failures = round(result.error_rate * result.samples)
    uptime = history.uptime(service, result.samples, failures)
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
        assessment.unreached(result.failure())  # could not measure, with its cause
        return
    assessment.measure(limits.get("responseTime"), p95_ms, subject=service)
    seen = "; ".join(sorted(set(result.errors))[:3])
    assessment.measure(
        limits.get("errorRate"),
        result.error_rate,
        subject=f"{service} ({seen})" if seen else service,
    )
    availability = limits.get("availability")
    if uptime.judged:
        assessment.measure(
            availability,
            uptime.value,
            subject=f"{service} ({uptime.note})",
            action=AVAILABILITY_ACTION,
            missing="no sample in the window",
        )
    elif availability is not None:
        assessment.add_finding(Verdict.PASS, f"availability: {uptime.note}")
    _judge_kind(check, result, assessment)
    for problem in result.problems:
        assessment.add_finding(Verdict.VIOLATION, f"{service}: {problem}")
    if check.version_pointer is not None:
        from pytest_maintcheck.change import record_version

        record_version(assessment, check.version_pointer, result)


def _judge_kind(check: HealthCheck, result: ServiceResult, assessment: Assessment) -> None:
    """What only a storage path or an identity provider reports."""
    if check.type == "storage":
        storage = result.endpoints[0]
        assert isinstance(storage, StorageResult)
        why = "its space could not be read (statvfs)"
        assessment.measure(
            check.thresholds.get("usage"), storage.usage, subject=check.endpoint, missing=why
        )
        assessment.measure(
            check.thresholds.get("inodeUsage"),
            storage.inode_usage,
            subject=check.endpoint,
            key="inodeUsage",
            missing="the filesystem has no fixed inode count"
            if storage.usage is not None
            else "its inodes could not be read (statvfs)",
        )
    if check.type == "authentication":
        # an endpoint whose probe failed outright is a plain EndpointResult, without these
        provider = next(
            (e for e in result.endpoints if isinstance(e, OidcResult) and e.issuer), None
        )
        assessment.details.update(
            issuer=provider.issuer if provider else None,
            jwksKeys=provider.jwks_keys if provider else None,
        )
