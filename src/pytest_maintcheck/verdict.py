"""Thresholds, the direction of every metric, and the three verdicts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pytest_maintcheck.catalogue import SEVERITIES
from pytest_maintcheck.errors import MeasurementError, Unmeasured
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


UNITS = ("count", "ratio", "ms", "seconds", "bytes", "days", "bits")


@dataclass(frozen=True)
class Metric:
    """What a number means: its unit and which way is worse."""

    name: str
    unit: str  # one of UNITS
    higher_is_worse: bool = True
    label: str = ""
    at_level: bool = False  # True: reaching a level crosses it (a backup that halved fails at 0.5)


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
    Metric("sizeChange", "ratio", label="size change", at_level=True),
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
    # host resources, pooling and memory allocation (issue 14)
    Metric("cpuLoad", "count", label="5-minute load per core"),
    Metric("memory", "ratio", label="memory used"),
    Metric("swap", "ratio", label="swap used"),
    Metric("clientsWaiting", "count", label="clients waiting"),
    Metric("maxWait", "seconds", label="longest client wait"),
    Metric("clientConnections", "ratio", label="client connections of max_client_conn"),
    Metric("poolUsage", "ratio", label="server connections of pool size"),
    Metric("serverConnections", "ratio", label="pool server connections of max_connections"),
    Metric("sharedBuffers", "ratio", label="shared_buffers of host memory"),
    Metric("memoryCommitment", "ratio", label="worst-case PostgreSQL memory of host memory"),
    Metric("effectiveCache", "ratio", label="effective_cache_size of host memory"),
    Metric("archiveMaxAge", "seconds", label="time since the last archived WAL segment"),
    Metric("archiveFailures", "count", label="failed archive attempts since the last success"),
    Metric("replayLag", "seconds", label="replay lag"),
    Metric("replayLagBytes", "bytes", label="replay lag"),
    Metric("slotRetained", "bytes", label="WAL retained by the slot"),
    Metric("walGaps", "count", label="missing WAL segments"),
)


SHOWN_PER_THRESHOLD = 20  # findings listed one by one before "+N more"


def _worst(threshold: Threshold, values: list[float]) -> float | None:
    if not values:
        return None
    return max(values) if threshold.about.higher_is_worse else min(values)


class ThresholdError(ValueError):
    """A threshold the operator wrote that cannot be used."""


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ThresholdError(f"unknown metric {name!r}") from None


def _number(name: str, raw: object, definition: Metric | None = None) -> float:
    unit = (definition or metric(name)).unit
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
    # a site's own metric, not in METRICS: its unit and which way is worse travel with it
    definition: Metric | None = None

    @property
    def about(self) -> Metric:
        """What the measured number means: the site's definition, else the METRICS entry."""
        return self.definition or metric(self.metric)

    @classmethod
    def parse(cls, name: str, raw: object, definition: Metric | None = None) -> Threshold:
        """A number is the fail level; ``{warn: X, fail: Y}`` gives both.

        ``definition`` describes a metric of the site's own (direction, unit); without it the
        name must be one of METRICS.
        """
        if isinstance(raw, Mapping):
            unknown = set(raw) - {"warn", "fail"}
            if unknown:
                raise ThresholdError(
                    f"{name}: only warn and fail are allowed, got {sorted(unknown)}"
                )
            if "warn" not in raw and "fail" not in raw:
                raise ThresholdError(f"{name}: give warn, fail or both")
            warn = _number(name, raw["warn"], definition) if "warn" in raw else None
            fail = _number(name, raw["fail"], definition) if "fail" in raw else None
        else:
            warn, fail = None, _number(name, raw, definition)
        made = cls(name, warn, fail, definition)
        higher = made.about.higher_is_worse
        if warn is not None and fail is not None and made._beyond(warn, fail):
            raise ThresholdError(
                f"{name}: warn ({warn:g}) must not be {'above' if higher else 'below'} fail "
                f"({fail:g}); {'higher' if higher else 'lower'} is worse for {name}"
            )
        return made

    def _beyond(self, value: float, level: float) -> bool:
        return value > level if self.about.higher_is_worse else value < level

    def _crosses(self, value: float, level: float) -> bool:
        return self._beyond(value, level) or (self.about.at_level and value == level)

    def judge(self, value: float) -> Verdict:
        if self.fail is not None and self._crosses(value, self.fail):
            return Verdict.VIOLATION
        if self.warn is not None and self._crosses(value, self.warn):
            return Verdict.DEGRADED
        return Verdict.PASS

    def describe(self) -> str:
        sign = ">" if self.about.higher_is_worse else "<"
        sign += "=" if self.about.at_level else ""
        unit = self.about.unit
        parts = []
        if self.warn is not None:
            parts.append(f"warn {sign} {format_value(self.metric, self.warn, unit)}")
        if self.fail is not None:
            parts.append(f"fail {sign} {format_value(self.metric, self.fail, unit)}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out = {
            "warn": self.warn,
            "fail": self.fail,
            "higherIsWorse": self.about.higher_is_worse,
            "unit": self.about.unit,
        }
        if self.definition is not None and self.definition.label:
            out["label"] = self.definition.label  # a site's metric: no METRICS entry names it
        return out


def format_value(name: str, value: float, unit: str | None = None) -> str:
    """``value`` in its unit: the one given, else the METRICS entry's, else a plain number."""
    unit = unit or (metric(name).unit if name in METRICS else "count")
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


# a finding is one line of terminal output: long enough for a list of names, never a flood
TEXT_LIMIT = 2000


def printable(text: object, limit: int) -> str:
    """redact.printable, imported late: redact imports config, which imports this module."""
    from pytest_maintcheck.redact import printable as shown

    return shown(text, limit)


@dataclass(frozen=True)
class Finding:
    """One thing an operator must look at, with what to do about it.

    ``unmeasured``: set when the finding is "could not measure" (the target was not reached):
    the terminal summary groups checks by its target and reason.
    """

    verdict: Verdict
    description: str
    action: str
    severity: str | None = None  # None: the check's own severity
    unmeasured: Unmeasured | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": str(self.verdict),
            "description": self.description,
            "action": self.action,
        }
        if self.severity is not None:
            out["severity"] = self.severity
        if self.unmeasured is not None:
            out["couldNotMeasure"] = self.unmeasured.to_json()
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
        missing: str | None = None,
    ) -> Verdict:
        """Record a metric and judge it; a crossed threshold becomes a finding.

        ``severity`` (low|medium|high|critical) is that finding's, as for add_finding. A value
        of None was not measured: it never passes silently, a note says so with ``missing``,
        the reason (a check that could not measure at all raises a MeasurementError instead).
        """
        if threshold is None:
            return Verdict.PASS
        name = threshold.metric
        self.metrics[key or name] = value
        self.thresholds[key or name] = threshold.to_json()
        if value is None:
            what = f"{subject}: " if subject else ""
            self.add_finding(
                Verdict.PASS,
                f"{what}{threshold.about.label or name} not measured: {missing or 'no value'}",
            )
            return Verdict.PASS
        return self._judged(threshold, value, subject=subject, action=action, severity=severity)

    def measure_each(
        self,
        threshold: Threshold | None,
        subjects: Iterable[tuple[str, float | None]],
        *,
        action: str | Callable[[str], str] | None = None,
        key: str | None = None,
        severity: str | None = None,
        shown: int = SHOWN_PER_THRESHOLD,
    ) -> Verdict:
        """Judge many subjects (tables, accounts, files) against one threshold.

        The worst value is the check's metric; each subject past a level is a finding of its
        own, the first ``shown`` of them worst first, then one "+N more". ``action`` may be a
        function of the subject (``VACUUM ... <table>``). A subject whose value is None was not
        measured: it never passes silently, it is named in a note.
        """
        if threshold is None:
            return Verdict.PASS
        name = key or threshold.metric
        every = list(subjects)
        measured = [(s, v) for s, v in every if v is not None]
        unmeasured = [s for s, v in every if v is None]
        worst = _worst(threshold, [v for _, v in measured])
        self.metrics[name] = worst
        self.thresholds[name] = threshold.to_json()
        crossed = [(s, v) for s, v in measured if threshold.judge(v) is not Verdict.PASS]
        crossed.sort(key=lambda sv: sv[1], reverse=threshold.about.higher_is_worse)
        verdict = Verdict.PASS
        for subject, value in crossed[:shown]:
            todo = action(subject) if callable(action) else action
            verdict = verdict.worst(
                self._judged(threshold, value, subject=subject, action=todo, severity=severity)
            )
        if len(crossed) > shown:
            rest = crossed[shown:]
            level = max((threshold.judge(v) for _, v in rest), key=lambda v: v.rank)
            self.add_finding(
                level,
                f"+{len(rest)} more past {threshold.describe()}: "
                + ", ".join(s for s, _ in rest[:10])
                + (" ..." if len(rest) > 10 else ""),
                action(rest[0][0]) if callable(action) else action,
                severity=severity,
            )
            verdict = verdict.worst(level)
        if unmeasured:
            self.add_finding(
                Verdict.PASS,
                f"{threshold.about.label or threshold.metric} not measured for "
                + ", ".join(unmeasured[:10])
                + (f" (+{len(unmeasured) - 10} more)" if len(unmeasured) > 10 else ""),
            )
        return verdict

    def _judged(
        self,
        threshold: Threshold,
        value: float,
        *,
        subject: str,
        action: str | None,
        severity: str | None,
    ) -> Verdict:
        """One value against a threshold: a finding when it crosses a level."""
        verdict = threshold.judge(value)
        if verdict is not Verdict.PASS:
            about = threshold.about
            what = f"{subject}: " if subject else ""
            self.add_finding(
                verdict,
                f"{what}{about.label or threshold.metric} "
                f"{format_value(threshold.metric, value, about.unit)} ({threshold.describe()})",
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
        # names from probed systems (files, roles, URLs) may hold escape codes or newlines
        description = printable(description, TEXT_LIMIT)
        if verdict is Verdict.PASS:
            self.notes.append(description)
            return
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        shown_action = printable(action or self.default_action, TEXT_LIMIT)
        self.findings.append(Finding(verdict, description, shown_action, severity))
        self.verdict = self.verdict.worst(verdict)

    def could_not_measure(self, reason: str, action: str | None = None) -> None:
        """An unreachable target or a failed measurement never passes."""
        self.add_finding(Verdict.VIOLATION, reason, action)

    def _label(self, key: str) -> str:
        """A metric's words: METRICS's label, a site metric's own, else its key."""
        if key in METRICS:
            return metric(key).label or key
        return str(self.thresholds.get(key, {}).get("label", key))

    def unreached(self, error: MeasurementError) -> None:
        """A probe error that escaped the check: a could-not-measure violation whose action
        is about reaching the target (the runbook action assumes the target answered)."""
        who = f"{error.target}: " if error.target else ""
        detail = f" ({error.detail})" if error.detail and error.detail != str(error.cause) else ""
        finding = Finding(
            Verdict.VIOLATION,
            printable(f"{who}could not measure: {error.reason}{detail}", TEXT_LIMIT),
            printable(error.action, TEXT_LIMIT),
            unmeasured=error.unmeasured(),
        )
        self.findings.append(finding)
        self.verdict = Verdict.VIOLATION

    def message(self) -> str:
        """What an on-call person reads: each finding and its action, or what passed."""
        if not self.findings:
            shown = [
                f"{self._label(k)} {format_value(k, v, self.thresholds.get(k, {}).get('unit'))}"
                for k, v in self.metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            return "; ".join(shown + self.notes) or "ok"
        return "\n".join(
            f"{f.verdict.upper()}: {f.description} -> {f.action}" for f in self.findings
        )
