"""Daily security monitoring: failed logins, unusual access, and sessions past automatic logoff.

Findings name usernames and opaque labels ("line N" of the log, a pid, a session digest), never
a source address or a session token: the operator opens the log at that line to see more.
A failed login names its username only when it is a known account (on the roster or in an
access-review source); anything else is "unknown account #<hash>". The rules are in
pytest_maintcheck.judges.security.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pytest_maintcheck.api import (
    Assessment,
    Config,
    SecurityMonitoring,
    SessionPolicy,
    access_patterns_of,
    failed_logins_of,
    judge_access_patterns,
    judge_failed_logins,
    judge_sessions,
    sessions_of,
)

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("failed_logins")
def test_failed_logins(
    auth_monitoring: SecurityMonitoring, maintcheck_config: Config, assessment: Assessment
) -> None:
    reading = failed_logins_of(auth_monitoring, maintcheck_config, datetime.now(UTC))
    judge_failed_logins(auth_monitoring, reading, assessment)


@pytest.mark.maintcheck("access_patterns")
def test_access_patterns(auth_monitoring: SecurityMonitoring, assessment: Assessment) -> None:
    scan = access_patterns_of(auth_monitoring, datetime.now(UTC))
    judge_access_patterns(auth_monitoring, scan, assessment)


@pytest.mark.maintcheck("sessions")
def test_sessions(
    session_policy: SessionPolicy, maintcheck_config: Config, assessment: Assessment
) -> None:
    scan = sessions_of(session_policy, maintcheck_config, datetime.now(UTC))
    judge_sessions(session_policy, scan, assessment)
