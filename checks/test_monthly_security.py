"""Monthly security review: certificates, access review, dependency advisories, policy reviews.

The rules are in pytest_maintcheck.judges (.certificates, .access, .dependencies, .policies),
judged at ``now``; a target that cannot be measured is "could not measure", with its cause."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pytest_maintcheck.api import (
    AccessReview,
    Assessment,
    Certificate,
    Config,
    Dependency,
    Policy,
    access_of,
    certificate_of,
    dependencies_of,
    judge_access_review,
    judge_certificate,
    judge_dependencies,
    judge_policy,
    policy_of,
)

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("certificate")
def test_certificate(certificate: Certificate, assessment: Assessment) -> None:
    now = datetime.now(UTC)
    judge_certificate(certificate, certificate_of(certificate, now), assessment, now)


@pytest.mark.maintcheck("access_review")
def test_access_review(
    access_review: AccessReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    reading = access_of(access_review, maintcheck_config)
    judge_access_review(access_review, reading, datetime.now(UTC), assessment)


@pytest.mark.maintcheck("dependencies")
def test_dependencies(dependency: Dependency, assessment: Assessment) -> None:
    judge_dependencies(dependency, dependencies_of(dependency), assessment)


@pytest.mark.maintcheck("policies")
def test_policy(policy: Policy, assessment: Assessment) -> None:
    judge_policy(policy, policy_of(policy), datetime.now(UTC).date(), assessment)
