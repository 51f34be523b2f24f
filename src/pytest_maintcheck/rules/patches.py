"""Security patches: vulnerable OS packages, a pending reboot, the PostgreSQL minor release."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_maintcheck.probes.dependencies import Vulnerability
from pytest_maintcheck.probes.os_packages import PendingReboot, server_release
from pytest_maintcheck.verdict import Assessment, Verdict

# an advisory's own severity word (GitHub, Ubuntu's priority) as the finding's severity
SEVERITY_WORDS = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "LOW": "low",
    "NEGLIGIBLE": "low",
}


def advisory_severity(text: str | None) -> str | None:
    """``HIGH``, ``Ubuntu medium`` ...: the word, mapped; a bare CVSS vector gives None."""
    words = (text or "").upper().split()
    return SEVERITY_WORDS.get(words[-1]) if words else None


def judge_packages(
    ecosystem: str,
    installed: int,
    vulnerable: list[Vulnerability],
    reboot: PendingReboot | None,
    assessment: Assessment,
) -> None:
    assessment.metrics.update(packages=installed, vulnerable=len({v.package for v in vulnerable}))
    assessment.details.update(
        ecosystem=ecosystem, vulnerabilities=[v.to_json() for v in vulnerable]
    )
    for v in sorted(vulnerable, key=lambda v: (v.package, v.advisory)):
        severity = advisory_severity(v.severity)
        also = f" ({', '.join(v.aliases)})" if v.aliases else ""
        assessment.add_finding(
            Verdict.DEGRADED if severity == "low" else Verdict.VIOLATION,
            f"{ecosystem}: source package {v.package} {v.version} is affected by {v.advisory}"
            f"{also}, severity {v.severity or 'not given'}: {v.summary or 'no summary'}",
            f"Upgrade {v.package} to {v.fixed} or later (apt-get update && apt-get upgrade)."
            if v.fixed
            else f"No fixed version is published: mitigate {v.advisory} or remove {v.package}.",
            severity=severity,
        )
    if reboot is not None:
        assessment.details["rebootRequiredBy"] = list(reboot.packages)
        by = f" (asked for by {', '.join(reboot.packages[:8])})" if reboot.packages else ""
        assessment.add_finding(
            Verdict.DEGRADED,
            f"a reboot is pending{by}: installed updates (a new kernel or libraries) are not "
            "running yet",
            "Reboot the host in the next maintenance window.",
            severity="medium",
        )


def judge_server_version(
    database: str,
    version_num: int,
    version_text: str,
    minimum_versions: Mapping[str, str],
    assessment: Assessment,
) -> None:
    """The server's minor release against the lowest one configured for its major."""
    major, minor = server_release(version_num)
    assessment.details.update(database=database, serverVersion=version_text)
    assessment.metrics.update(major=major, minor=minor)
    wanted = minimum_versions.get(str(major))
    if wanted is None:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{database}: PostgreSQL {major}.{minor} has no minimum in "
            f"securityPatches.minimumVersions (configured: {', '.join(minimum_versions)})",
            f'Add "{major}": "{major}.N" with the newest minor release you require.',
            severity="low",
        )
        return
    wanted_minor = int(wanted.split(".")[1]) if "." in wanted else 0
    assessment.details["minimumVersion"] = wanted
    if minor < wanted_minor:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{database}: PostgreSQL {major}.{minor} ({version_text}) is older than the minimum "
            f"{wanted}; minor releases carry the security fixes",
            f"Install PostgreSQL {wanted} or newer and restart the server in a window.",
        )
