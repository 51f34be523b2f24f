"""Prometheus alerting rules and the seed's MonitoringConfig, from the config's thresholds.

The rules read the textfile series (``export/prometheus.py``): one rule per configured warn
and fail level of each target, a rule for any violated or degraded check, and one per suite
whose last success is older than its schedule allows. ``monitoring_config`` describes the
same metrics, alerts and a dashboard listing as the seed's MonitoringConfig record.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_maintcheck.catalogue import SUITES
from pytest_maintcheck.config import Config, Thresholds
from pytest_maintcheck.targets import TARGETS
from pytest_maintcheck.verdict import Threshold, format_value

# how often each suite runs, and how late its last success may be before someone is told
SUITE_INTERVAL = {"daily": 86_400, "weekly": 7 * 86_400, "monthly": 31 * 86_400}
SUITE_GRACE = {"daily": 2 * 3600, "weekly": 86_400, "monthly": 86_400}
FOR = "5m"  # the textfile changes once a run; this only rides out a missed scrape
SEVERITY = {"warn": "warning", "fail": "critical"}


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule and what MonitoringConfig says of it."""

    alert: str
    expr: str
    threshold: float
    severity: str
    summary: str
    description: str
    channels: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    duration: str = FOR

    def to_rule(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {"summary": self.summary, "description": self.description},
        }

    def to_monitoring(self) -> dict[str, Any]:
        """The seed's MonitoringConfig.alerts entry (condition, threshold, duration, channels)."""
        return {
            "condition": self.expr,
            "threshold": self.threshold,
            "duration": self.duration,
            "channels": list(self.channels),
            "name": self.alert,
            "severity": self.severity,
        }


def _literal(text: str) -> str:
    """A PromQL string literal (Go escaping, which JSON's is a subset of)."""
    return json.dumps(text, ensure_ascii=False)


def configured_thresholds(config: Config) -> Iterator[tuple[str, Threshold, tuple[str, ...]]]:
    """(target, threshold, alert channels) for every warn/fail level the config sets, once."""
    seen: set[tuple[str, str]] = set()
    for kind in TARGETS.values():
        for target in kind.targets(config):
            name = kind.ident(target)
            channels = tuple(getattr(target, "alert_channels", ()) or ())
            for threshold in _thresholds_of(target):
                if (name, threshold.metric) not in seen:
                    seen.add((name, threshold.metric))
                    yield name, threshold, channels


def _thresholds_of(target: Any) -> Iterator[Threshold]:
    if not dataclasses.is_dataclass(target):
        return
    for f in dataclasses.fields(target):
        value = getattr(target, f.name)
        if isinstance(value, Threshold):
            yield value
        elif isinstance(value, Thresholds):
            yield from value.items


def threshold_rules(config: Config) -> Iterator[AlertRule]:
    everyone = tuple(sorted(config.alert_webhooks))
    for target, threshold, channels in configured_thresholds(config):
        about = threshold.about
        sign = ">" if about.higher_is_worse else "<"
        sign += "=" if about.at_level else ""
        series = (
            f"maintcheck_check_metric{{target={_literal(target)},"
            f"metric={_literal(threshold.metric)}}}"
        )
        for level in ("warn", "fail"):
            value = getattr(threshold, level)
            if value is None:
                continue
            shown = format_value(threshold.metric, value, about.unit)
            yield AlertRule(
                alert="MaintcheckThresholdFail" if level == "fail" else "MaintcheckThresholdWarn",
                expr=f"{series} {sign} {value:g}",
                threshold=value,
                severity=SEVERITY[level],
                summary=f"{target}: {about.label or threshold.metric} {sign} {shown} ({level})",
                description=(
                    f"{{{{ $labels.check }}}} measured {threshold.metric} = {{{{ $value }}}} "
                    f"({about.unit}) on {target}; the config's {level} level is {shown}. "
                    "See the run's report.html for the finding and its action."
                ),
                channels=channels or everyone,
                labels={"level": level, "target": target, "metric": threshold.metric},
            )


def verdict_rules(config: Config) -> Iterator[AlertRule]:
    everyone = tuple(sorted(config.alert_webhooks))
    unwaived = "unless on(suite, check, target) maintcheck_check_waived == 1"
    yield AlertRule(
        alert="MaintcheckViolation",
        expr=f"maintcheck_check_verdict == 2 {unwaived}",
        threshold=2,
        severity="critical",
        summary="{{ $labels.check }} on {{ $labels.target }}: violation",
        description="The last {{ $labels.suite }} run found a violation (or could not "
        "measure) in {{ $labels.check }} for {{ $labels.target }}; see its report.html.",
        channels=everyone,
    )
    yield AlertRule(
        alert="MaintcheckDegraded",
        expr=f"maintcheck_check_verdict == 1 {unwaived}",
        threshold=1,
        severity="warning",
        summary="{{ $labels.check }} on {{ $labels.target }}: warning level crossed",
        description="The last {{ $labels.suite }} run judged {{ $labels.check }} for "
        "{{ $labels.target }} degraded; see its report.html.",
        channels=everyone,
    )


def staleness_rules(config: Config) -> Iterator[AlertRule]:
    everyone = tuple(sorted(config.alert_webhooks))
    for suite in SUITES:
        limit = SUITE_INTERVAL[suite] + SUITE_GRACE[suite]
        span = f"{limit // 3600}h" if limit < 3 * 86_400 else f"{limit // 86_400}d"
        series = f"maintcheck_last_success_timestamp_seconds{{suite={_literal(suite)}}}"
        yield AlertRule(
            alert="MaintcheckSuiteOverdue",
            expr=f"time() - {series} > {limit} or absent({series})",
            threshold=limit,
            severity="warning",
            summary=f"the {suite} maintenance suite has not succeeded for over {span}",
            description=f"No {suite} run finished with every check reaching a verdict in "
            f"{span}: check the schedule (maintcheck "
            "schedule), the run's log and exit status (75: another run held the lock).",
            channels=everyone,
            labels={"suite": suite},
            duration="15m",
        )


def all_rules(config: Config) -> list[AlertRule]:
    return [*verdict_rules(config), *staleness_rules(config), *threshold_rules(config)]


def rules_document(config: Config) -> dict[str, Any]:
    """A Prometheus rule file (``promtool check rules`` accepts it)."""
    return {
        "groups": [
            {"name": "maintcheck-verdicts", "rules": [r.to_rule() for r in verdict_rules(config)]},
            {
                "name": "maintcheck-schedule",
                "rules": [r.to_rule() for r in staleness_rules(config)],
            },
            {
                "name": "maintcheck-thresholds",
                "rules": [r.to_rule() for r in threshold_rules(config)],
            },
        ]
    }


def monitoring_config(config: Config, retention: str = "15d") -> dict[str, Any]:
    """The seed's MonitoringConfig record: metrics, alerts and dashboards."""
    from pytest_maintcheck.export.prometheus import FAMILIES

    metrics = [
        {
            "name": f'{name}{{suite="{suite}"}}',
            "type": "gauge",
            "interval": SUITE_INTERVAL[suite],
            "retention": retention,
        }
        for suite in SUITES
        for name in FAMILIES
    ]
    for health in config.health_checks:  # the seed's HealthCheck.interval, where it is set
        series = f'maintcheck_check_metric{{check="health",target={_literal(health.service)}}}'
        metrics.append(
            {
                "name": series,
                "type": "gauge",
                "interval": int(health.interval),
                "retention": retention,
            }
        )
    overview = [
        "maintcheck_check_verdict",
        "maintcheck_last_success_timestamp_seconds",
        "maintcheck_run_checks",
    ]
    dashboards = [{"name": "Maintenance overview", "metrics": overview, "refresh": 300}]
    dashboards += [
        {
            "name": f"Maintenance: {suite} suite",
            "metrics": [f'{name}{{suite="{suite}"}}' for name in FAMILIES],
            "refresh": 300 if suite == "daily" else 3600,
        }
        for suite in SUITES
    ]
    return {
        "metrics": metrics,
        "alerts": [r.to_monitoring() for r in all_rules(config)],
        "dashboards": dashboards,
    }
