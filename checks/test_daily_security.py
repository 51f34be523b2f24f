"""Daily security monitoring: failed logins, unusual access, and sessions past automatic logoff.

Findings name usernames and opaque labels ("line N" of the log, a pid, a session digest), never
a source address or a session token: the operator opens the log at that line to see more.
A failed login names its username only when it is a known account (on the roster or in an
access-review source); anything else is "unknown account #<hash>".
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from pytest_maintcheck.config import Config, SecurityMonitoring, SessionPolicy
from pytest_maintcheck.probes import access
from pytest_maintcheck.probes.authlog import (
    AccountNames,
    AuthLogError,
    OffHoursWindow,
    ScanStats,
    UnusualLogin,
    scan_access_patterns,
    scan_failed_logins,
    username_key,
)
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.probes.sessions import app_sessions, pg_sessions
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_duration
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict, format_value

pytestmark = pytest.mark.daily

SHOWN = 10  # findings per kind; the rest are summed up in one line


def _judge_each(
    assessment: Assessment, threshold: Threshold | None, counts: dict[str, int], noun: str
) -> None:
    """The worst value is the metric; every subject over a level is its own finding."""
    if threshold is None:
        return
    assessment.metrics[threshold.metric] = max(counts.values(), default=0)
    assessment.thresholds[threshold.metric] = threshold.to_json()
    crossed = sorted(
        ((n, s) for s, n in counts.items() if threshold.judge(n) is not Verdict.PASS),
        reverse=True,
    )
    for n, subject in crossed[:SHOWN]:
        assessment.add_finding(
            threshold.judge(n),
            f"{subject}: {n} failed logins in the window ({threshold.describe()})",
        )
    if len(crossed) > SHOWN:
        rest = crossed[SHOWN:]
        assessment.add_finding(
            max((threshold.judge(n) for n, _ in rest), key=lambda v: v.rank),
            f"{len(rest)} more {noun}s over the limit, {sum(n for n, _ in rest)} failures",
        )


def _burst_size(per_account: Threshold | None) -> int:
    """A "burst" is as many consecutive failures as the per-account warning level."""
    levels = (
        [x for x in (per_account.warn, per_account.fail) if x is not None] if per_account else []
    )
    return max(1, int(min(levels, default=5)))


def _no_records(assessment: Assessment, log: object, stats: ScanStats) -> bool:
    """Nothing to judge: an empty log, or none of its lines a login record, never passes."""
    if stats.lines > stats.unparseable:
        return False
    assessment.could_not_measure(
        f"{log}: no login record in {stats.lines} line(s); nothing to judge",
        "Check that the application still writes its authentication log in the expected "
        "format (timestamp, username, sourceIp, outcome), and the log rotation.",
    )
    return True


def _report_log_health(assessment: Assessment, log: object, stats: ScanStats) -> None:
    assessment.metrics["unparseableLines"] = stats.unparseable
    if stats.unparseable:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{log}: {stats.unparseable} of {stats.lines} lines are not login records "
            f"(first at line {stats.first_unparseable}); they were skipped",
            "Fix the writer of the authentication log; a gap in it hides attacks.",
        )


def _account_names(config: Config) -> tuple[AccountNames, list[str]]:
    """Known accounts: the roster, every access-review source and the declared service
    accounts; what could not be read is named, and its usernames show as unknown."""
    known: set[str] = set()
    problems: list[str] = []
    review = config.access_review
    if review is not None:
        known.update(access.normalize(s.name) for s in review.service_accounts)
        try:
            if review.roster is not None:
                known.update(access.read_roster(review.roster).status)
        except ProbeError as exc:
            problems.append(f"roster: {exc}")
        for source in review.sources:
            try:
                if source.postgres is not None:
                    db = config.database(source.postgres)
                    found = access.postgres_accounts(
                        source.name,
                        db.dsn,
                        connect_timeout=db.connect_timeout,
                        statement_timeout=db.statement_timeout,
                    )
                else:
                    assert source.file is not None
                    found = access.file_accounts(source.name, source.file)
            except ProbeError as exc:
                problems.append(f"source {source.name}: {exc}")
                continue
            known.update(a.key for a in found.accounts)
    return AccountNames(frozenset(known), username_key(os.environ, config.system)), problems


@pytest.mark.maintcheck("failed_logins")
def test_failed_logins(
    auth_monitoring: SecurityMonitoring, maintcheck_config: Config, assessment: Assessment
) -> None:
    limits = auth_monitoring.failed_logins
    per_account = limits.get("perAccount")
    assert auth_monitoring.auth_log is not None  # the auth_monitoring targets all have one
    assessment.details.update(log=str(auth_monitoring.auth_log), window=auth_monitoring.window)
    try:
        scan = scan_failed_logins(
            auth_monitoring.auth_log,
            now=datetime.now(UTC),
            window=auth_monitoring.window,
            burst=_burst_size(per_account),
        )
    except AuthLogError as exc:
        assessment.could_not_measure(str(exc), "Restore the authentication log or fix its path.")
        return
    stats = scan.stats
    if _no_records(assessment, auth_monitoring.auth_log, stats):
        return
    assessment.metrics.update(loginAttempts=scan.attempts, failedLogins=scan.failures)
    assessment.details.update(
        lines=stats.lines,
        outOfOrderLines=stats.out_of_order,
        futureLines=stats.future,
        untracked=stats.untracked,
    )
    names, unread = _account_names(maintcheck_config) if scan.failures else (None, [])
    shown = names.shown if names is not None else str
    assessment.details.update(knownAccounts=len(names.known) if names else 0)
    if unread:
        assessment.details["unknownBecauseUnread"] = unread
    # the worst first: the terminal summary shows a check's first finding
    for hit in scan.bursts[:SHOWN]:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{shown(hit.username)}: successful login at "
            f"{hit.succeeded_at:%Y-%m-%d %H:%M:%SZ} after {hit.failures} consecutive failures "
            f"from {hit.sources} source(s) over {format_duration(hit.span_seconds)}: "
            "a likely guessed password",
            "Lock the account, reset its password and review what it did since that login.",
            severity="high",  # issue 5
        )
    if len(scan.bursts) > SHOWN:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{len(scan.bursts) - SHOWN} more successful logins after a burst of failures",
            "Lock the accounts, reset their passwords; see results.json for the list.",
            severity="high",
        )
    assessment.metrics["guessedPasswords"] = len(scan.bursts)
    assessment.details["guessedPasswordAccounts"] = sorted(
        {shown(hit.username) for hit in scan.bursts}
    )[:1000]
    accounts: dict[str, int] = {}
    for user, n in scan.per_account.items():
        accounts[shown(user)] = accounts.get(shown(user), 0) + n
    _judge_each(assessment, per_account, accounts, "account")
    # sources are named by the log line where each first failed: the address stays in the log
    sources = {f"source first seen at {label}": n for label, n in scan.per_source.items()}
    _judge_each(assessment, limits.get("perSource"), sources, "source")
    assessment.measure(limits.get("ratio"), scan.ratio, subject="all accounts")
    _report_log_health(assessment, auth_monitoring.auth_log, stats)


def _unusual(
    assessment: Assessment, found: list[UnusualLogin], what: str, action: str, severity: str
) -> None:
    for hit in found[:SHOWN]:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"account {printable(hit.username, 64)!r}: {hit.count} successful login(s) {what} "
            f"(first at log line {hit.first_line}, latest {hit.latest:%Y-%m-%d %H:%M:%SZ})",
            action,
            severity=severity,
        )
    if len(found) > SHOWN:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{len(found) - SHOWN} more accounts with logins {what}",
            action,
            severity=severity,
        )


@pytest.mark.maintcheck("access_patterns")
def test_access_patterns(auth_monitoring: SecurityMonitoring, assessment: Assessment) -> None:
    assert auth_monitoring.auth_log is not None
    off = auth_monitoring.off_hours
    window = OffHoursWindow.parse(off.start, off.end, off.timezone) if off else None
    try:
        scan = scan_access_patterns(
            auth_monitoring.auth_log,
            now=datetime.now(UTC),
            window=auth_monitoring.window,
            off_hours=window,
        )
    except AuthLogError as exc:
        assessment.could_not_measure(str(exc), "Restore the authentication log or fix its path.")
        return
    if _no_records(assessment, auth_monitoring.auth_log, scan.stats):
        return
    assessment.metrics.update(
        successfulLogins=scan.logins,
        newSourceLogins=sum(h.count for h in scan.new_sources),
        offHoursLogins=sum(h.count for h in scan.off_hours),
        unparseableLines=scan.stats.unparseable,
    )
    assessment.details.update(
        log=str(auth_monitoring.auth_log), accountsWithoutHistory=scan.accounts_without_history
    )
    _unusual(
        assessment,
        scan.new_sources,
        "from a source never used by this account before the window",
        "Confirm with the account owner that the login was theirs; if not, lock the account.",
        "medium",  # issue 5: access patterns are low/medium findings; a new source is the worse
    )
    if off is not None:
        _unusual(
            assessment,
            scan.off_hours,
            f"during off hours ({off.start}-{off.end} {off.timezone})",
            "Confirm the off-hours access was expected (on-call, night shift) with the owner.",
            "low",
        )


@pytest.mark.maintcheck("sessions")
def test_sessions(
    session_policy: SessionPolicy, maintcheck_config: Config, assessment: Assessment
) -> None:
    db = maintcheck_config.databases[session_policy.database]
    assessment.details.update(database=session_policy.database)
    # a ProbeError escapes: the plugin reports "could not measure" for this database
    if session_policy.query:
        scan = app_sessions(
            db.dsn,
            session_policy.query,
            now=datetime.now(UTC),
            connect_timeout=db.connect_timeout,
            statement_timeout=db.statement_timeout,
        )
    else:
        scan = pg_sessions(
            db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
        )
    assessment.details.update(source=scan.source)
    assessment.metrics["openSessions"] = len(scan.sessions)
    if scan.hidden:
        assessment.could_not_measure(
            f"{session_policy.database}: {scan.hidden} session(s) of other roles hidden from "
            "pg_stat_activity: missing privilege",
            "Grant pg_monitor (or pg_read_all_stats) to the monitoring role.",
        )
    for metric, limit, attr in (
        ("maxIdle", session_policy.max_idle, "idle"),
        ("maxLifetime", session_policy.max_lifetime, "lifetime"),
    ):
        threshold = Threshold(metric, fail=limit)
        values = [(getattr(s, attr), s) for s in scan.sessions if getattr(s, attr) is not None]
        worst = max((v for v, _ in values), default=None)
        assessment.metrics[metric] = None if worst is None else round(worst, 1)
        assessment.thresholds[metric] = threshold.to_json()
        over = sorted(((v, s) for v, s in values if v > limit), key=lambda p: -p[0])
        for value, s in over[:SHOWN]:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{session_policy.database}: {s.label} of {s.username!r} "
                f"{'idle for' if attr == 'idle' else 'open for'} "
                f"{format_value(metric, value)} ({threshold.describe()})",
            )
        if len(over) > SHOWN:
            assessment.add_finding(
                Verdict.VIOLATION,
                f"{session_policy.database}: {len(over) - SHOWN} more sessions past {metric}",
            )
