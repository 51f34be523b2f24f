"""Probe errors of the daily and monthly checks are MeasurementErrors with a cause, so a check
lets them escape and the plugin reports "could not measure" (issue 9 point 3)."""

from __future__ import annotations

from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.probes.host_resources import HostProbeError, measure_node_exporter
from pytest_maintcheck.sandbox import free_port
from pytest_maintcheck.verdict import Assessment, Verdict


def test_an_exporter_that_is_not_there_is_could_not_measure_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens: a real refusal
    try:
        measure_node_exporter(url, timeout=2)
    except HostProbeError as exc:
        error: MeasurementError = exc
    else:
        raise AssertionError("a closed port was measured")
    assert error.cause is Cause.REFUSED
    assert error.where == url
    assessment = Assessment()
    assessment.unreached(error.about("db-host"))
    [finding] = assessment.findings
    assert finding.verdict is Verdict.VIOLATION
    assert finding.description.startswith(
        f"db-host: could not measure: connection refused at {url}"
    )
    assert finding.action.startswith(f"Nothing accepts connections at {url}")
