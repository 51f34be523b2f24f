"""Monthly security patches: installed Debian/Ubuntu packages against OSV advisories on disk,
a pending reboot, and each reviewed database's PostgreSQL minor release.
The rules are in pytest_maintcheck.rules.patches and .judges.patches."""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import (
    Assessment,
    Config,
    ConfigReview,
    SecurityPatches,
    configuration_of,
    judge_patch_level,
    judge_postgres_release,
    patch_level_of,
)

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("security_patches")
def test_security_patches(patch_policy: SecurityPatches, assessment: Assessment) -> None:
    judge_patch_level(patch_policy, patch_level_of(patch_policy), assessment)


@pytest.mark.maintcheck("postgres_version")
def test_postgres_version(
    patched_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    policy = maintcheck_config.security_patches
    assert policy is not None  # the patched_database targets exist only with it
    snapshot = configuration_of(maintcheck_config.database(patched_database.database))
    judge_postgres_release(patched_database, snapshot, policy, assessment)
