"""Weekly load balancing: the replicas behind one service answer alike.

A health check entry with several ``endpoints`` is one service behind a balancer; its
replicas' p95 latencies and error rates are compared, each replica named.
"""

from __future__ import annotations

from pytest_maintcheck.config import HealthCheck
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict, format_value

# spread = (slowest p95 - fastest p95) / max(fastest p95, floor): 2.0 means three times slower
DEFAULT_IMBALANCE = Threshold.parse("imbalance", {"warn": 0.5, "fail": 2.0})
LATENCY_FLOOR_MS = 25.0  # below this, a difference between replicas is noise


def judge_load_balance(service: HealthCheck, result: ServiceResult, assessment: Assessment) -> None:
    """Each replica answers, with an error rate within errorRate, and the slowest p95 is
    within ``imbalance`` of the fastest. No replica answering raises the first one's
    MeasurementError: the check could not measure."""
    name, endpoints = service.service, result.endpoints
    assessment.details["endpoints"] = [
        {"endpoint": e.url, "p95Ms": e.p95_ms, "errorRate": e.error_rate, "samples": e.samples}
        for e in endpoints
    ]
    for e in endpoints:
        if not e.reachable:
            reasons = "; ".join(sorted(set(e.errors))[:2]) or "no answer"
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{name}: replica {e.url} did not answer ({reasons})",
                f"Take {e.url} out of the balancer and check it; the others carry its load.",
            )
    answering = [e for e in endpoints if e.reachable]
    if not answering:
        raise result.failure()  # the cause of the first replica's failure
    if len(answering) < 2:
        return
    errors = service.thresholds.get("errorRate")
    for e in answering:  # a few replicas; the finding names the replica before its rate
        verdict = errors.judge(e.error_rate) if errors else Verdict.PASS
        if verdict is not Verdict.PASS and errors is not None:
            assessment.add_finding(
                verdict,
                f"{name}: replica {e.url} error rate {format_value('errorRate', e.error_rate)} "
                f"({errors.describe()})",
                f"Check {e.url}'s logs; drain it from the balancer if it keeps failing.",
            )
    fast = min(answering, key=lambda e: e.p95_ms or 0.0)
    slow = max(answering, key=lambda e: e.p95_ms or 0.0)
    fast_ms, slow_ms = fast.p95_ms or 0.0, slow.p95_ms or 0.0
    spread = (slow_ms - fast_ms) / max(fast_ms, LATENCY_FLOOR_MS)
    assessment.metrics.update(fastestP95=round(fast_ms, 1), slowestP95=round(slow_ms, 1))
    assessment.measure(
        service.thresholds.get("imbalance") or DEFAULT_IMBALANCE,
        round(spread, 3),
        subject=f"{name}: {slow.url} p95 {slow_ms:.0f} ms vs {fast.url} {fast_ms:.0f} ms",
        action=f"Compare {slow.url}'s resources and routing weight with {fast.url}'s.",
    )
