"""PgBouncer's admin console read through psycopg: SHOW POOLS, STATS, DATABASES and CONFIG.

The console speaks only the simple query protocol, takes no ``options`` startup parameter and
no transactions, so this connects with none of them. A ``stats_users`` account is enough (all
SHOW commands but FDS): never an ``admin_users`` one, which may PAUSE or KILL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from pytest_maintcheck.config import redact_dsn
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable

ADMIN_DATABASE = "pgbouncer"
# the server-side columns of SHOW POOLS: every connection the pool holds, whatever its state
SERVER_COLUMNS = ("sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used",
                  "sv_tested", "sv_login")  # fmt: skip
CLIENT_COLUMNS = ("cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req")


def _int(row: dict[str, Any], key: str) -> int:
    value = row.get(key)
    if isinstance(value, int | float):
        return int(value)
    return int(str(value)) if str(value or "").isdigit() else 0


@dataclass(frozen=True)
class Pool:
    """One SHOW POOLS row: a (database, user) pair."""

    database: str
    user: str
    clients: int
    waiting: int
    servers: int
    max_wait: float  # seconds the oldest waiting client has waited

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Pool:
        return cls(
            database=printable(str(row.get("database", "")), 100),
            user=printable(str(row.get("user", "")), 100),
            clients=sum(_int(row, c) for c in CLIENT_COLUMNS),
            waiting=_int(row, "cl_waiting"),
            servers=sum(_int(row, c) for c in SERVER_COLUMNS),
            max_wait=_int(row, "maxwait") + _int(row, "maxwait_us") / 1e6,
        )


@dataclass(frozen=True)
class PoolDatabase:
    """One SHOW DATABASES row: how many server connections its pools may open."""

    name: str
    pool_size: int
    reserve_pool: int
    max_connections: int  # 0: no per-database limit


@dataclass
class PoolerState:
    pools: list[Pool] = field(default_factory=list)
    databases: list[PoolDatabase] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)

    def setting(self, name: str) -> int:
        value = self.config.get(name, "0")
        return int(value) if value.isdigit() else 0

    @property
    def served_pools(self) -> list[Pool]:
        """Pools of real databases: the admin console's own pseudo-pool left out."""
        return [p for p in self.pools if p.database != ADMIN_DATABASE]

    def to_json(self) -> dict[str, Any]:
        return {
            "pools": [p.__dict__ for p in self.pools],
            "databases": [d.__dict__ for d in self.databases],
            "maxClientConn": self.setting("max_client_conn"),
            "stats": self.stats,
        }


def _rows(conn: psycopg.Connection[Any], command: str) -> list[dict[str, Any]]:
    cur = conn.execute(command)  # no parameters: psycopg sends it with the simple protocol
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]


def _read(dsn: str, connect_timeout: float) -> PoolerState:
    try:
        conn = psycopg.connect(
            dsn,
            connect_timeout=max(1, round(connect_timeout)),
            autocommit=True,
            application_name="pytest-maintcheck",
        )
    except psycopg.Error as exc:
        raise ProbeError(f"cannot connect to {redact_dsn(dsn)}: {describe_pg_error(exc)}") from None
    try:
        with conn:
            state = PoolerState(pools=[Pool.from_row(r) for r in _rows(conn, "SHOW POOLS")])
            state.databases = [
                PoolDatabase(
                    printable(str(r.get("name")), 100),
                    _int(r, "pool_size"),
                    _int(r, "reserve_pool"),
                    _int(r, "max_connections"),
                )
                for r in _rows(conn, "SHOW DATABASES")
            ]
            state.config = {
                str(r["key"]): printable(str(r["value"]), 200) for r in _rows(conn, "SHOW CONFIG")
            }
            state.stats = [
                {
                    "database": printable(str(r.get("database")), 100),
                    "avgWaitUs": _int(r, "avg_wait_time"),
                    "totalQueries": _int(r, "total_query_count"),
                }
                for r in _rows(conn, "SHOW STATS")
            ]
    except psycopg.Error as exc:
        raise ProbeError(f"PgBouncer console: {describe_pg_error(exc)}") from None
    return state


def read_pooler(dsn: str, *, connect_timeout: float = 10.0, timeout: float = 10.0) -> PoolerState:
    """The console's state, bounded: a PgBouncer that accepts and then hangs cannot hang us."""
    return run_bounded(connect_timeout + timeout, f"PgBouncer at {redact_dsn(dsn)}", _read, dsn,
                       connect_timeout)  # fmt: skip


@dataclass(frozen=True)
class ServerLimit:
    """What PostgreSQL allows: max_connections less the slots kept for superusers."""

    max_connections: int
    reserved: int

    @property
    def available(self) -> int:
        return max(self.max_connections - self.reserved, 0)


def server_limit(dsn: str, *, connect_timeout: float, statement_timeout: float) -> ServerLimit:
    """max_connections and its reserved slots (reserved_connections exists from PostgreSQL 16)."""

    def work() -> ServerLimit:
        with connect(dsn, connect_timeout=connect_timeout,
                     statement_timeout=statement_timeout) as conn:  # fmt: skip
            row = conn.execute(
                "SELECT current_setting('max_connections')::int,"
                " current_setting('superuser_reserved_connections')::int"
                " + coalesce(current_setting('reserved_connections', true)::int, 0)"
            ).fetchone()
        assert row is not None
        return ServerLimit(int(str(row[0])), int(str(row[1])))

    bound = session_bound(connect_timeout, statement_timeout, 1)
    return run_bounded(bound, f"database at {redact_dsn(dsn)}", work)
