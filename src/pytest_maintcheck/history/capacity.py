"""The monthly capacity review: growth projections, performance trends and usage patterns,
judged from the history window. The library judges, the check asks.

Every figure names the window and how many runs stand behind it; a series too short, flat or
shrinking is said plainly and gets no date.
"""

from __future__ import annotations

from collections.abc import Iterable
from statistics import median
from typing import Any

from pytest_maintcheck.config import DatabaseMaintenanceTarget, HealthCheck
from pytest_maintcheck.config_operations import Host
from pytest_maintcheck.history.projections import Projection, describe, project
from pytest_maintcheck.history.store import Point
from pytest_maintcheck.history.trends import (
    MIN_BASELINE,
    MIN_SINCE_VERSION,
    Trend,
    VersionShift,
    daily_growth,
    trend,
    version_shift,
)
from pytest_maintcheck.history.window import Window
from pytest_maintcheck.result import CheckResult
from pytest_maintcheck.units import format_duration, format_size
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

REVIEW_CHECKS = ("storage_capacity", "database_capacity", "performance_trend", "host_capacity")


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def _seconds(value: float) -> str:
    return format_duration(value)


def _bytes(value: float) -> str:
    return format_size(value)


def _history_readable(window: Window, assessment: Assessment) -> bool:
    assessment.details["window"] = {"since": window.since, "length": format_duration(window.window)}
    if window.problem is None:
        return True
    assessment.could_not_measure(f"history not readable: {window.problem}")
    return False


def _judge_projection(
    assessment: Assessment,
    projection: Projection,
    what: str,
    days_to_full: Threshold | None,
    action: str,
    show: Any,
    key: str | None = None,
) -> None:
    """One projection judged; ``key`` names one of several (a host's mounts, its memory)."""
    if key is None:
        assessment.details["projection"] = projection.to_json()
    else:
        assessment.details.setdefault("projections", {})[key] = projection.to_json()
    metric = "daysToFull" if key is None else f"daysToFull:{key}"
    text = describe(projection, what, show)
    if projection.days is None or days_to_full is None:
        assessment.metrics[metric] = projection.days
        assessment.add_finding(Verdict.PASS, text)
        return
    judged = assessment.measure(
        days_to_full, round(projection.days, 1), subject=text, action=action, key=metric
    )
    if key is not None and judged is Verdict.PASS:
        assessment.notes.append(text)  # one of several: its date is said, not only its number


def review_storage(
    window: Window, service: HealthCheck, days_to_full: Threshold | None, assessment: Assessment
) -> None:
    """Days until the storage is full, from its space usage over the window."""
    if not _history_readable(window, assessment):
        return
    series = window.series("health", service.service, "usage")
    _judge_projection(
        assessment,
        project(series, 1.0),
        f"{service.service} ({service.endpoint}) space used",
        days_to_full,
        f"Add space to {service.endpoint} or archive/purge data before the projected date; "
        "review the retention policy.",
        _percent,
    )


def review_database(
    window: Window,
    target: DatabaseMaintenanceTarget,
    days_to_full: Threshold | None,
    factor: float,
    assessment: Assessment,
) -> None:
    """Size projection to the size fail level, growth and slow-query trends, usage patterns."""
    if not _history_readable(window, assessment):
        return
    db = target.database
    sizes = window.series("database_size", db, "size")
    size_limit = target.thresholds.get("size")
    if size_limit is None or size_limit.fail is None:
        assessment.add_finding(
            Verdict.PASS, f"{db}: no size fail level configured; size growth not projected"
        )
    else:
        _judge_projection(
            assessment,
            project(sizes, size_limit.fail),
            f"{db} size (toward its size fail level)",
            days_to_full,
            f"Plan storage for {db} before the projected date: archive or partition the "
            "largest tables, or raise the size limit with the added space.",
            _bytes,
        )
    growth = trend(daily_growth(sizes))
    _judge_trend(assessment, growth, factor, f"{db} daily growth", "sizeGrowth", _per_day)
    slow = trend(window.series("slow_queries", db, "slowQuery"))
    _judge_trend(assessment, slow, factor, f"{db} slowest statement mean", "slowQuery", _seconds)
    assessment.details["usagePatterns"] = usage_patterns(
        window, "connections", db, ("connections", "activeSessions")
    )


HOST_CHECK = "host_resources"  # the daily check whose measurements the host review projects


def review_host(
    window: Window, host: Host, days_to_full: Threshold | None, assessment: Assessment
) -> None:
    """Days until each filesystem of the host reaches its usage fail level (full without one),
    and its memory in use its memory fail level, from the daily host_resources runs."""
    if not _history_readable(window, assessment):
        return
    assessment.details["host"] = host.name
    points = window.of(HOST_CHECK, host.name)
    mounts = mounted(points)
    if not mounts:
        assessment.add_finding(
            Verdict.PASS,
            f"{host.name}: no filesystem measured by {HOST_CHECK} in the window "
            f"({len({p.run_id for p in points})} run(s)); no projection yet",
        )
    limit, toward = _usage_level(host)
    for mount in mounts:
        _judge_projection(
            assessment,
            project(window.series(HOST_CHECK, host.name, f"usage:{mount}"), limit),
            f"{host.name}:{mount} space used ({toward})",
            days_to_full,
            f"Free space on {host.name}:{mount} (old logs, WAL, old backups) or grow the "
            "filesystem before the projected date; review the retention policy.",
            _percent,
            key=mount,
        )
    memory = host.thresholds.get("memory")
    if memory is None or memory.fail is None:
        assessment.add_finding(
            Verdict.PASS, f"{host.name}: no memory fail level configured; memory not projected"
        )
    else:
        _judge_projection(
            assessment,
            project(window.series(HOST_CHECK, host.name, "memory"), memory.fail),
            f"{host.name} memory in use (toward its memory fail level)",
            days_to_full,
            f"Find what keeps growing in {host.name}'s memory (a leak, more connections, "
            "caches) or add memory before the projected date.",
            _percent,
            key="memory",
        )
    dated = [
        d for k, d in assessment.metrics.items() if k.startswith("daysToFull:") and d is not None
    ]
    assessment.metrics["daysToFull"] = min(dated) if dated else None  # the soonest, headline


def mounted(points: Iterable[Point]) -> list[str]:
    """The mount points the host's newest reading measured: one unmounted since is left out."""
    usage = [p for p in points if p.metric.startswith("usage:")]
    if not usage:
        return []
    newest = max(p.at for p in usage)
    return sorted({p.metric.removeprefix("usage:") for p in usage if p.at == newest})


def _usage_level(host: Host) -> tuple[float, str]:
    """What a host's filesystems are projected toward: the usage fail level, else full."""
    limit = host.thresholds.get("usage")
    if limit is None or limit.fail is None:
        return 1.0, "toward full"
    return limit.fail, "toward its usage fail level"


def _per_day(value: float) -> str:
    return f"{format_size(value)}/day"


def review_performance(
    window: Window, service: HealthCheck, factor: float, assessment: Assessment
) -> None:
    """The service's p95 since its newest version change against the version before (when
    its running version changed in the window), else its latest p95 against the median of
    the window's earlier runs."""
    if not _history_readable(window, assessment):
        return
    shift = version_shift(window.versioned("health", service.service, "responseTime"))
    if shift is not None:
        assessment.details["versions"] = shift.to_json()
    if shift is not None and shift.enough:
        _judge_version_shift(assessment, shift, factor, service.service)
    else:
        if shift is not None:
            assessment.add_finding(Verdict.PASS, _too_few_since(shift, service.service))
        p95 = trend(window.series("health", service.service, "responseTime"))
        _judge_trend(assessment, p95, factor, f"{service.service} p95", "responseTime", _ms)
    assessment.details["usagePatterns"] = usage_patterns(
        window, "health", service.service, ("requests",)
    )


def _judge_version_shift(
    assessment: Assessment, shift: VersionShift, factor: float, service: str
) -> None:
    """A warning when the p95 since the change is beyond the factor of the version before."""
    ratio = shift.ratio or 0.0
    assessment.metrics["responseTimeTrend"] = round(ratio, 3)
    change = round(abs(ratio - 1) * 100)
    was, now = _ms(shift.median_before), _ms(shift.median_since)
    if change == 0:
        said = (
            f"{service}: p95 unchanged since {shift.since} ({was} on {shift.before}, {now} since)"
        )
    else:
        moved = "rose" if ratio > 1 else "fell"
        said = (
            f"{service}: p95 {moved} {change}% since {shift.since} "
            f"(from {was} on {shift.before} to {now})"
        )
    basis = (
        f"; medians of {shift.runs_before} runs on {shift.before} and {shift.runs_since} "
        f"since {shift.changed_at:%Y-%m-%d}"
    )
    if ratio > factor:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{said}{basis}: x{ratio:.2f}, above the trend factor {factor:g}",
            f"Compare {shift.since} with {shift.before} (release notes, new or changed queries, "
            f"configuration, resources): fix or roll back the slowdown, or plan the capacity "
            f"{shift.since} needs.",
        )
    else:
        assessment.add_finding(Verdict.PASS, f"{said}{basis} (trend factor {factor:g})")


def _too_few_since(shift: VersionShift, service: str) -> str:
    """Why the versions are not compared, and what is judged instead."""
    running = f"{service}: running {shift.since} since {shift.changed_at:%Y-%m-%d}"
    compare = f"to compare its p95 with {shift.before}'s"
    if shift.runs_since < MIN_SINCE_VERSION:
        why = f"{shift.runs_since} run(s) on it, too few {compare} ({MIN_SINCE_VERSION} needed)"
    elif shift.runs_before < MIN_BASELINE:
        why = (
            f"{shift.runs_before} run(s) on {shift.before} in the window, too few {compare} "
            f"({MIN_BASELINE} needed)"
        )
    else:
        why = f"its p95 on {shift.before} was {_ms(shift.median_before)}, nothing {compare}"
    return f"{running}: {why}; the latest p95 is judged against the whole window instead"


def _judge_trend(
    assessment: Assessment, t: Trend, factor: float, what: str, key: str, show: Any
) -> None:
    trends = assessment.details.setdefault("trends", {})
    trends[key] = {**t.to_json(), "factor": factor}
    if t.latest is None or t.baseline is None or not t.enough:
        why = (
            f"baseline {show(t.baseline)} is not above zero"
            if t.baseline is not None and t.earlier >= MIN_BASELINE
            else f"{t.earlier} earlier run(s) in the window ({MIN_BASELINE} needed)"
        )
        assessment.add_finding(Verdict.PASS, f"{what}: no trend: {why}")
        return
    ratio = t.ratio or 0.0
    assessment.metrics[f"{key}Trend"] = round(ratio, 3)
    text = (
        f"{what} {show(t.latest)} against its baseline {show(t.baseline)} (median of "
        f"{t.earlier} earlier runs): x{ratio:.2f}"
    )
    if ratio > factor:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{text}, above the trend factor {factor:g}",
            f"Find what changed since the baseline ({what}): deploys, data growth, load; "
            "fix it or plan the capacity before the thresholds are reached.",
        )
    else:
        assessment.add_finding(Verdict.PASS, f"{text} (trend factor {factor:g})")


def usage_patterns(
    window: Window, check: str, target: str, metrics: Iterable[str]
) -> dict[str, Any]:
    """Peak and typical (median) of each usage count over the window, or that none was kept."""
    out: dict[str, Any] = {}
    for metric in metrics:
        values = [v for _, v in window.series(check, target, metric)]
        out[metric] = (
            {"peak": max(values), "typical": median(values), "runs": len(values)}
            if values
            else {"peak": None, "typical": None, "runs": 0, "note": "not measured in the window"}
        )
    return out


_REVIEWED = ("window", "projection", "projections", "trends", "versions", "usagePatterns")


def review_record(results: Iterable[CheckResult]) -> dict[str, Any] | None:
    """capacity-review.json: the projections, trends and usage patterns of this run's review."""
    entries = [
        {
            "check": r.check,
            "target": r.target,
            "verdict": r.verdict.value,
            "daysToFull": r.metrics.get("daysToFull"),
            **{
                k: v
                for k, v in r.details.items()
                if k
                in ("window", "projection", "projections", "trends", "versions", "usagePatterns")
            },
            "summary": r.message,
        }
        for r in results
        if r.check in REVIEW_CHECKS and r.verdict != "skipped"
    ]
    if not entries:
        return None
    return {"entries": sorted(entries, key=lambda e: (e["check"], str(e["target"])))}
