"""Site metrics without Python: each ``metrics`` entry, one number judged, in its own suite
(the rule is pytest_maintcheck.judges.metrics.judge_metric)."""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import Assessment, Config, MetricCheck, judge_metric, read_metric


@pytest.mark.daily
@pytest.mark.maintcheck("metric_daily")
def test_daily_metric(
    daily_metric: MetricCheck, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_metric(daily_metric, read_metric(daily_metric, maintcheck_config), assessment)


@pytest.mark.weekly
@pytest.mark.maintcheck("metric_weekly")
def test_weekly_metric(
    weekly_metric: MetricCheck, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_metric(weekly_metric, read_metric(weekly_metric, maintcheck_config), assessment)


@pytest.mark.monthly
@pytest.mark.maintcheck("metric_monthly")
def test_monthly_metric(
    monthly_metric: MetricCheck, maintcheck_config: Config, assessment: Assessment
) -> None:
    judge_metric(monthly_metric, read_metric(monthly_metric, maintcheck_config), assessment)
