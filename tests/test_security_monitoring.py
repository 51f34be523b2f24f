"""Daily security monitoring against real log files and a real PostgreSQL.

Each finding of checks/test_daily_security.py has a test here that fails without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_runs import run_checks
from pytest_maintcheck.probes.authlog import (
    LoginEvent,
    OffHoursWindow,
    parse_line,
    scan_access_patterns,
    scan_failed_logins,
    write_events,
)
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.probes.sessions import app_sessions, pg_sessions
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # a Wednesday; New York is UTC-5 that day
DAY = 86400.0


def ev(hours_ago: float, user: str, source: str, ok: bool) -> LoginEvent:
    return LoginEvent(NOW - timedelta(hours=hours_ago), user, source, ok)


def log_of(tmp_path: Path, events: list[LoginEvent], name: str = "auth.jsonl") -> Path:
    path = tmp_path / name
    write_events(path, events)
    return path


# ---------------------------------------------------------------------------- parsing


def test_timestamps_with_z_offsets_and_none_are_all_utc() -> None:
    line = '{{"timestamp": "{}", "username": "u", "sourceIp": "s", "outcome": "{}"}}'
    z = parse_line(line.format("2025-03-05T10:00:00Z", "failure"))
    offset = parse_line(line.format("2025-03-05T12:00:00+02:00", "FAILED"))
    naive = parse_line(line.format("2025-03-05T10:00:00", "success"))
    assert z is not None
    assert offset is not None
    assert naive is not None
    assert z.at == offset.at == naive.at == datetime(2025, 3, 5, 10, tzinfo=UTC)
    assert not z.success
    assert not offset.success
    assert naive.success


def test_unparseable_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = log_of(tmp_path, [ev(1, "alice", "10.0.0.1", False)])
    with path.open("a") as f:
        f.write("not json at all\n")
        f.write("[1, 2]\n")
        f.write('{"timestamp": "yesterday", "username": "a", "sourceIp": "s", "outcome": "ok"}\n')
        f.write('{"timestamp": "2025-03-05T10:00:00Z", "username": "a", "outcome": "failure"}\n')
        f.write(
            '{"timestamp": "2025-03-05T10:00:00Z", "username": "a", "sourceIp": "s", '
            '"outcome": "maybe"}\n'
        )
        f.write("\n")  # a blank line is not a record and not an error
    write_events(path, [ev(0.5, "alice", "10.0.0.1", False)])
    scan = scan_failed_logins(path, now=NOW, window=DAY, burst=5)
    assert (scan.stats.lines, scan.stats.unparseable, scan.stats.first_unparseable) == (7, 5, 2)
    assert scan.per_account == {"alice": 2}


# ---------------------------------------------------------------------------- failed logins


def test_failures_counted_per_account_and_source_inside_the_window_only(tmp_path: Path) -> None:
    events = [ev(30, "alice", "10.0.0.1", False)]  # before the window: not counted
    events += [ev(5, "alice", "10.0.0.1", False) for _ in range(3)]
    events += [ev(4, "bob", "10.0.0.1", False), ev(4, "bob", "10.0.0.2", False)]
    events += [ev(3, "carol", "10.0.0.3", True) for _ in range(4)]
    events += [ev(-1, "alice", "10.0.0.1", False)]  # after now (clock skew): not counted
    scan = scan_failed_logins(log_of(tmp_path, events), now=NOW, window=DAY, burst=5)
    assert scan.per_account == {"alice": 3, "bob": 2}
    # sources are labelled by the line they first failed on; addresses are not kept
    assert scan.per_source == {"line 2": 4, "line 6": 1}
    assert (scan.attempts, scan.failures, scan.ratio) == (9, 5, 5 / 9)
    assert scan.stats.future == 1


def test_success_after_a_burst_of_failures_is_a_guessed_password(tmp_path: Path) -> None:
    events = [ev(2 - i / 600, "alice", f"10.9.0.{i % 3}", False) for i in range(6)]
    events.append(ev(1.9, "alice", "10.9.0.7", True))
    scan = scan_failed_logins(log_of(tmp_path, events), now=NOW, window=DAY, burst=5)
    assert len(scan.bursts) == 1
    hit = scan.bursts[0]
    assert (hit.username, hit.failures, hit.sources) == ("alice", 6, 3)


def test_a_few_failures_then_success_or_a_burst_broken_by_success_is_fine(tmp_path: Path) -> None:
    events = [ev(3, "bob", "10.0.0.1", False) for _ in range(4)] + [ev(2.9, "bob", "a", True)]
    events += [ev(2, "eve", "10.0.0.2", False) for _ in range(3)]
    events += [ev(1.9, "eve", "10.0.0.2", True)]  # resets the run
    events += [ev(1.8, "eve", "10.0.0.2", False) for _ in range(3)]
    events += [ev(1.7, "eve", "10.0.0.2", True)]
    scan = scan_failed_logins(log_of(tmp_path, events), now=NOW, window=DAY, burst=5)
    assert scan.bursts == []


# ---------------------------------------------------------------------------- access patterns


def test_login_from_a_source_new_to_the_account_is_flagged(tmp_path: Path) -> None:
    history = [ev(48, "alice", "10.0.0.1", True), ev(47, "bob", "10.0.0.5", True)]
    history += [ev(47, "alice", "10.6.6.6", False)]  # failures do not make a source known
    window = [ev(2, "alice", "10.0.0.1", True), ev(1, "alice", "10.6.6.6", True)]
    window += [ev(1, "bob", "10.0.0.5", True)]
    window += [ev(1, "newhire", "10.0.0.9", True)]  # no history: nothing to compare against
    scan = scan_access_patterns(log_of(tmp_path, history + window), now=NOW, window=DAY)
    assert [(h.username, h.count, h.first_line) for h in scan.new_sources] == [("alice", 1, 5)]
    assert scan.accounts_without_history == 1
    assert scan.logins == 4


def test_history_written_after_the_window_lines_still_counts(tmp_path: Path) -> None:
    # a log merged from several hosts is not strictly ordered
    events = [ev(1, "alice", "10.0.0.1", True), ev(30, "alice", "10.0.0.1", True)]
    scan = scan_access_patterns(log_of(tmp_path, events), now=NOW, window=DAY)
    assert scan.new_sources == []


def test_successful_login_during_off_hours_in_the_configured_zone(tmp_path: Path) -> None:
    events = [
        ev(9, "night", "10.0.0.1", True),  # 03:00Z = 22:00 in New York: off hours
        ev(8, "night", "10.0.0.1", False),  # a failure is not a login
        ev(2, "day", "10.0.0.2", True),  # 10:00Z = 05:00 in New York: still off hours
        ev(1, "day2", "10.0.0.2", True),  # 11:00Z = 06:00 in New York: the end is exclusive
        ev(0.5, "noon", "10.0.0.3", True),  # 11:30Z = 06:30 New York
    ]
    window = OffHoursWindow.parse("20:00", "06:00", "America/New_York")
    scan = scan_access_patterns(log_of(tmp_path, events), now=NOW, window=DAY, off_hours=window)
    assert sorted(h.username for h in scan.off_hours) == ["day", "night"]
    # the same instants are day time in UTC: the zone matters
    utc = OffHoursWindow.parse("20:00", "06:00", "UTC")
    scan = scan_access_patterns(
        log_of(tmp_path, events, "b.jsonl"), now=NOW, window=DAY, off_hours=utc
    )
    assert [h.username for h in scan.off_hours] == ["night"]


def test_a_million_line_log_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    start = NOW - timedelta(hours=48)
    with path.open("w") as f:
        for i in range(1_000_000):
            at = (start + timedelta(seconds=i * 0.17)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            outcome = "failure" if i % 10 == 0 else "success"
            f.write(
                f'{{"timestamp": "{at}", "username": "user{i % 500}", '
                f'"sourceIp": "10.0.{i % 7}.{i % 200}", "outcome": "{outcome}"}}\n'
            )
    size_mb = path.stat().st_size / 2**20
    # a fresh interpreter, so the peak RSS is the scan's own: its growth over the peak after
    # the imports; reading the file whole would add more than the file's size
    script = (
        "import resource, sys\nfrom datetime import datetime\nfrom pathlib import Path\n"
        "from pytest_maintcheck.probes.authlog import scan_failed_logins, scan_access_patterns\n"
        "def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "now, before = datetime.fromisoformat(sys.argv[2]), peak()\n"
        "f = scan_failed_logins(Path(sys.argv[1]), now=now, window=86400, burst=5)\n"
        "a = scan_access_patterns(Path(sys.argv[1]), now=now, window=86400)\n"
        "print(f.stats.lines, f.attempts, a.logins, peak() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path), NOW.isoformat()],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    lines, attempts, logins, growth_mb = (int(x) for x in out.split())
    assert lines == 1_000_000
    assert attempts > 400_000
    assert logins > 400_000
    assert size_mb > 100
    assert growth_mb < 20, (
        f"the scan grew the peak RSS by {growth_mb} MB for a {size_mb:.0f} MB log"
    )


# ---------------------------------------------------------------------------- sessions


@pytest.fixture
def pg_password(pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    return pg_db.password


def _held_idle(pg_db: SandboxDatabase, at_least: float) -> Iterator[int]:
    conn = pg_db.connect()
    try:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        time.sleep(at_least)  # a real idle session: the condition, not an assertion
        yield int(pid)
    finally:
        conn.close()


@pytest.fixture
def idle_session(pg_db: SandboxDatabase) -> Iterator[int]:
    yield from _held_idle(pg_db, 1.3)


def test_pg_sessions_measure_idle_time_and_lifetime(
    pg_db: SandboxDatabase, pg_password: str, idle_session: int
) -> None:
    scan = pg_sessions(pg_db.dsn, connect_timeout=5, statement_timeout=5)
    mine = [s for s in scan.sessions if s.label == f"pid {idle_session}"]
    assert len(mine) == 1
    assert scan.hidden == 0
    assert mine[0].idle is not None
    assert mine[0].idle >= 1.0
    assert mine[0].lifetime is not None
    assert mine[0].lifetime >= mine[0].idle
    assert all(s.label != "pid 0" for s in scan.sessions)


@pytest.fixture
def plain_role(pg_cluster: PostgresCluster, pg_db: SandboxDatabase) -> Iterator[tuple[str, str]]:
    name, password = f"r_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    pg_cluster.create_role(name, password)  # no pg_monitor
    try:
        yield name, password
    finally:
        pg_cluster.drop_role(name)


def test_pg_sessions_without_privilege_report_hidden_sessions(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    plain_role: tuple[str, str],
    idle_session: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", plain_role[1])
    scan = pg_sessions(
        pg_cluster.dsn(pg_db.name, user=plain_role[0]), connect_timeout=5, statement_timeout=5
    )
    assert scan.hidden >= 1
    assert all(s.label != f"pid {idle_session}" for s in scan.sessions)


@pytest.fixture
def app_table(pg_db: SandboxDatabase) -> str:
    with pg_db.connect() as conn:
        conn.execute(
            "CREATE TABLE app_sessions (token text, who text, created timestamptz, seen timestamp)"
        )
        conn.execute(
            "INSERT INTO app_sessions VALUES"
            " ('tok-idle-SECRET', 'alice', now() - interval '1 hour',"
            "  (now() - interval '40 minutes') AT TIME ZONE 'UTC'),"
            " ('tok-old-SECRET', 'bob', now() - interval '13 hours',"
            "  (now() - interval '1 minute') AT TIME ZONE 'UTC'),"
            " ('tok-fresh-SECRET', 'carol', now() - interval '5 minutes',"
            "  now() AT TIME ZONE 'UTC')"
        )
    return (
        'SELECT token AS "sessionId", who AS username, created AS "createdAt",'
        ' seen AS "lastSeenAt" FROM app_sessions'
    )


def test_app_sessions_from_a_query_never_show_the_session_id(
    pg_db: SandboxDatabase, pg_password: str, app_table: str
) -> None:
    scan = app_sessions(
        pg_db.dsn, app_table, now=datetime.now(UTC), connect_timeout=5, statement_timeout=5
    )
    by_user = {s.username: s for s in scan.sessions}
    assert 39 * 60 < (by_user["alice"].idle or 0) < 45 * 60
    assert 13 * 3600 - 60 < (by_user["bob"].lifetime or 0) < 13 * 3600 + 300
    assert all(
        "SECRET" not in s.label and s.label.startswith("session sha256:") for s in scan.sessions
    )


def test_app_sessions_query_runs_read_only_and_bounded(
    pg_db: SandboxDatabase, pg_password: str, app_table: str
) -> None:
    with pytest.raises(ProbeError, match="read-only"):
        app_sessions(
            pg_db.dsn,
            'DELETE FROM app_sessions RETURNING token AS "sessionId", who'
            ' AS username, created AS "createdAt", seen AS "lastSeenAt"',
            now=NOW,
            connect_timeout=5,
            statement_timeout=5,
        )
    with pytest.raises(ProbeError, match="statement timeout"):
        app_sessions(
            pg_db.dsn, "SELECT pg_sleep(5)", now=NOW, connect_timeout=5, statement_timeout=0.5
        )
    with pytest.raises(ProbeError, match="missing createdat, lastseenat"):
        app_sessions(
            pg_db.dsn,
            'SELECT token AS "sessionId", who AS username FROM app_sessions',
            now=NOW,
            connect_timeout=5,
            statement_timeout=5,
        )
    with pg_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM app_sessions").fetchone() == (3,)


# ---------------------------------------------------------------------------- end to end


def run_daily_security(
    pytester: pytest.Pytester,
    security: dict[str, object],
    databases: dict[str, object] | None,
    *select: str,
    access_review: dict[str, object] | None = None,
) -> tuple[pytest.RunResult, dict[str, dict[str, object]]]:
    cfg = {
        "version": 1,
        "system": "test",
        "databases": databases or {},
        "securityMonitoring": security,
    }
    if access_review is not None:
        cfg["accessReview"] = access_review
    module = "test_daily_security.py"
    target = f"{module}::{select[0]}" if len(select) == 1 else module
    run = run_checks(pytester, cfg, target, args=["-rA"])
    return run.result, run.by_test


def severities(check: dict[str, object], text: str) -> list[object]:
    """The own severity (None: the check's) of each finding of a check that contains text."""
    findings = check["findings"]
    assert isinstance(findings, list)
    return [f.get("severity") for f in findings if text in f["description"]]


def test_checks_end_to_end_on_a_brute_forced_log(pytester: pytest.Pytester) -> None:
    now = datetime.now(UTC)
    events = [LoginEvent(now - timedelta(days=3), "alice", "198.51.100.7", True)]
    events += [
        LoginEvent(now - timedelta(minutes=30 - i), "alice", "203.0.113.66", False)
        for i in range(12)
    ]
    events += [LoginEvent(now - timedelta(minutes=10), "alice", "203.0.113.66", True)]
    # bob logs in from his usual source inside an off-hours window set around that login
    bob_at = now - timedelta(hours=2)
    events += [
        LoginEvent(bob_at - timedelta(days=3), "bob", "192.0.2.5", True),
        LoginEvent(bob_at, "bob", "192.0.2.5", True),
    ]
    off_hours = {
        "start": f"{bob_at - timedelta(minutes=30):%H:%M}",
        "end": f"{bob_at + timedelta(minutes=30):%H:%M}",
        "timezone": "UTC",
    }
    log = pytester.path / "auth.jsonl"
    write_events(log, sorted(events, key=lambda e: e.at))
    with log.open("a") as f:
        f.write("garbage\n")
    security = {"authLog": {"file": str(log)}, "window": "24h", "offHours": off_hours}
    (pytester.path / "staff.csv").write_text("username,status\nalice,active\nbob,active\n")
    roster = {"roster": str(pytester.path / "staff.csv")}
    result, checks = run_daily_security(pytester, security, None, access_review=roster)
    assert result.parseoutcomes() == {"failed": 1, "degraded": 1, "skipped": 1}
    failed, access = checks["test_failed_logins"], checks["test_access_patterns"]
    assert failed["verdict"] == "violation"
    assert access["verdict"] == "degraded"
    message = str(failed["message"])
    assert "'alice': successful login" in message
    assert "12 consecutive failures" in message
    assert "'alice': failed logins per account 12" in message
    assert "1 of 17 lines are not login" in message
    # issue 5: a likely guessed password is high; access patterns are medium (a new source)
    # and low (off hours) findings, each carried in results.json as the finding's severity
    assert severities(failed, "a likely guessed password") == ["high"]
    assert severities(failed, "'alice': failed logins per account 12") == [None]  # the check's own
    assert severities(access, "'alice': 1 successful login(s) from a source never used") == [
        "medium"
    ]
    assert severities(access, "'bob': 1 successful login(s) during off hours") == ["low"]
    everything = result.stdout.str() + json.dumps(checks)
    assert "203.0.113.66" not in everything
    assert "198.51.100.7" not in everything


def test_sessions_check_end_to_end_with_a_short_max_idle(
    pytester: pytest.Pytester, pg_db: SandboxDatabase, pg_password: str
) -> None:
    security = {"sessions": {"database": "primary", "maxIdle": "1s", "maxLifetime": "12h"}}
    databases = {"primary": {"dsn": pg_db.dsn}}
    gen = _held_idle(pg_db, 1.3)
    pid = next(gen)
    try:
        result, checks = run_daily_security(pytester, security, databases, "test_sessions")
    finally:
        gen.close()
    result.assert_outcomes(failed=1)
    message = str(checks["test_sessions"]["message"])
    assert f"pid {pid} of " in message
    assert "session idle time" in message
    # with the session gone and a generous limit, the same database passes
    security["sessions"]["maxIdle"] = "1h"  # type: ignore[index]
    result, checks = run_daily_security(pytester, security, databases, "test_sessions")
    result.assert_outcomes(passed=1)


def test_sessions_check_names_the_missing_privilege(
    pytester: pytest.Pytester,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    plain_role: tuple[str, str],
    idle_session: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", plain_role[1])
    databases = {"primary": {"dsn": pg_cluster.dsn(pg_db.name, user=plain_role[0])}}
    result, checks = run_daily_security(
        pytester, {"sessions": {"database": "primary"}}, databases, "test_sessions"
    )
    result.assert_outcomes(failed=1)
    assert "missing privilege" in str(checks["test_sessions"]["message"])


def test_unreadable_log_is_a_violation_not_a_crash(pytester: pytest.Pytester) -> None:
    missing = pytester.path / "nope.jsonl"
    result, checks = run_daily_security(pytester, {"authLog": {"file": str(missing)}}, None)
    result.assert_outcomes(failed=2, skipped=1)  # no sessions section: skipped
    assert "cannot read the authentication log" in str(checks["test_failed_logins"]["message"])


def demo_findings(tmp_path: Path, now: datetime | None) -> dict[str, object]:
    """The daily findings the demo's auth log gives, scanned at ``now`` (None: the clock)."""
    from contextlib import ExitStack

    from pytest_maintcheck.sandbox.demo import DemoContext
    from pytest_maintcheck.sandbox.demo_security_daily import security_daily

    with ExitStack() as stack:
        ctx = DemoContext(workdir=tmp_path, stack=stack, config={"databases": {"primary": {}}})
        security_daily(ctx, now)
    section = ctx.config["securityMonitoring"]
    assert section["sessions"]["database"] == "primary"
    log, now = Path(section["authLog"]["file"]), now or datetime.now(UTC)
    failed = scan_failed_logins(log, now=now, window=DAY, burst=5)
    off = OffHoursWindow.parse("20:00", "06:00", "America/New_York")
    access = scan_access_patterns(log, now=now, window=DAY, off_hours=off)
    return {
        "bursts": [b.username for b in failed.bursts],
        "unparseable": failed.stats.unparseable,
        "failures": dict(failed.per_account),
        "newSources": sorted(h.username for h in access.new_sources),
        "offHours": [h.username for h in access.off_hours],
        "future": failed.stats.future,
    }


EVERY_DAILY_FINDING = {
    "bursts": ["dr.jones"],
    "unparseable": 3,
    "failures": {"dr.jones": 15, "admin": 6},
    "newSources": ["dr.jones", "nurse.kim"],
    "offHours": ["dr.patel"],
    "future": 0,
}


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 3, 5, hour, 30, tzinfo=UTC)
        for hour in range(24)  # every hour of a day
    ]
    + [  # both New York DST changes, around the hours they move
        datetime(2025, 3, 9, hour, minute, tzinfo=UTC)
        for hour in (6, 7, 14, 15)
        for minute in (0, 45)
    ]
    + [
        datetime(2025, 11, 2, hour, minute, tzinfo=UTC)
        for hour in (5, 6, 14, 15, 16)
        for minute in (0, 45)
    ]
    + [datetime(2025, 12, 31, 23, 59, tzinfo=UTC), datetime(2026, 3, 1, 0, 5, tzinfo=UTC)],
    ids=lambda now: now.strftime("%Y-%m-%dT%H:%MZ"),
)
def test_demo_part_writes_a_log_with_every_daily_finding(tmp_path: Path, now: datetime) -> None:
    assert demo_findings(tmp_path, now) == EVERY_DAILY_FINDING


def test_demo_part_gives_every_daily_finding_at_the_real_clock(tmp_path: Path) -> None:
    # the clock's own hour: tests/test_time_of_day.py runs this under faketime at several hours
    assert demo_findings(tmp_path, None) == EVERY_DAILY_FINDING


def test_password_spray_is_caught_per_source_and_a_quiet_log_passes(
    pytester: pytest.Pytester,
) -> None:
    now = datetime.now(UTC)
    spray = [
        LoginEvent(now - timedelta(minutes=50 - i), f"user{i}", "203.0.113.9", False)
        for i in range(6)
    ]
    quiet = [
        LoginEvent(now - timedelta(minutes=40 - i), f"user{i}", "192.0.2.1", True)
        for i in range(30)
    ]
    log = pytester.path / "auth.jsonl"
    write_events(log, quiet[:15] + spray + quiet[15:])
    security = {
        "authLog": {"file": str(log)},
        "failedLogins": {"perSource": {"warn": 2, "fail": 4}},
    }
    result, checks = run_daily_security(pytester, security, None, "test_failed_logins")
    result.assert_outcomes(failed=1)
    message = str(checks["test_failed_logins"]["message"])
    assert "source first seen at line 16: failed logins per source 6" in message
    assert "account 'user" not in message  # one failure per account stays under perAccount
    assert "203.0.113.9" not in result.stdout.str() + json.dumps(checks)

    log.unlink()
    write_events(log, quiet)
    result, checks = run_daily_security(pytester, security, None)
    assert result.parseoutcomes() == {"passed": 2, "skipped": 1}


def test_failed_logins_name_only_known_accounts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import hmac

    monkeypatch.setenv("MAINTCHECK_USERNAME_SECRET", "pepper-for-usernames")
    now = datetime.now(UTC)
    typed = ["alice", "BOB", "svc-hl7", "Winter2025!", "carol"]  # a password typed as a username
    events = [
        LoginEvent(now - timedelta(minutes=50 - i), user, "192.0.2.7", False)
        for user in typed
        for i in range(6)
    ]
    log = pytester.path / "auth.jsonl"
    write_events(log, events)
    (pytester.path / "staff.csv").write_text("username,status\nalice,active\ncarol,terminated\n")
    (pytester.path / "app.csv").write_text("username,role,enabled\nbob,clinician,true\n")
    review = {
        "roster": str(pytester.path / "staff.csv"),
        "sources": [{"name": "app", "file": str(pytester.path / "app.csv")}],
        "serviceAccounts": [{"name": "svc-hl7", "owner": "alice", "justification": "HL7 feed"}],
    }
    security = {"authLog": {"file": str(log)}, "failedLogins": {"perAccount": {"warn": 5}}}
    result, checks = run_daily_security(
        pytester, security, None, "test_failed_logins", access_review=review
    )
    # the keyed hash of what was typed: the same label in every run, so operators can follow it
    digest = hmac.new(b"pepper-for-usernames", b"Winter2025!", hashlib.sha256).hexdigest()[:8]
    message = str(checks["test_failed_logins"]["message"])
    for known in ("'alice'", "'BOB'", "'svc-hl7'", "'carol'"):
        assert f"account {known}: failed logins per account 6" in message
    assert f"unknown account #{digest}: failed logins per account 6" in message
    assert checks["test_failed_logins"]["details"]["knownAccounts"] == 4  # type: ignore[index]
    assert "Winter2025" not in result.stdout.str() + json.dumps(checks)
    # without a secret the key is the config's system name; without an access review nothing
    # is known, so every username is hashed
    monkeypatch.delenv("MAINTCHECK_USERNAME_SECRET")
    _, checks = run_daily_security(pytester, security, None, "test_failed_logins")
    unkeyed = hmac.new(b"maintcheck:test", b"Winter2025!", hashlib.sha256).hexdigest()[:8]
    message = str(checks["test_failed_logins"]["message"])
    assert f"unknown account #{unkeyed}: failed logins per account 6" in message
    assert "'alice'" not in message
    assert message.count("unknown account #") == 5
