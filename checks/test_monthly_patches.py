"""Monthly security patches: installed Debian/Ubuntu packages against OSV advisories on disk,
a pending reboot, and each reviewed database's PostgreSQL minor release.
The rules are in pytest_maintcheck.rules.patches."""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import Config
from pytest_maintcheck.config_operations import ConfigReview, SecurityPatches
from pytest_maintcheck.probes import os_packages
from pytest_maintcheck.probes.dependencies import DependencyProbeError, load_advisories
from pytest_maintcheck.probes.pg_config_review import review_snapshot
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.rules.patches import judge_packages, judge_server_version
from pytest_maintcheck.verdict import Assessment, Verdict

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("security_patches")
def test_security_patches(patch_policy: SecurityPatches, assessment: Assessment) -> None:
    policy = patch_policy
    reboot = os_packages.pending_reboot(policy.reboot_flag)
    if policy.advisories is None:
        judge_packages("this host", 0, [], reboot, assessment)
        assessment.add_finding(
            Verdict.DEGRADED,
            "installed packages not checked: securityPatches.advisories is not set",
            "Point securityPatches.advisories at a folder of Debian or Ubuntu OSV advisories.",
        )
        return
    try:
        ecosystem = policy.ecosystem or os_packages.os_ecosystem()
        installed = os_packages.installed_packages()
        found = load_advisories(policy.advisories)
    except (os_packages.PackageProbeError, DependencyProbeError) as exc:
        assessment.could_not_measure(str(exc))
        return
    if not found.items:
        assessment.could_not_measure(f"no OSV advisories found in {policy.advisories}")
    for problem in found.problems:
        assessment.add_finding(Verdict.DEGRADED, problem, "Refresh the advisories.")
    vulnerable = os_packages.vulnerable_packages(installed, found.items, ecosystem)
    judge_packages(ecosystem, len(installed), vulnerable, reboot, assessment)


@pytest.mark.maintcheck("postgres_version")
def test_postgres_version(
    patched_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    db = maintcheck_config.database(patched_database.database)
    policy = maintcheck_config.security_patches
    assert policy is not None
    assert policy.minimum_versions is not None  # the target list holds only these
    try:
        snap = review_snapshot(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    except ProbeError as exc:
        assessment.could_not_measure(f"{patched_database.database}: {exc}")
        return
    judge_server_version(
        patched_database.database,
        snap.server_version_num,
        snap.get("server_version") or "",
        policy.minimum_versions,
        assessment,
    )
