"""The deploy gate of a change: a verified way back before the deploy.

Selected only in a run given --maintcheck-change (or --maintcheck-type update), in every
suite, after the run's own restore tests; routine runs never see it.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import Assessment, RollbackEvidence

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("rollback_point")
def test_rollback_point(
    rollback_database: str, rollback_evidence: RollbackEvidence, assessment: Assessment
) -> None:
    rollback_evidence.judge(assessment, rollback_database)
