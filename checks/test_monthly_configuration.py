"""Monthly PostgreSQL configuration review: TLS, password hashing, pg_hba rules, audit
logging, pgaudit, data checksums, superusers, CREATE on the public schema. Read-only, as a
least-privileged role: what that role may not read is a finding naming the grant needed.
The rules are in pytest_maintcheck.rules.configuration."""

from __future__ import annotations

import pytest

from pytest_maintcheck.config import Config
from pytest_maintcheck.config_operations import ConfigReview
from pytest_maintcheck.probes.pg_config_review import review_snapshot
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.rules.configuration import judge_configuration
from pytest_maintcheck.verdict import Assessment

pytestmark = pytest.mark.monthly


@pytest.mark.maintcheck("config_review")
def test_config_review(
    reviewed_database: ConfigReview, maintcheck_config: Config, assessment: Assessment
) -> None:
    db = maintcheck_config.database(reviewed_database.database)
    try:
        snap = review_snapshot(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    except ProbeError as exc:
        assessment.could_not_measure(f"{reviewed_database.database}: {exc}")
        return
    judge_configuration(reviewed_database, snap, assessment)
