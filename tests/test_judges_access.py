"""Access review, dependency and policy rules (pytest_maintcheck.judges.access, .dependencies,
.policies) on constructed measurements at an injected date: no database, no files.
tests/test_access_review.py and tests/test_dependencies_policies.py prove the wiring."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pytest_maintcheck.config import AccessReview, AccessSource, Dependency, Policy
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.judges.access import judge_access_review
from pytest_maintcheck.judges.dependencies import judge_dependencies
from pytest_maintcheck.judges.policies import judge_policy
from pytest_maintcheck.measuring import AccessReading, DependencyAudit
from pytest_maintcheck.probes.access import Account, Roster, SourceResult
from pytest_maintcheck.probes.dependencies import Advisories, Lockfile, Pin, Vulnerability
from pytest_maintcheck.probes.policies import PolicyStatus
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = 86400.0
APP = AccessSource("app", file=Path("/exports/app.csv"))
DB = AccessSource("db-roles", postgres="primary")


def _review() -> AccessReview:
    return AccessReview(
        sources=(APP, DB),
        roster=Path("/hr/staff.csv"),
        inactive=Threshold.parse("inactive", {"warn": "60d", "fail": "90d"}),
        privileged_roles=("admin",),
    )


def test_one_unread_source_is_could_not_measure_and_the_others_are_still_reviewed() -> None:
    accounts = [
        Account("app", "alice", True, last_login=NOW - dt.timedelta(days=1), mfa=True),
        Account("app", "carol", True, last_login=NOW - dt.timedelta(days=100)),
        Account("app", "dave", False),  # disabled: nothing wrong
    ]
    refused = MeasurementError("refused", cause=Cause.REFUSED, where="db:5432")
    reading = AccessReading(
        Roster({"alice": "active", "carol": "terminated"}),
        ((APP, SourceResult("app", accounts)), (DB, refused)),
    )
    assessment = Assessment()
    judge_access_review(_review(), reading, NOW, assessment)
    described = [f.description for f in assessment.findings]
    assert "primary: could not measure: connection refused at db:5432" in described[0]
    assert "app: carol is terminated on the roster but enabled" in described
    assert any(d.startswith("app: carol inactive for") for d in described)
    critical = next(f for f in assessment.findings if "terminated" in f.description)
    assert critical.severity == "critical"
    assert assessment.metrics == {"accounts": 3, "enabled": 2}


def test_no_roster_never_passes() -> None:
    assessment = Assessment()
    judge_access_review(AccessReview(sources=(APP,)), AccessReading(None), NOW, assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert "no roster" in assessment.findings[0].description


def _audit(pins: list[Pin], items: int, *found: Vulnerability) -> DependencyAudit:
    return DependencyAudit(
        Lockfile("requirements", pins), Advisories([{"id": f"A-{i}"} for i in range(items)]), found
    )


def test_a_vulnerable_pin_takes_the_advisorys_severity() -> None:
    low = Vulnerability("idna", "3.6", "GHSA-1", (), "LOW", "3.7", "a small flaw")
    assessment = Assessment()
    dep = Dependency("api", Path("requirements.txt"), Path("osv"))
    judge_dependencies(dep, _audit([Pin("idna", "3.6")], 5, low), assessment)
    [finding] = assessment.findings
    assert (finding.verdict, finding.severity) == (Verdict.DEGRADED, "low")
    assert finding.action == "Upgrade idna to 3.7 or later."


def test_no_advisories_is_could_not_measure_not_nothing_vulnerable() -> None:
    assessment = Assessment()
    dep = Dependency("api", Path("requirements.txt"), Path("osv"))
    judge_dependencies(dep, _audit([Pin("idna", "3.7")], 0), assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert "no OSV advisories found in osv" in assessment.findings[0].description


def test_a_policy_is_judged_against_the_injected_day() -> None:
    policy = Policy("security policy", Path("policy.md"), review_every=365 * DAY)
    reviewed = dt.date(2029, 7, 1)
    status = PolicyStatus(True, reviewed, "front matter")
    due_soon = Assessment()
    judge_policy(policy, status, dt.date(2030, 6, 15), due_soon)
    assert due_soon.verdict is Verdict.DEGRADED
    overdue = Assessment()
    judge_policy(policy, status, dt.date(2030, 7, 2), overdue)
    assert overdue.verdict is Verdict.VIOLATION
    assert "due 2030-07-01" in overdue.findings[0].description
    ahead = Assessment()
    judge_policy(policy, status, dt.date(2029, 6, 1), ahead)
    assert "is in the future" in ahead.findings[0].description
