"""Open sessions and their idle time and lifetime, for the automatic logoff check.

Two sources: PostgreSQL's ``pg_stat_activity`` of the configured database's whole cluster
(client backends of every database; the query text is never selected), or an application
sessions table read with the operator's ``query`` returning sessionId, username, createdAt,
lastSeenAt. Both run in a read-only session with a statement timeout (``postgres.connect``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
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

APP_COLUMNS = ("sessionid", "username", "createdat", "lastseenat")

# another role's backend shows NULL state and backend_type unless we hold pg_read_all_stats
_PG_SESSIONS = """
-- every database of the cluster: a session left open in an unlisted database is one too
SELECT pid, usename, state,
       extract(epoch FROM now() - backend_start)::float8 AS lifetime,
       CASE WHEN state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)')
            THEN extract(epoch FROM now() - state_change)::float8 END AS idle,
       datname, datname IS NOT DISTINCT FROM current_database()
  FROM pg_stat_activity
 WHERE (backend_type = 'client backend' OR backend_type IS NULL)  -- NULL: hidden from us
   AND pid <> pg_backend_pid()
 ORDER BY pid
"""


@dataclass(frozen=True)
class Session:
    label: str  # what a finding names: "pid 4242" or a hash of an application session id
    username: str
    lifetime: float | None  # seconds since login
    idle: float | None  # seconds since the last activity; None while active


@dataclass
class SessionScan:
    source: str  # "pg_stat_activity" | "query"
    sessions: list[Session]
    hidden: int = 0  # sessions whose times we may not read (missing privilege)


def opaque_session_label(session_id: object) -> str:
    """An application session id may be a bearer token: only a short digest is shown."""
    digest = hashlib.sha256(str(session_id).encode("utf-8", "replace")).hexdigest()
    return f"session sha256:{digest[:12]}"


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _aware(value: object, column: str) -> datetime:
    if not isinstance(value, datetime):
        raise ProbeError(f"the sessions query returned a non-timestamp {column}")
    # timestamp without time zone: taken as UTC, as the application is expected to store it
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def pg_sessions(dsn: str, *, connect_timeout: float, statement_timeout: float) -> SessionScan:
    """Client sessions of the database ``dsn`` names, from pg_stat_activity."""
    bound = session_bound(connect_timeout, statement_timeout, 1)
    return run_bounded(
        bound, f"{redact_dsn(dsn)}", _pg_sessions, dsn, connect_timeout, statement_timeout
    )


def _pg_sessions(dsn: str, connect_timeout: float, statement_timeout: float) -> SessionScan:
    scan = SessionScan("pg_stat_activity", [])
    with connect(dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout) as c:
        try:
            rows = c.execute(_PG_SESSIONS).fetchall()
        except psycopg.Error as exc:
            raise ProbeError(f"cannot read pg_stat_activity: {describe_pg_error(exc)}") from None
    for pid, user, state, lifetime, idle, database, ours in rows:
        if state is None:
            scan.hidden += 1
            continue
        where = "" if ours else f" in database {printable(database or '?', 64)}"
        scan.sessions.append(
            Session(
                f"pid {pid}{where}",
                printable(user or "?", 64),
                _seconds(lifetime),
                _seconds(idle),
            )
        )
    return scan


def app_sessions(
    dsn: str, query: str, *, now: datetime, connect_timeout: float, statement_timeout: float
) -> SessionScan:
    """Sessions from the application's table: the query returns sessionId, username,
    createdAt, lastSeenAt (any case); ages are taken against ``now``."""
    bound = session_bound(connect_timeout, statement_timeout, 1)
    rows, where = run_bounded(
        bound, redact_dsn(dsn), _app_rows, dsn, query, connect_timeout, statement_timeout
    )
    scan = SessionScan("query", [])
    for row in rows:
        sid, user, created, seen = (row[i] for i in where)
        created_at = _aware(created, "createdAt")
        seen_at = _aware(seen, "lastSeenAt")
        scan.sessions.append(
            Session(
                opaque_session_label(sid),
                printable(user if user is not None else "?", 64),
                max(0.0, (now - created_at).total_seconds()),
                max(0.0, (now - seen_at).total_seconds()),
            )
        )
    return scan


def _app_rows(
    dsn: str, query: str, connect_timeout: float, statement_timeout: float
) -> tuple[list[tuple[Any, ...]], list[int]]:
    with connect(dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout) as c:
        try:
            cursor = c.execute(query.encode("utf-8"))
            names = [d.name.lower() for d in cursor.description or ()]
            missing = [col for col in APP_COLUMNS if col not in names]
            if missing:
                raise ProbeError(
                    "the sessions query must return sessionId, username, createdAt, lastSeenAt;"
                    f" missing {', '.join(missing)}"
                )
            where = [names.index(col) for col in APP_COLUMNS]
            rows = cursor.fetchall()
        except psycopg.Error as exc:
            # the operator's query text is never echoed: only what the server said
            raise ProbeError(f"the sessions query failed: {describe_pg_error(exc)}") from None
    return rows, where
