"""Daily security monitoring: failed logins, unusual access, sessions past automatic logoff.

Findings name usernames and opaque labels ("line N" of the log, a pid, a session digest), never
a source address or a session token: the operator opens the log at that line to see more.
A failed login names its username only when it is a known account (AccountNames.shown).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_maintcheck.config import SecurityMonitoring, SessionPolicy
from pytest_maintcheck.probes.authlog import (
    AccessPatterns,
    AccountNames,
    FailedLogins,
    ScanStats,
    UnusualLogin,
)
from pytest_maintcheck.probes.sessions import Session, SessionScan
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_duration
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

SHOWN = 10  # findings per kind; the rest are summed up in one line


@dataclass(frozen=True)
class FailedLoginReading:
    """One scan of the authentication log, and the names its usernames may be shown by."""

    log: Path
    scan: FailedLogins
    names: AccountNames | None = None  # None: no failure, nobody to name
    unread: tuple[str, ...] = field(default=())  # account sources that could not be read


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


def _log_health(assessment: Assessment, log: object, stats: ScanStats) -> None:
    assessment.metrics["unparseableLines"] = stats.unparseable
    if stats.unparseable:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{log}: {stats.unparseable} of {stats.lines} lines are not login records "
            f"(first at line {stats.first_unparseable}); they were skipped",
            "Fix the writer of the authentication log; a gap in it hides attacks.",
        )


def judge_failed_logins(
    monitoring: SecurityMonitoring, reading: FailedLoginReading, assessment: Assessment
) -> None:
    """Guessed passwords (a success after a burst of failures), failures per account and per
    source against their thresholds, the failure ratio, and the log's own health."""
    scan, stats, limits = reading.scan, reading.scan.stats, monitoring.failed_logins
    assessment.details.update(log=str(reading.log), window=monitoring.window)
    if _no_records(assessment, reading.log, stats):
        return
    assessment.metrics.update(loginAttempts=scan.attempts, failedLogins=scan.failures)
    assessment.details.update(
        lines=stats.lines,
        outOfOrderLines=stats.out_of_order,
        futureLines=stats.future,
        untracked=stats.untracked,
        knownAccounts=len(reading.names.known) if reading.names else 0,
    )
    if reading.unread:
        assessment.details["unknownBecauseUnread"] = list(reading.unread)
    shown = reading.names.shown if reading.names is not None else str
    _judge_bursts(scan, shown, assessment)
    accounts: dict[str, int] = {}
    for user, n in scan.per_account.items():
        accounts[shown(user)] = accounts.get(shown(user), 0) + n
    _judge_counts(assessment, limits.get("perAccount"), accounts)
    # sources are named by the log line where each first failed: the address stays in the log
    sources = {f"source first seen at {label}": n for label, n in scan.per_source.items()}
    _judge_counts(assessment, limits.get("perSource"), sources)
    assessment.measure(
        limits.get("ratio"),
        scan.ratio,
        subject="all accounts",
        missing="no login attempt in the window",
    )
    _log_health(assessment, reading.log, stats)


def _judge_bursts(scan: FailedLogins, name: Callable[[str], str], assessment: Assessment) -> None:
    """A successful login after a burst of failures: a likely guessed password, worst first
    (the terminal summary shows a check's first finding)."""
    for hit in scan.bursts[:SHOWN]:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{name(hit.username)}: successful login at "
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
        {name(hit.username) for hit in scan.bursts}
    )[:1000]


def _judge_counts(
    assessment: Assessment, threshold: Threshold | None, counts: dict[str, int]
) -> None:
    """Failures per account or source: the worst is the metric, each one past a level a
    finding; none at all is a measured zero."""
    assessment.measure_each(threshold, [(s, float(n)) for s, n in counts.items()], shown=SHOWN)
    if threshold is not None and not counts:
        assessment.metrics[threshold.metric] = 0


def judge_access_patterns(
    monitoring: SecurityMonitoring, scan: AccessPatterns, assessment: Assessment
) -> None:
    """Successful logins from a source new to the account, and during off hours."""
    log, off = monitoring.auth_log, monitoring.off_hours
    if _no_records(assessment, log, scan.stats):
        return
    assessment.metrics.update(
        successfulLogins=scan.logins,
        newSourceLogins=sum(h.count for h in scan.new_sources),
        offHoursLogins=sum(h.count for h in scan.off_hours),
        unparseableLines=scan.stats.unparseable,
    )
    assessment.details.update(log=str(log), accountsWithoutHistory=scan.accounts_without_history)
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


def _unusual(
    assessment: Assessment, found: Sequence[UnusualLogin], what: str, action: str, severity: str
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


def judge_sessions(policy: SessionPolicy, scan: SessionScan, assessment: Assessment) -> None:
    """Every session's idle time and lifetime against automatic logoff; sessions the role may
    not see are "could not measure", never a pass."""
    db = policy.database
    assessment.details.update(database=db, source=scan.source)
    assessment.metrics["openSessions"] = len(scan.sessions)
    if scan.hidden:
        assessment.could_not_measure(
            f"{db}: {scan.hidden} session(s) of other roles hidden from pg_stat_activity: "
            "missing privilege",
            "Grant pg_monitor (or pg_read_all_stats) to the monitoring role.",
        )
    # an active session has no idle time: nothing to judge, not a missing measurement
    assessment.measure_each(
        Threshold("maxIdle", fail=policy.max_idle),
        [(_who(db, s), round(s.idle, 1)) for s in scan.sessions if s.idle is not None],
        shown=SHOWN,
    )
    assessment.measure_each(
        Threshold("maxLifetime", fail=policy.max_lifetime),
        [
            (_who(db, s), None if s.lifetime is None else round(s.lifetime, 1))
            for s in scan.sessions
        ],
        shown=SHOWN,
    )


def _who(database: str, session: Session) -> str:
    return f"{database}: {session.label} of {session.username!r}"
