"""One check's result as the controller records it: a frozen, typed value.

Built on the worker that ran the check, sent to the controller as plain JSON on the pytest
report (``to_json()``), read back there with ``from_json()``; results.json holds the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """A check's outcome: a verdict on what was measured, or why there is none."""

    PASS = "pass"  # noqa: S105  # a verdict, not a password
    DEGRADED = "degraded"
    VIOLATION = "violation"
    ERROR = "error"  # the check could not measure, or failed itself
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Worse outcomes rank higher: of a check's phases the worst one stands."""
        return _RANK[self]


_RANK = {
    Outcome.SKIPPED: 0,
    Outcome.PASS: 1,
    Outcome.DEGRADED: 2,
    Outcome.VIOLATION: 3,
    Outcome.ERROR: 4,
}


@dataclass(frozen=True)
class CheckResult:
    """One check of one target, read by attribute; findings, metrics and details are the
    plain JSON they are on the record (``to_json()`` gives the whole record)."""

    nodeid: str
    name: str
    check: str
    title: str
    suite: str
    target: str | None
    verdict: Outcome
    severity: str
    category: str
    requirements: tuple[str, ...]
    incident_type: str
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    findings: tuple[dict[str, Any], ...]
    details: dict[str, Any]
    message: str
    duration: float
    phase: str
    finished_at: str
    waived: bool = False
    waiver: dict[str, Any] | None = None
    # a site check is in no catalogue the controller has: its incident draft needs these
    action: str | None = None
    runbook: tuple[str, ...] | None = None
    in_maintenance: bool = False
    maintenance_window: dict[str, Any] | None = None
    not_configured: str | None = None  # the absent config section that made it a skip
    reruns: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, the keys results.json has always had; absent optional keys left out."""
        out: dict[str, Any] = {
            "nodeid": self.nodeid,
            "name": self.name,
            "check": self.check,
            "title": self.title,
            "suite": self.suite,
            "target": self.target,
            "verdict": self.verdict.value,
            "severity": self.severity,
            "category": self.category,
            "requirements": list(self.requirements),
            "incidentType": self.incident_type,
        }
        if self.action is not None:
            out["action"] = self.action
        if self.runbook is not None:
            out["runbook"] = list(self.runbook)
        out.update(
            metrics=self.metrics,
            thresholds=self.thresholds,
            findings=list(self.findings),
            details=self.details,
            message=self.message,
            duration=self.duration,
            phase=self.phase,
            finishedAt=self.finished_at,
            waived=self.waived,
            waiver=self.waiver,
        )
        if self.in_maintenance:
            out["inMaintenance"] = True
            out["maintenanceWindow"] = self.maintenance_window
        if self.not_configured is not None:
            out["notConfigured"] = self.not_configured
        if self.reruns is not None:
            out["reruns"] = self.reruns
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        """The result a report carried; KeyError or ValueError when it is not one."""
        runbook = data.get("runbook")
        return cls(
            nodeid=str(data["nodeid"]),
            name=str(data["name"]),
            check=str(data["check"]),
            title=str(data["title"]),
            suite=str(data["suite"]),
            target=None if data.get("target") is None else str(data["target"]),
            verdict=Outcome(data["verdict"]),
            severity=str(data["severity"]),
            category=str(data["category"]),
            requirements=tuple(data.get("requirements") or ()),
            incident_type=str(data.get("incidentType") or ""),
            metrics=dict(data.get("metrics") or {}),
            thresholds=dict(data.get("thresholds") or {}),
            findings=tuple(data.get("findings") or ()),
            details=dict(data.get("details") or {}),
            message=str(data.get("message") or ""),
            duration=float(data.get("duration") or 0.0),
            phase=str(data.get("phase") or "call"),
            finished_at=str(data.get("finishedAt") or ""),
            waived=bool(data.get("waived")),
            waiver=data.get("waiver"),
            action=data.get("action"),
            runbook=None if runbook is None else tuple(runbook),
            in_maintenance=bool(data.get("inMaintenance")),
            maintenance_window=data.get("maintenanceWindow"),
            not_configured=data.get("notConfigured"),
            reruns=data.get("reruns"),
        )

    def but(self, **changes: Any) -> CheckResult:
        """A copy with some fields changed (the result itself never changes)."""
        return replace(self, **changes)

    @property
    def quiet(self) -> bool:
        """Accepted (waived) or planned (in maintenance): shown, but paging nobody."""
        return self.waived or self.in_maintenance
