"""Site metrics without Python: each ``metrics`` entry, one number judged, in its own suite."""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import Config, MetricCheck
from pytest_maintcheck.probes.metrics import ProbeError, read_json_number, read_sql_number
from pytest_maintcheck.verdict import Assessment


def judge_metric(metric: MetricCheck, config: Config, assessment: Assessment) -> None:
    """Read the number from its source and judge it; anything but one number never passes."""
    assessment.details.update(source=metric.source, title=metric.title or metric.name)
    try:
        if metric.sql is not None:
            database = config.database(str(metric.database))
            value = read_sql_number(
                database.dsn,
                metric.sql,
                statement_timeout=metric.timeout,
                connect_timeout=database.connect_timeout,
            )
        else:
            value = read_json_number(
                str(metric.http), metric.pointer, timeout=metric.timeout, ca_file=metric.ca_file
            )
    except ProbeError as exc:
        assessment.metrics[metric.name] = None
        assessment.thresholds[metric.name] = metric.threshold.to_json()
        assessment.could_not_measure(
            f"{metric.name}: could not measure from {metric.source}: {exc}",
            "Fix the source so it answers with exactly one number, then re-run the check.",
        )
        return
    # with a title the finding reads "name: title 512 (...)", without it "name 512 (...)"
    subject = metric.name if metric.title else ""
    assessment.measure(metric.threshold, value, subject=subject, action=metric.action)


@pytest.mark.daily
@pytest.mark.maintcheck("metric_daily")
def test_daily_metric(
    daily_metric: MetricCheck, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_metric(daily_metric, maintcheck_config, assessment)


@pytest.mark.weekly
@pytest.mark.maintcheck("metric_weekly")
def test_weekly_metric(
    weekly_metric: MetricCheck, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_metric(weekly_metric, maintcheck_config, assessment)


@pytest.mark.monthly
@pytest.mark.maintcheck("metric_monthly")
def test_monthly_metric(
    monthly_metric: MetricCheck, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_metric(monthly_metric, maintcheck_config, assessment)
