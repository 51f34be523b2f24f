"""The load balance and site metric rules, judged in-process on results made for the test.

tests/test_database_load_balance.py and tests/test_metric_checks.py run them end to end
against real HTTPS services and PostgreSQL: they prove the wiring; these prove the rules.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import HealthCheck, MetricCheck, Thresholds
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.judges.load_balance import judge_load_balance
from pytest_maintcheck.judges.metrics import judge_metric
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.probes.http import EndpointResult
from pytest_maintcheck.probes.metrics import MetricReading
from pytest_maintcheck.verdict import Assessment, Metric, Threshold, Verdict

A, B, C = "https://ecg-a/health", "https://ecg-b/health", "https://ecg-c/health"


def service(**limits: object) -> HealthCheck:
    items = tuple(Threshold.parse(name, raw) for name, raw in limits.items())
    return HealthCheck("ecg-viewer", "api", (A, B, C), thresholds=Thresholds(items))


def answered(url: str, ms: float, errors: int = 0, samples: int = 4) -> EndpointResult:
    made = EndpointResult(url, latencies_ms=[ms] * (samples - errors), samples=samples)
    made.errors.extend(["answered HTTP 503"] * errors)
    return made


def silent(url: str) -> EndpointResult:
    made = EndpointResult(url, samples=4)
    for _ in range(4):
        made.add_failure(5000.0, MeasurementError("timed out", cause=Cause.TIMED_OUT, where=url))
    return made


def test_a_replica_three_times_slower_than_the_fastest_is_a_violation() -> None:
    result = ServiceResult("ecg-viewer", [answered(A, 40), answered(B, 45), answered(C, 200)])
    made = Assessment()
    judge_load_balance(service(), result, made)
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["imbalance"] == 4.0
    assert made.findings[0].description.startswith(f"ecg-viewer: {C} p95 200 ms vs {A} 40 ms")
    assert made.metrics["fastestP95"] == 40.0


def test_small_differences_under_the_latency_floor_are_noise() -> None:
    result = ServiceResult("ecg-viewer", [answered(A, 2), answered(B, 12)])
    made = Assessment()
    judge_load_balance(service(), result, made)
    assert made.verdict is Verdict.PASS
    assert made.metrics["imbalance"] == 0.4  # (12 - 2) / 25, not (12 - 2) / 2


def test_a_silent_replica_and_a_failing_one_are_named() -> None:
    result = ServiceResult("ecg-viewer", [answered(A, 40), answered(B, 40, errors=2), silent(C)])
    made = Assessment()
    judge_load_balance(service(errorRate={"warn": 0.1, "fail": 0.4}), result, made)
    described = [f.description for f in made.findings]
    assert described[0] == f"ecg-viewer: replica {C} did not answer (timed out)"
    assert described[1] == f"ecg-viewer: replica {B} error rate 50% (warn > 10%, fail > 40%)"


def test_no_replica_answering_could_not_be_measured() -> None:
    result = ServiceResult("ecg-viewer", [silent(A), silent(B)])
    with pytest.raises(MeasurementError) as raised:
        judge_load_balance(service(), result, Assessment())
    assert raised.value.cause is Cause.TIMED_OUT
    assert raised.value.target == "ecg-viewer"


def metric(title: str = "") -> MetricCheck:
    limit = Threshold.parse("queue", {"warn": 5, "fail": 10}, Metric("queue", "count"))
    return MetricCheck("queue", "daily", limit, database="primary", sql="SELECT 1", title=title)


def test_a_metric_is_its_number_against_its_threshold() -> None:
    made = Assessment()
    judge_metric(metric(title="HL7 queue"), MetricReading(12.0), made)
    assert made.verdict is Verdict.VIOLATION
    assert made.findings[0].description.startswith("queue: ")
    assert made.metrics == {"queue": 12.0}


def test_a_metric_without_a_number_never_passes() -> None:
    made = Assessment()
    judge_metric(
        metric(), MetricReading(None, "returned no rows; it must return exactly one"), made
    )
    assert made.verdict is Verdict.VIOLATION
    assert made.findings[0].description == (
        "queue: could not measure from SQL on database 'primary': returned no rows; it must "
        "return exactly one"
    )
    assert made.metrics == {"queue": None}
