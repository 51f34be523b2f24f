"""Thresholds, the direction of every metric, and the three verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pytest_maintcheck.catalogue import SEVERITIES
from pytest_maintcheck.units import format_duration, format_size, parse_duration, parse_size


class Verdict(StrEnum):
    """How a check ended; ordered from good to bad."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    DEGRADED = "degraded"
    VIOLATION = "violation"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def worst(self, other: Verdict) -> Verdict:
        return self if self.rank >= other.rank else other


_RANK = {Verdict.PASS: 0, Verdict.DEGRADED: 1, Verdict.VIOLATION: 2}


@dataclass(frozen=True)
class Metric:
    """What a number means: its unit and which way is worse."""

    name: str
    unit: str  # ms | ratio | seconds | bytes | count | days | bits
    higher_is_worse: bool = True
    label: str = ""


def _metrics(*items: Metric) -> dict[str, Metric]:
    return {m.name: m for m in items}


# The one place that says which way each metric goes; the docs list this table.
METRICS: dict[str, Metric] = _metrics(
    Metric("responseTime", "ms", label="p95 response time"),
    Metric("errorRate", "ratio", label="error rate"),
    Metric("uptime", "ratio", higher_is_worse=False, label="uptime"),
    Metric("availability", "ratio", higher_is_worse=False, label="availability"),
    Metric("usage", "ratio", label="space used"),
    Metric("inodeUsage", "ratio", label="inodes used"),
    Metric("deadTupleRatio", "ratio", label="dead tuple ratio"),
    Metric("vacuumAge", "seconds", label="time since vacuum"),
    Metric("analyzeAge", "seconds", label="time since analyze"),
    Metric("connectionUsage", "ratio", label="connections in use"),
    Metric("wraparoundAge", "count", label="transaction ID age"),
    Metric("cacheHitRatio", "ratio", higher_is_worse=False, label="cache hit ratio"),
    Metric("longTransaction", "seconds", label="oldest transaction"),
    Metric("size", "bytes", label="database size"),
    Metric("slowQuery", "seconds", label="mean statement time"),
    Metric("imbalance", "ratio", label="replica latency spread"),
    Metric("maxAge", "seconds", label="newest backup age"),
    Metric("sizeChange", "ratio", label="size change"),
    Metric("restoreDuration", "seconds", label="restore time"),
    Metric("freeSpace", "bytes", higher_is_worse=False, label="free space"),
    Metric("daysToExpiry", "days", higher_is_worse=False, label="days to expiry"),
    Metric("minKeyBits", "bits", higher_is_worse=False, label="key size"),
    Metric("validityDays", "days", label="certificate lifetime"),
    Metric("lifetimeLeft", "ratio", higher_is_worse=False, label="share of lifetime left"),
    Metric("inactive", "seconds", label="time since last login"),
    Metric("perAccount", "count", label="failed logins per account"),
    Metric("perSource", "count", label="failed logins per source"),
    Metric("ratio", "ratio", label="failed login ratio"),
    Metric("maxIdle", "seconds", label="session idle time"),
    Metric("maxLifetime", "seconds", label="session lifetime"),
    Metric("loginAttempts", "count", label="login attempts in the window"),
    Metric("failedLogins", "count", label="failed logins in the window"),
    Metric("guessedPasswords", "count", label="successes after a burst of failures"),
    Metric("unparseableLines", "count", label="unparseable log lines"),
    Metric("successfulLogins", "count", label="successful logins in the window"),
    Metric("newSourceLogins", "count", label="logins from a new source"),
    Metric("offHoursLogins", "count", label="off-hours logins"),
    Metric("openSessions", "count", label="open sessions"),
    Metric("reviewAge", "seconds", label="time since policy review"),
    Metric("daysToFull", "days", higher_is_worse=False, label="days to full"),
    Metric("archiveMaxAge", "seconds", label="time since the last archived WAL segment"),
    Metric("archiveFailures", "count", label="failed archive attempts since the last success"),
    Metric("replayLag", "seconds", label="replay lag"),
    Metric("replayLagBytes", "bytes", label="replay lag"),
    Metric("slotRetained", "bytes", label="WAL retained by the slot"),
    Metric("walGaps", "count", label="missing WAL segments"),
)


class ThresholdError(ValueError):
    """A threshold the operator wrote that cannot be used."""


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ThresholdError(f"unknown metric {name!r}") from None


def _number(name: str, raw: object) -> float:
    unit = metric(name).unit
    if unit == "seconds":
        return parse_duration(raw)
    if unit == "bytes":
        return parse_size(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ThresholdError(f"{name}: expected a number, got {raw!r}")
    return float(raw)


@dataclass(frozen=True)
class Threshold:
    """A warn and/or fail level for one metric; compared the metric's way round."""

    metric: str
    warn: float | None = None
    fail: float | None = None

    @classmethod
    def parse(cls, name: str, raw: object) -> Threshold:
        """A number is the fail level; ``{warn: X, fail: Y}`` gives both."""
        if isinstance(raw, Mapping):
            unknown = set(raw) - {"warn", "fail"}
            if unknown:
                raise ThresholdError(
                    f"{name}: only warn and fail are allowed, got {sorted(unknown)}"
                )
            if "warn" not in raw and "fail" not in raw:
                raise ThresholdError(f"{name}: give warn, fail or both")
            warn = _number(name, raw["warn"]) if "warn" in raw else None
            fail = _number(name, raw["fail"]) if "fail" in raw else None
        else:
            warn, fail = None, _number(name, raw)
        made = cls(name, warn, fail)
        if warn is not None and fail is not None and made._beyond(warn, fail):
            way = "above" if metric(name).higher_is_worse else "below"
            raise ThresholdError(
                f"{name}: warn ({warn:g}) must not be {way} fail ({fail:g}); "
                f"{'higher' if metric(name).higher_is_worse else 'lower'} is worse for {name}"
            )
        return made

    def _beyond(self, value: float, level: float) -> bool:
        return value > level if metric(self.metric).higher_is_worse else value < level

    def judge(self, value: float) -> Verdict:
        if self.fail is not None and self._beyond(value, self.fail):
            return Verdict.VIOLATION
        if self.warn is not None and self._beyond(value, self.warn):
            return Verdict.DEGRADED
        return Verdict.PASS

    def describe(self) -> str:
        sign = ">" if metric(self.metric).higher_is_worse else "<"
        parts = []
        if self.warn is not None:
            parts.append(f"warn {sign} {format_value(self.metric, self.warn)}")
        if self.fail is not None:
            parts.append(f"fail {sign} {format_value(self.metric, self.fail)}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "warn": self.warn,
            "fail": self.fail,
            "higherIsWorse": metric(self.metric).higher_is_worse,
            "unit": metric(self.metric).unit,
        }


def format_value(name: str, value: float) -> str:
    unit = metric(name).unit if name in METRICS else "count"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "seconds":
        return format_duration(value)
    if unit == "bytes":
        return format_size(value)
    if unit == "days":  # hours under two days: a 24-hour certificate's levels are hours
        return f"{value:.0f} days" if abs(value) >= 2 else f"{value * 24:.1f} hours"
    if unit == "bits":
        return f"{value:.0f} bits"
    return f"{value:g}"


@dataclass(frozen=True)
class Finding:
    """One thing an operator must look at, with what to do about it."""

    verdict: Verdict
    description: str
    action: str
    severity: str | None = None  # None: the check's own severity

    def to_json(self) -> dict[str, str]:
        out = {"verdict": str(self.verdict), "description": self.description, "action": self.action}
        if self.severity is not None:
            out["severity"] = self.severity
        return out


@dataclass
class Assessment:
    """What one check measured and concluded; filled in by the check, read by the plugin."""

    default_action: str = "Investigate and fix the cause."
    metrics: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verdict: Verdict = Verdict.PASS

    def measure(
        self,
        threshold: Threshold | None,
        value: float | None,
        *,
        subject: str = "",
        action: str | None = None,
        key: str | None = None,
        severity: str | None = None,
    ) -> Verdict:
        """Record a metric and judge it; a crossed threshold becomes a finding.

        ``severity`` (low|medium|high|critical) is that finding's, as for add_finding.
        """
        if threshold is None:
            return Verdict.PASS
        name = threshold.metric
        self.metrics[key or name] = value
        self.thresholds[key or name] = threshold.to_json()
        if value is None:
            return Verdict.PASS
        verdict = threshold.judge(value)
        if verdict is not Verdict.PASS:
            label = metric(name).label or name
            what = f"{subject}: " if subject else ""
            self.add_finding(
                verdict,
                f"{what}{label} {format_value(name, value)} ({threshold.describe()})",
                action,
                severity=severity,
            )
        return verdict

    def add_finding(
        self,
        verdict: Verdict,
        description: str,
        action: str | None = None,
        *,
        severity: str | None = None,
    ) -> None:
        """A finding not tied to one threshold (an invalid index, a terminated user).

        ``severity`` (low|medium|high|critical) overrides the check's own for this finding.
        """
        if verdict is Verdict.PASS:
            self.notes.append(description)
            return
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        finding = Finding(verdict, description, action or self.default_action, severity)
        self.findings.append(finding)
        self.verdict = self.verdict.worst(verdict)

    def could_not_measure(self, reason: str, action: str | None = None) -> None:
        """An unreachable target or a failed measurement never passes."""
        self.add_finding(Verdict.VIOLATION, reason, action)

    def message(self) -> str:
        """What an on-call person reads: each finding and its action, or what passed."""
        if not self.findings:
            shown = [
                f"{metric(k).label if k in METRICS else k} {format_value(k, v)}"
                for k, v in self.metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            return "; ".join(shown + self.notes) or "ok"
        return "\n".join(
            f"{f.verdict.upper()}: {f.description} -> {f.action}" for f in self.findings
        )
