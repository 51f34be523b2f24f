"""Daily WAL archiving and replication checks against a real archived primary and standby.

Faults are produced for real: archive_command failing (its switch file), a stopped standby, an
inactive slot holding WAL, a server without archiving. Each is undone before the test ends.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from check_runs import run_checks
from physical_fixtures import MONITOR, Physical
from pytest_maintcheck.config import ArchivingTarget, ReplicationTarget
from pytest_maintcheck.judges.replication import judge_replication, judge_wal_archiving
from pytest_maintcheck.probes.archiving import ArchiverStatus, read_archiver
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.probes.replication import read_replication
from pytest_maintcheck.sandbox import PostgresCluster
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict


@pytest.fixture
def monitor_env(physical: Physical, monkeypatch: pytest.MonkeyPatch) -> Physical:
    monkeypatch.setenv("PGPASSWORD", physical.monitor_password)
    return physical


def _archiving(**kw: object) -> ArchivingTarget:
    return ArchivingTarget("primary", Threshold("archiveMaxAge", fail=900.0), **kw)  # type: ignore[arg-type]


def _replication(
    standbys: int | None = 1, names: tuple[str, ...] = (), **kw: Threshold
) -> ReplicationTarget:
    return ReplicationTarget(
        "primary",
        standbys=standbys,
        standby_names=names,
        replay_lag=kw.get("replay_lag", Threshold("replayLag", warn=30.0, fail=300.0)),
        replay_lag_bytes=kw.get(
            "replay_lag_bytes", Threshold("replayLagBytes", warn=1e9, fail=16e9)
        ),
        slot_retained=kw.get("slot_retained", Threshold("slotRetained", warn=5e9, fail=20e9)),
    )


def _texts(assessment: Assessment) -> str:
    return "\n".join(f.description for f in assessment.findings)


# ---------------------------------------------------------------------------- archiving


def test_archiving_healthy_end_to_end(monitor_env: Physical, pytester: pytest.Pytester) -> None:
    """The check, run as the bundled suite runs it, passes and fills the records."""
    monitor_env.primary.switch_wal()
    monitor_env.primary.wait_archived()
    config = {
        "version": 1,
        "databases": {
            "primary": {"dsn": monitor_env.monitor_dsn},
            "standby": {"dsn": monitor_env.standby_dsn},
        },
        "archiving": [{"database": "primary", "archiveMaxAge": "15m"}],
        "replication": [
            {"database": "primary", "standbys": 1, "replayLag": {"warn": "30s", "fail": "5m"}},
            {"database": "standby"},
        ],
    }
    run = run_checks(pytester, config, "test_daily_replication.py")
    checks = run.by_name
    archived = checks["test_wal_archiving[primary]"]
    assert archived["verdict"] == "pass", archived["message"]
    assert archived["metrics"]["archiveFailures"] == 0
    assert archived["details"]["archiver"]["archivedCount"] >= 1
    for name in ("test_replication[primary]", "test_replication[standby]"):
        assert checks[name]["verdict"] == "pass", checks[name]["message"]
    assert checks["test_replication[primary]"]["metrics"]["standbys"] == 1
    records = {r["database"]: r for r in run.record("database-maintenance.json")}
    assert records["primary"]["metrics"]["standbys"] == 1
    assert records["primary"]["metrics"]["archiveFailing"] is False
    assert records["standby"]["metrics"]["walReceiver"] == "streaming"
    compliance = {c["category"]: c for c in run.record("compliance.json")}
    contingency = compliance["Contingency plan: data backup and recovery testing"]
    assert "NIST SP 800-53 CP-9" in contingency["requirements"]
    assert "HIPAA 164.308(a)(7)(ii)(B) disaster recovery plan" in contingency["requirements"]


def test_archive_command_failing_is_a_violation(monitor_env: Physical) -> None:
    primary = monitor_env.primary
    primary.archive_switch.touch()
    try:
        primary.switch_wal()
        deadline = time.monotonic() + 30
        status = read_archiver(monitor_env.monitor_dsn)
        while not status.failing and time.monotonic() < deadline:
            time.sleep(0.2)
            status = read_archiver(monitor_env.monitor_dsn)
        assessment = Assessment()
        judge_wal_archiving(status, _archiving(), assessment)
        assert assessment.verdict is Verdict.VIOLATION
        assert "archive_command is failing" in _texts(assessment)
        assert assessment.metrics["archiveFailures"] >= 1
        assert assessment.details["dbMetrics"]["archiveFailing"] is True
    finally:
        primary.archive_switch.unlink()
        primary.switch_wal()  # wakes the archiver, which retries the waiting segments
        primary.wait_archived(timeout=90)
    healed = Assessment()
    judge_wal_archiving(read_archiver(monitor_env.monitor_dsn), _archiving(), healed)
    assert healed.verdict is Verdict.PASS, healed.message()


def test_archiving_off_is_a_violation(
    pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    status = read_archiver(pg_cluster.dsn(), connect_timeout=5)
    assessment = Assessment()
    judge_wal_archiving(status, _archiving(), assessment)
    assert assessment.verdict is Verdict.VIOLATION
    assert "archive_mode=off" in _texts(assessment)


def test_archiving_without_pg_monitor_cannot_measure(
    pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_cluster.create_role("maint_nobody", "pw-not-monitor")
    try:
        monkeypatch.setenv("PGPASSWORD", "pw-not-monitor")
        with pytest.raises(ProbeError, match="pg_monitor"):
            read_archiver(pg_cluster.dsn(user="maint_nobody"), connect_timeout=5)
    finally:
        pg_cluster.drop_role("maint_nobody")


def _status(now: datetime, **kw: object) -> ArchiverStatus:
    base: dict[str, object] = {
        "in_recovery": False, "archive_mode": "on", "has_command": True, "has_library": False,
        "archived_count": 10, "last_archived_wal": "000000010000000000000010",
        "last_archived_time": now - timedelta(minutes=20), "failed_count": 0,
        "last_failed_wal": None, "last_failed_time": None, "stats_reset": None, "waiting": 0,
        "oldest_waiting": None, "now": now,
    }  # fmt: skip
    base.update(kw)
    return ArchiverStatus(**base)  # type: ignore[arg-type]


def test_archive_age_is_judged_only_while_segments_wait() -> None:
    """An idle server archived 20 minutes ago is not late; with 3 segments waiting it is."""
    now = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    idle, busy = Assessment(), Assessment()
    judge_wal_archiving(_status(now), _archiving(), idle)
    judge_wal_archiving(_status(now, waiting=3), _archiving(), busy)
    assert idle.verdict is Verdict.PASS
    assert busy.verdict is Verdict.VIOLATION
    assert busy.metrics["archiveMaxAge"] == 1200.0
    assert "3 WAL segments waiting" in _texts(busy)


def test_failure_before_the_last_success_is_not_failing() -> None:
    now = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    old = _status(now, failed_count=4, last_failed_time=now - timedelta(hours=2))
    assert not old.failing
    assessment = Assessment()
    judge_wal_archiving(old, _archiving(), assessment)
    assert assessment.verdict is Verdict.PASS
    assert assessment.metrics["archiveFailures"] == 0


# ---------------------------------------------------------------------------- replication


def test_primary_with_its_standby_passes(monitor_env: Physical) -> None:
    state = read_replication(monitor_env.monitor_dsn)
    assessment = Assessment()
    judge_replication(state, _replication(1), assessment)
    assert assessment.verdict is Verdict.PASS, assessment.message()
    assert [s.name for s in state.standbys] == ["standby1"]
    assert state.standbys[0].sync_state == "async"
    assert state.standbys[0].slot == "standby1"
    assert assessment.metrics["replayLagBytes"] is not None


def test_standby_side_reports_its_receiver(monitor_env: Physical) -> None:
    state = read_replication(monitor_env.standby_dsn)
    assert state.in_recovery
    assessment = Assessment()
    judge_replication(state, _replication(None), assessment)
    assert assessment.verdict is Verdict.PASS, assessment.message()
    assert state.receiver is not None
    assert state.receiver.status == "streaming"
    assert state.receiver.slot == "standby1"


def test_stopped_standby_is_missing_and_its_slot_inactive(monitor_env: Physical) -> None:
    primary, standby = monitor_env.primary, monitor_env.standby
    standby.stop()
    try:
        deadline = time.monotonic() + 20
        state = read_replication(monitor_env.monitor_dsn)
        while state.standbys and time.monotonic() < deadline:
            time.sleep(0.2)
            state = read_replication(monitor_env.monitor_dsn)
        assessment = Assessment()
        judge_replication(state, _replication(1), assessment)
        by_name = Assessment()
        judge_replication(state, _replication(names=("standby1",)), by_name)
    finally:
        primary.start_standby(standby)
    assert assessment.verdict is Verdict.VIOLATION
    text = _texts(assessment)
    assert "0 of 1 expected standbys streaming" in text
    assert "replication slot standby1 (physical) is inactive" in text
    assert "expected standby standby1 is not streaming" in _texts(by_name)


def test_inactive_slot_holding_wal_past_the_limit(monitor_env: Physical) -> None:
    primary = monitor_env.primary
    with primary.connect() as conn:
        conn.execute("SELECT pg_create_physical_replication_slot('forgotten', true)")
    try:
        for _ in range(2):  # each switch moves the WAL position on by a whole 16 MB segment
            primary.switch_wal()
        state = read_replication(monitor_env.monitor_dsn)
        limit = Threshold("slotRetained", warn=1e6, fail=8e6)
        assessment = Assessment()
        judge_replication(state, _replication(1, slot_retained=limit), assessment)
    finally:
        with primary.connect() as conn:
            conn.execute("SELECT pg_drop_replication_slot('forgotten')")
    assert assessment.verdict is Verdict.VIOLATION
    forgotten = next(s for s in state.slots if s.name == "forgotten")
    assert forgotten.retained is not None
    assert forgotten.retained > 16e6
    assert "replication slot forgotten (inactive): WAL retained by the slot" in _texts(assessment)
    assert assessment.metrics["slotRetained"] >= forgotten.retained


def test_paused_replay_lags_behind_on_both_sides(monitor_env: Physical) -> None:
    """Replay paused on the standby while the primary writes: lag in bytes on the primary,
    a paused receiver on the standby."""
    primary = monitor_env.primary
    cluster = primary.cluster
    with psycopg.connect(
        host="127.0.0.1", port=monitor_env.standby.port, user=cluster.superuser,
        password=cluster.password, dbname="postgres", autocommit=True, connect_timeout=5,
    ) as standby:  # fmt: skip
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            primary.switch_wal()
            deadline = time.monotonic() + 20
            state = read_replication(monitor_env.monitor_dsn)
            while not (state.standbys and (state.standbys[0].replay_lag_bytes or 0) > 1e6):
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
                state = read_replication(monitor_env.monitor_dsn)
            on_standby = read_replication(monitor_env.standby_dsn)
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    limit = Threshold("replayLagBytes", warn=1e3, fail=1e6)
    primary_view, standby_view = Assessment(), Assessment()
    judge_replication(state, _replication(1, replay_lag_bytes=limit), primary_view)
    judge_replication(on_standby, _replication(None, replay_lag_bytes=limit), standby_view)
    assert primary_view.verdict is Verdict.VIOLATION
    assert "standby standby1: replay lag" in _texts(primary_view)
    assert "WAL replay is paused" in _texts(standby_view)


def test_replication_reader_uses_only_pg_monitor(monitor_env: Physical) -> None:
    """The pg_monitor role reads every column: the lag of the standby is not hidden."""
    with monitor_env.primary.connect() as conn:
        row = conn.execute(
            "SELECT rolsuper, pg_has_role(%s, 'pg_monitor', 'MEMBER') FROM pg_roles "
            "WHERE rolname = %s",
            (MONITOR, MONITOR),
        ).fetchone()
    assert row == (False, True)
    state = read_replication(monitor_env.monitor_dsn)
    assert state.privileged
    assert state.standbys
    assert state.standbys[0].replay_lag_bytes is not None
