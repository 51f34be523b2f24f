"""The daily health rules (pytest_maintcheck.judges.health), in-process on constructed probe
results: no server, no pytest run. tests/test_daily_health_checks.py proves the wiring."""

from __future__ import annotations

from pytest_maintcheck.config import HealthCheck, Thresholds
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.history.store import Point
from pytest_maintcheck.history.window import Window
from pytest_maintcheck.judges.health import judge_health
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.probes.http import EndpointResult
from pytest_maintcheck.probes.oidc import OidcResult
from pytest_maintcheck.probes.storage import StorageResult
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

MONTH = 30 * 86400.0


def _check(kind: str = "api", **limits: object) -> HealthCheck:
    parsed = {name: Threshold.parse(name, raw) for name, raw in limits.items()}
    return HealthCheck(
        service="ehr",
        type=kind,
        endpoints=("https://ehr.example/health",),
        thresholds=Thresholds(tuple(parsed.values())),
    )


def _answers(*ms: float, errors: int = 0) -> ServiceResult:
    endpoint = EndpointResult("https://ehr.example/health", latencies_ms=list(ms))
    endpoint.samples = len(ms) + errors
    endpoint.errors = ["answered HTTP 500"] * errors
    return ServiceResult("ehr", endpoints=[endpoint])


def _empty_history() -> Window:
    return Window(since="2024-05-01T00:00:00Z", window=MONTH)


def test_a_slow_p95_is_a_finding_naming_the_service() -> None:
    assessment = Assessment()
    judge_health(_check(responseTime=200), _answers(100, 900), _empty_history(), assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert assessment.metrics["responseTime"] > 200
    assert assessment.findings[0].description.startswith("ehr: p95 response time")


def test_errors_are_judged_and_named() -> None:
    assessment = Assessment()
    judge_health(_check(errorRate=0.1), _answers(50, errors=1), _empty_history(), assessment)
    assert assessment.metrics["errorRate"] == 0.5
    assert "answered HTTP 500" in assessment.findings[0].description


def test_nothing_answered_is_could_not_measure_with_its_cause() -> None:
    refused = EndpointResult("https://ehr.example/health", samples=2)
    refused.add_failure(3.0, MeasurementError("refused", cause=Cause.REFUSED, where="ehr:443"))
    refused.add_failure(5.0, MeasurementError("refused", cause=Cause.REFUSED, where="ehr:443"))
    assessment = Assessment()
    judge_health(
        _check(responseTime=200), ServiceResult("ehr", [refused]), _empty_history(), assessment
    )
    [finding] = assessment.findings
    assert finding.verdict is Verdict.VIOLATION
    assert finding.unmeasured is not None
    assert finding.unmeasured.cause == "connection refused"
    assert finding.description.startswith("ehr: could not measure: connection refused at ehr:443")
    # never null: the time until the samples failed
    assert isinstance(assessment.metrics["responseTime"], float)
    assert assessment.details["responseTimeOf"] == "failures"


def test_availability_is_judged_on_the_window_once_there_is_enough_history() -> None:
    points = [
        Point("health", "ehr", metric, f"2024-05-0{day}T06:00:00Z", value, f"run-{day}")
        for day in range(1, 7)
        for metric, value in (("samples", 10.0), ("errorRate", 0.5))
    ]
    history = Window(since="2024-05-01T00:00:00Z", window=MONTH, points=points)
    assessment = Assessment()
    judge_health(_check(availability=0.99), _answers(10, 10), history, assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert assessment.metrics["uptime"] < 0.99
    assert "results.json" in assessment.findings[0].action


def test_availability_without_enough_history_is_a_note_not_a_pass_in_silence() -> None:
    assessment = Assessment()
    judge_health(_check(availability=0.99), _answers(10), _empty_history(), assessment)
    assert assessment.verdict is Verdict.PASS
    assert any(n.startswith("availability: ") for n in assessment.notes)


def test_storage_without_inode_figures_says_not_measured() -> None:
    storage = StorageResult("/srv/pacs", latencies_ms=[2.0], samples=1, usage=0.4)
    assessment = Assessment()
    judge_health(
        _check("storage", usage=0.9, inodeUsage=0.9),
        ServiceResult("pacs", [storage]),
        _empty_history(),
        assessment,
    )
    assert assessment.verdict is Verdict.PASS
    assert assessment.metrics["inodeUsage"] is None
    assert any("inodes used not measured" in n for n in assessment.notes), assessment.notes
    assert "not measured" in assessment.message()


def test_an_identity_provider_reports_its_issuer_and_keys() -> None:
    failed = EndpointResult("https://sso.example/.well-known/openid-configuration")
    provider = OidcResult(
        "https://sso.example/.well-known/openid-configuration",
        latencies_ms=[30.0],
        samples=1,
        issuer="https://sso.example",
        jwks_keys=2,
    )
    assessment = Assessment()
    judge_health(
        _check("authentication"),
        ServiceResult("sso", [failed, provider]),
        _empty_history(),
        assessment,
    )
    assert assessment.details["issuer"] == "https://sso.example"
    assert assessment.details["jwksKeys"] == 2
