"""Streaming replication from the catalogs, read as a pg_monitor role.

On a primary: each standby of ``pg_stat_replication`` (state, sync state, replay lag in bytes
and time), the standbys expected but missing, ``synchronous_standby_names`` with no synchronous
standby (commits wait), and replication slots that are inactive, lost or hold WAL back (the
classic way a primary's disk fills). On a standby: ``pg_stat_wal_receiver`` and the replay delay,
which is 0 while every received byte is replayed (an idle primary sends nothing to replay).
The rules are in pytest_maintcheck.judges.replication (judge_replication).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from pytest_maintcheck.config import Database
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable

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


def measure_replication(database: Database) -> ReplicationState:
    """The replication state of a configured database; ProbeError naming it when unreadable."""
    try:
        return read_replication(
            database.dsn,
            connect_timeout=database.connect_timeout,
            statement_timeout=database.statement_timeout,
        )
    except ProbeError as exc:
        raise exc.about(database.name) from None
