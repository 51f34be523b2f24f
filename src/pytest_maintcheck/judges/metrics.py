"""Site metrics without Python: one number from a SQL query or a JSON endpoint, judged."""

from __future__ import annotations

from pytest_maintcheck.config import MetricCheck
from pytest_maintcheck.probes.metrics import MetricReading
from pytest_maintcheck.verdict import Assessment


def judge_metric(metric: MetricCheck, reading: MetricReading, assessment: Assessment) -> None:
    """The number against the entry's threshold; no number never passes."""
    assessment.details.update(source=metric.source, title=metric.title or metric.name)
    if reading.value is None:
        assessment.metrics[metric.name] = None
        assessment.thresholds[metric.name] = metric.threshold.to_json()
        assessment.could_not_measure(
            f"{metric.name}: could not measure from {metric.source}: {reading.problem}",
            "Fix the source so it answers with exactly one number, then re-run the check.",
        )
        return
    # with a title the finding reads "name: title 512 (...)", without it "name 512 (...)"
    subject = metric.name if metric.title else ""
    assessment.measure(metric.threshold, reading.value, subject=subject, action=metric.action)
