"""Daily security rules (pytest_maintcheck.judges.security) in-process, on constructed scans:
no log file, no database. tests/test_security_monitoring.py proves the wiring end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pytest_maintcheck.config import SecurityMonitoring, SessionPolicy, Thresholds
from pytest_maintcheck.judges.security import (
    FailedLoginReading,
    judge_access_patterns,
    judge_failed_logins,
    judge_sessions,
)
from pytest_maintcheck.measuring import burst_size
from pytest_maintcheck.probes.authlog import (
    AccessPatterns,
    AccountNames,
    Burst,
    FailedLogins,
    ScanStats,
    UnusualLogin,
)
from pytest_maintcheck.probes.sessions import Session, SessionScan
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

LOG = Path("/var/log/app/auth.jsonl")
AT = datetime(2024, 5, 2, 3, 4, 5, tzinfo=UTC)


def _monitoring(**limits: object) -> SecurityMonitoring:
    parsed = tuple(Threshold.parse(name, raw) for name, raw in limits.items())
    return SecurityMonitoring(auth_log=LOG, failed_logins=Thresholds(parsed))


def _scan(**per_account: int) -> FailedLogins:
    failures = sum(per_account.values())
    return FailedLogins(
        stats=ScanStats(lines=failures + 10),
        attempts=failures + 10,
        failures=failures,
        per_account=dict(per_account),
    )


def test_each_account_past_a_level_is_a_finding_worst_first_and_the_rest_one_line() -> None:
    counts = {f"user{i:02d}": 20 + i for i in range(15)}
    names = AccountNames(frozenset(counts), b"key")
    assessment = Assessment()
    judge_failed_logins(
        _monitoring(perAccount={"warn": 5, "fail": 10}),
        FailedLoginReading(LOG, _scan(**counts), names),
        assessment,
    )
    described = [f.description for f in assessment.findings]
    assert assessment.metrics["perAccount"] == 34
    assert described[0].startswith("account 'user14': failed logins per account 34")
    assert len(described) == 11  # ten shown, then one line for the other five
    assert described[10].startswith("+5 more past warn > 5, fail > 10")
    assert assessment.verdict is Verdict.VIOLATION


def test_an_unknown_username_is_shown_as_a_digest_only() -> None:
    names = AccountNames(frozenset({"alice"}), b"key")
    assessment = Assessment()
    judge_failed_logins(
        _monitoring(perAccount=3),
        FailedLoginReading(LOG, _scan(alice=6, **{"Hunter2!": 6}), names),
        assessment,
    )
    text = assessment.message()
    assert "account 'alice': failed logins per account 6" in text
    assert "Hunter2!" not in text
    assert f"unknown account #{names.digest('Hunter2!')}" in text


def test_a_guessed_password_is_a_high_violation() -> None:
    scan = _scan(alice=12)
    scan.bursts.append(Burst("alice", 12, 3, 90.0, AT))
    assessment = Assessment()
    judge_failed_logins(
        _monitoring(perAccount=50),
        FailedLoginReading(LOG, scan, AccountNames(frozenset({"alice"}), b"k")),
        assessment,
    )
    [finding] = assessment.findings
    assert finding.severity == "high"
    assert "after 12 consecutive failures from 3 source(s)" in finding.description
    assert assessment.metrics["guessedPasswords"] == 1


def test_a_quiet_log_measures_zero_and_no_attempt_says_the_ratio_was_not_measured() -> None:
    quiet = FailedLogins(stats=ScanStats(lines=3))  # three records, none in the window
    assessment = Assessment()
    judge_failed_logins(
        _monitoring(perAccount=5, ratio=0.5), FailedLoginReading(LOG, quiet), assessment
    )
    assert assessment.verdict is Verdict.PASS
    assert assessment.metrics["perAccount"] == 0
    assert assessment.metrics["ratio"] is None
    assert "failed login ratio not measured: no login attempt in the window" in assessment.message()


def test_a_log_without_login_records_could_not_measure() -> None:
    garbage = FailedLogins(stats=ScanStats(lines=4, unparseable=4, first_unparseable=1))
    assessment = Assessment()
    judge_failed_logins(_monitoring(perAccount=5), FailedLoginReading(LOG, garbage), assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert "no login record in 4 line(s)" in assessment.findings[0].description


def test_burst_size_follows_the_per_account_warning_level() -> None:
    assert burst_size(Threshold.parse("perAccount", {"warn": 3, "fail": 8})) == 3
    assert burst_size(None) == 5


def test_new_sources_and_off_hours_are_low_or_medium_findings() -> None:
    scan = AccessPatterns(
        stats=ScanStats(lines=10),
        logins=10,
        new_sources=[UnusualLogin("bob", 2, 7, AT)],
        off_hours=[UnusualLogin("carol", 1, 9, AT)],
    )
    monitoring = SecurityMonitoring(auth_log=LOG, off_hours=None)
    assessment = Assessment()
    judge_access_patterns(monitoring, scan, assessment)
    [finding] = assessment.findings  # off hours not configured: not judged
    assert finding.severity == "medium"
    assert finding.description.startswith("account 'bob': 2 successful login(s) from a source")
    assert assessment.metrics["offHoursLogins"] == 1


def _session(label: str, idle: float | None, lifetime: float | None) -> Session:
    return Session(label, "clerk", lifetime, idle)


def test_sessions_past_idle_and_lifetime_each_a_finding_active_ones_not_judged_idle() -> None:
    scan = SessionScan(
        "pg_stat_activity",
        [
            _session("pid 1", idle=2000.0, lifetime=3000.0),
            _session("pid 2", idle=None, lifetime=50000.0),  # active, open too long
            _session("pid 3", idle=10.0, lifetime=None),  # no login time: not measured
        ],
    )
    assessment = Assessment()
    judge_sessions(SessionPolicy("primary", max_idle=900, max_lifetime=43200), scan, assessment)
    described = [f.description for f in assessment.findings]
    assert described[0].startswith("primary: pid 1 of 'clerk': session idle time")
    assert described[1].startswith("primary: pid 2 of 'clerk': session lifetime")
    assert len(described) == 2
    assert assessment.metrics["maxIdle"] == 2000.0
    assert assessment.notes == ["session lifetime not measured for primary: pid 3 of 'clerk'"]


def test_hidden_sessions_never_pass() -> None:
    assessment = Assessment()
    judge_sessions(SessionPolicy("primary"), SessionScan("pg_stat_activity", [], 2), assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert "missing privilege" in assessment.findings[0].description
