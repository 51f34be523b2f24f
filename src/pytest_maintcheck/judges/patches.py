"""Security patches, on what measuring.patch_level_of read: vulnerable OS packages, a pending
reboot; and a reviewed database's PostgreSQL minor release (rules.patches holds the rules)."""

from __future__ import annotations

from pytest_maintcheck.config_operations import ConfigReview, SecurityPatches
from pytest_maintcheck.measuring import PatchLevel
from pytest_maintcheck.probes.pg_config_review import ReviewSnapshot
from pytest_maintcheck.rules.patches import judge_packages, judge_server_version
from pytest_maintcheck.verdict import Assessment, Verdict


def judge_patch_level(policy: SecurityPatches, level: PatchLevel, assessment: Assessment) -> None:
    """Each vulnerable package, a pending reboot; no advisories configured or found never
    passes as "nothing vulnerable"."""
    if level.ecosystem is None:
        judge_packages("this host", 0, [], level.reboot, assessment)
        assessment.add_finding(
            Verdict.DEGRADED,
            "installed packages not checked: securityPatches.advisories is not set",
            "Point securityPatches.advisories at a folder of Debian or Ubuntu OSV advisories.",
        )
        return
    if not level.advisories:
        assessment.could_not_measure(f"no OSV advisories found in {level.folder}")
    for problem in level.problems:
        assessment.add_finding(Verdict.DEGRADED, problem, "Refresh the advisories.")
    judge_packages(
        level.ecosystem, level.installed, list(level.vulnerable), level.reboot, assessment
    )


def judge_postgres_release(
    target: ConfigReview, snap: ReviewSnapshot, policy: SecurityPatches, assessment: Assessment
) -> None:
    """The server's minor release against securityPatches.minimumVersions for its major."""
    assert policy.minimum_versions is not None  # patched_database targets exist only with it
    judge_server_version(
        target.database,
        snap.server_version_num,
        snap.get("server_version") or "",
        policy.minimum_versions,
        assessment,
    )
