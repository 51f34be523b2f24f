"""Dependency advisories: each pinned package an OSV advisory affects, with the advisory's
own severity; unpinned requirements and unreadable advisories said plainly."""

from __future__ import annotations

from pytest_maintcheck.config import Dependency
from pytest_maintcheck.measuring import DependencyAudit
from pytest_maintcheck.verdict import Assessment, Verdict

# an advisory's own severity (GitHub's database_specific.severity) as the finding's; a CVSS
# vector alone is not scored here, so such a finding keeps the check's severity
ADVISORY_SEVERITY = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "LOW": "low",
}


def judge_dependencies(d: Dependency, audit: DependencyAudit, assessment: Assessment) -> None:
    """No pins or no advisories is "could not measure", never "nothing vulnerable"."""
    lock, found, vulnerable = audit.lock, audit.advisories, audit.vulnerable
    assessment.metrics.update(
        packages=len(lock.pins), vulnerable=len({v.package for v in vulnerable})
    )
    assessment.details.update(
        lockfile=str(d.lockfile),
        format=lock.format,
        advisories=len(found.items),
        vulnerabilities=[v.to_json() for v in vulnerable],
        unpinned=lock.unpinned,
    )
    if not lock.pins:
        assessment.could_not_measure(f"{d.name}: no pinned packages found in {d.lockfile}")
    if not found.items:
        assessment.could_not_measure(f"{d.name}: no OSV advisories found in {d.advisories}")
    for v in vulnerable:
        severity = ADVISORY_SEVERITY.get((v.severity or "").upper())  # None: the check's own
        low = severity == "low"
        also = f" ({', '.join(v.aliases)})" if v.aliases else ""
        assessment.add_finding(
            Verdict.DEGRADED if low else Verdict.VIOLATION,
            f"{d.name}: {v.package} {v.version} is affected by {v.advisory}{also}, "
            f"severity {v.severity or 'not given'}: {v.summary or 'no summary'}",
            f"Upgrade {v.package} to {v.fixed} or later."
            if v.fixed
            else f"No fixed version is published: remove {v.package} or mitigate {v.advisory}.",
            severity=severity,
        )
    if lock.unpinned:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{d.name}: {len(lock.unpinned)} requirement(s) not pinned to one version cannot be "
            f"checked: {', '.join(lock.unpinned[:5])}",
            "Pin every requirement (pip-compile or uv lock) so it can be audited.",
        )
    for problem in found.problems:
        assessment.add_finding(Verdict.DEGRADED, f"{d.name}: {problem}", "Refresh the advisories.")
