"""Streaming replication from the catalogs, read as a pg_monitor role.

On a primary: each standby of ``pg_stat_replication`` (state, sync state, replay lag in bytes
and time), the standbys expected but missing, ``synchronous_standby_names`` with no synchronous
standby (commits wait), and replication slots that are inactive, lost or hold WAL back (the
classic way a primary's disk fills). On a standby: ``pg_stat_wal_receiver`` and the replay delay,
which is 0 while every received byte is replayed (an idle primary sends nothing to replay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from pytest_maintcheck.config import ReplicationTarget
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_size
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict, format_value, metric

ROLE_SQL = """
SELECT pg_is_in_recovery(),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
       current_setting('synchronous_standby_names')
"""
# logical walsenders (subscriptions, CDC) and pg_basebackup are not standbys
STANDBYS_SQL = """
SELECT r.application_name, host(r.client_addr), r.state, r.sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::float8,
       extract(epoch FROM r.replay_lag)::float8,
       s.slot_name
FROM pg_stat_replication r
LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
WHERE coalesce(s.slot_type, 'physical') = 'physical' AND r.state <> 'backup'
ORDER BY r.application_name, r.pid
"""
SLOTS_SQL = """
SELECT slot_name, slot_type, active, wal_status,
       CASE WHEN restart_lsn IS NOT NULL
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 END,
       database, temporary
FROM pg_replication_slots ORDER BY slot_name
"""
RECEIVER_SQL = """
SELECT (SELECT status FROM pg_stat_wal_receiver),
       (SELECT sender_host FROM pg_stat_wal_receiver),
       (SELECT slot_name FROM pg_stat_wal_receiver),
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
       pg_is_wal_replay_paused()
"""


@dataclass(frozen=True)
class Standby:
    name: str  # application_name
    address: str | None
    state: str  # startup | catchup | streaming | stopping
    sync_state: str  # async | potential | sync | quorum
    replay_lag_bytes: float | None
    replay_lag: float | None  # seconds; NULL in the view once an idle standby caught up
    slot: str | None = None


@dataclass(frozen=True)
class Slot:
    name: str
    type: str  # physical | logical
    active: bool
    wal_status: str | None  # reserved | extended | unreserved | lost
    retained: float | None  # bytes of WAL held back on the primary
    database: str | None = None
    temporary: bool = False


@dataclass(frozen=True)
class Receiver:
    """A standby's own view: its WAL receiver and how far replay is behind receipt."""

    status: str | None  # streaming | stopping | ... ; None: no WAL receiver running
    sender_host: str | None
    slot: str | None
    unreplayed_bytes: float | None
    since_last_replay: float | None  # seconds since the last replayed transaction
    paused: bool

    @property
    def replay_delay(self) -> float | None:
        """0 while everything received is replayed; else the time since the last replay."""
        if self.unreplayed_bytes is not None and self.unreplayed_bytes <= 0:
            return 0.0
        return self.since_last_replay


@dataclass
class ReplicationState:
    in_recovery: bool
    privileged: bool  # may read every column of pg_stat_replication (pg_monitor)
    synchronous_standby_names: str = ""
    standbys: list[Standby] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    receiver: Receiver | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "role": "standby" if self.in_recovery else "primary",
            "synchronousStandbyNames": self.synchronous_standby_names,
            "standbys": [asdict(s) for s in self.standbys],
            "slots": [asdict(s) for s in self.slots],
            "receiver": asdict(self.receiver) if self.receiver else None,
        }


def _read(dsn: str, connect_timeout: float, statement_timeout: float) -> ReplicationState:
    with connect(dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout) as c:
        row: tuple[Any, ...] | None = c.execute(ROLE_SQL).fetchone()
        assert row is not None
        state = ReplicationState(bool(row[0]), bool(row[1]), str(row[2] or ""))
        if state.in_recovery:
            r: tuple[Any, ...] | None = c.execute(RECEIVER_SQL).fetchone()
            assert r is not None
            state.receiver = Receiver(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
            return state
        rows: list[tuple[Any, ...]] = c.execute(STANDBYS_SQL).fetchall()
        state.standbys = [Standby(*map(_plain, r)) for r in rows]
        rows = list(c.execute(SLOTS_SQL).fetchall())
        state.slots = [
            Slot(str(r[0]), str(r[1]), bool(r[2]), r[3], r[4], r[5], bool(r[6])) for r in rows
        ]
    return state


def _plain(value: Any) -> Any:
    return printable(value, 200) if isinstance(value, str) else value


def read_replication(
    dsn: str, *, connect_timeout: float = 10.0, statement_timeout: float = 30.0
) -> ReplicationState:
    """The server's replication state; ProbeError (safe to print) when it cannot be read."""
    bound = session_bound(connect_timeout, statement_timeout, 3)
    try:
        return run_bounded(
            bound, "replication views", _read, dsn, connect_timeout, statement_timeout
        )
    except psycopg.Error as exc:
        raise ProbeError(describe_pg_error(exc)) from None


def judge_each(
    assessment: Assessment,
    threshold: Threshold | None,
    items: Sequence[tuple[str, float | None]],
    action: str,
) -> None:
    """Judge every (subject, value); the metric records the worst, each crossing is a finding."""
    if threshold is None:
        return
    name = threshold.metric
    values = [v for _, v in items if v is not None]
    worse = max if metric(name).higher_is_worse else min
    assessment.metrics[name] = worse(values) if values else None
    assessment.thresholds[name] = threshold.to_json()
    for subject, value in items:
        if value is None:
            continue
        verdict = threshold.judge(value)
        if verdict is not Verdict.PASS:
            label = metric(name).label or name
            assessment.add_finding(
                verdict,
                f"{subject}: {label} {format_value(name, value)} ({threshold.describe()})",
                action,
            )


def judge_replication(
    state: ReplicationState, target: ReplicationTarget, assessment: Assessment
) -> None:
    """Findings and metrics for one reading against the target's expectations."""
    assessment.details["replication"] = state.to_json()
    assessment.details["database"] = target.database
    if state.in_recovery:
        _judge_standby(state, target, assessment)
    else:
        _judge_primary(state, target, assessment)


def _judge_primary(
    state: ReplicationState, target: ReplicationTarget, assessment: Assessment
) -> None:
    if not state.privileged and state.standbys:
        assessment.could_not_measure(
            "the monitoring role may not read pg_stat_replication's lag columns",
            "GRANT pg_monitor TO the monitoring role.",
        )
        return
    streaming = [s for s in state.standbys if s.state == "streaming"]
    for s in state.standbys:
        if s.state != "streaming":
            assessment.add_finding(
                Verdict.DEGRADED,
                f"standby {s.name} ({s.address or 'local'}) is {s.state}, not streaming",
                "Expected briefly after a standby starts; if it stays, check its log.",
            )
    _judge_expected(state, target, assessment, streaming)
    sync_names = state.synchronous_standby_names.strip()
    if sync_names and not any(s.sync_state in ("sync", "quorum") for s in streaming):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"synchronous_standby_names is {printable(sync_names, 100)!r} but no standby is "
            "synchronous: every commit waits",
            "Bring a synchronous standby back, or clear synchronous_standby_names and reload.",
        )
    lag_action = "Check the standby's load, disk and network; a standby this far behind "
    judge_each(
        assessment,
        target.replay_lag,
        [(f"standby {s.name}", s.replay_lag or (0.0 if s.replay_lag_bytes == 0 else None))
         for s in state.standbys],
        lag_action + "loses that much on failover.",
    )  # fmt: skip
    judge_each(
        assessment,
        target.replay_lag_bytes,
        [(f"standby {s.name}", s.replay_lag_bytes) for s in state.standbys],
        lag_action + "replays that much WAL before a failover completes.",
    )
    _judge_slots(state.slots, target, assessment)
    assessment.details["dbMetrics"] = {
        "standbys": len(streaming),
        "replayLag": assessment.metrics.get("replayLag"),
        "replayLagBytes": assessment.metrics.get("replayLagBytes"),
        "slotRetained": assessment.metrics.get("slotRetained"),
        "inactiveSlots": sum(1 for s in state.slots if not s.active),
    }


def _judge_expected(
    state: ReplicationState,
    target: ReplicationTarget,
    assessment: Assessment,
    streaming: list[Standby],
) -> None:
    assessment.metrics["standbys"] = len(streaming)
    names = {s.name for s in streaming}
    for missing in (n for n in target.standby_names if n not in names):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"expected standby {missing} is not streaming from this primary",
            "Start the standby (or rebuild it with pg_basebackup / pgbackrest restore) and "
            "check primary_conninfo; without it there is no failover target.",
        )
    expected = target.standbys
    if not target.standby_names and expected is not None and len(streaming) < expected:
        shown = ", ".join(sorted(names)) or "none"
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{len(streaming)} of {expected} expected standbys streaming ({shown})",
            "Start the missing standby and check primary_conninfo; without it there is no "
            "failover target.",
        )


def _judge_slots(slots: list[Slot], target: ReplicationTarget, assessment: Assessment) -> None:
    for s in slots:
        if s.wal_status == "lost":
            assessment.add_finding(
                Verdict.VIOLATION,
                f"replication slot {s.name} is lost: the WAL its consumer needs was removed",
                f"Rebuild the consumer of {s.name} and drop the slot "
                "(SELECT pg_drop_replication_slot(...)).",
            )
        elif not s.active and not s.temporary:
            held = f", holding {format_size(s.retained)} of WAL" if s.retained else ""
            assessment.add_finding(
                Verdict.DEGRADED,
                f"replication slot {s.name} ({s.type}) is inactive{held}: WAL stays on the "
                "primary until its consumer returns or the slot is dropped",
                f"Start the consumer of {s.name}, or drop the slot if it is gone for good.",
            )
    judge_each(
        assessment,
        target.slot_retained,
        [(f"replication slot {s.name}" + ("" if s.active else " (inactive)"), s.retained)
         for s in slots],
        "Bring the slot's consumer back or drop the slot before pg_wal fills the disk "
        "(max_slot_wal_keep_size caps it).",
    )  # fmt: skip


def _judge_standby(
    state: ReplicationState, target: ReplicationTarget, assessment: Assessment
) -> None:
    r = state.receiver
    assert r is not None
    if target.standbys:
        assessment.add_finding(
            Verdict.PASS, "a standby: its expected standbys are judged on the primary"
        )
    if r.status is None:
        assessment.add_finding(
            Verdict.VIOLATION,
            "standby without a WAL receiver: it is not streaming from a primary (only replaying "
            "archived WAL, or the primary is unreachable)",
            "Check primary_conninfo and the primary's reachability in this server's log.",
        )
    elif r.status != "streaming":
        assessment.add_finding(
            Verdict.DEGRADED,
            f"WAL receiver is {r.status}, not streaming",
            "Check the connection to the primary in this server's log.",
        )
    if r.paused:
        assessment.add_finding(
            Verdict.DEGRADED,
            "WAL replay is paused (pg_wal_replay_pause): the standby falls behind",
            "Resume it with SELECT pg_wal_replay_resume() unless paused on purpose.",
        )
    assessment.measure(
        target.replay_lag,
        r.replay_delay,
        subject="this standby",
        action="Check the standby's load and disk; on failover it is this far behind.",
    )
    assessment.measure(
        target.replay_lag_bytes,
        r.unreplayed_bytes,
        subject="this standby, received but not replayed",
        action="Check the standby's load and disk (replay is single-threaded).",
    )
    assessment.details["dbMetrics"] = {
        "walReceiver": r.status,
        "replayLag": r.replay_delay,
        "replayLagBytes": r.unreplayed_bytes,
    }
