"""One read-only snapshot of a PostgreSQL database's maintenance state, shared by the checks.

A snapshot costs one connection and a fixed number of catalog queries (SNAPSHOT_QUERIES, one
more when pg_stat_statements is installed), whatever the number of tables: every per-table
figure comes back in one result set and is judged in Python. The query text of
pg_stat_activity is never selected (it can hold patient data); statement texts from
pg_stat_statements are cut and their literals replaced before anyone sees them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.errors import Cause
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    server_address,
    session_bound,
)
from pytest_maintcheck.redact import printable

# Block accesses (hits + reads) since the stats reset below which a hit ratio means nothing.
MIN_CACHE_ACCESSES = 10_000
# An index never scanned is worth a finding only from this size on.
UNUSED_INDEX_MIN_BYTES = 1024 * 1024
LARGEST = 10
NAME_LIMIT = 300  # a schema-qualified name (2 x 63 bytes), with room for escaped codes
OLDEST_FROZEN = 5
SLOWEST_STATEMENTS = 20
STATEMENT_TEXT_LIMIT = 160


# ---------------------------------------------------------------------------- what we read


@dataclass(frozen=True)
class TableStats:
    schema: str
    name: str
    owner: str
    live: int
    dead: int
    reltuples: float
    vacuum_age: float | None  # seconds since the later of manual and auto vacuum; None: never
    analyze_age: float | None
    vacuums: int
    analyzes: int
    autovacuum_enabled: bool
    vacuum_threshold: float  # autovacuum's trigger base and scale, per-table reloptions applied
    vacuum_scale_factor: float
    total_bytes: int
    can_maintain: bool  # the probing role owns it (or the database): may VACUUM/ANALYZE it

    @property
    def qualified(self) -> str:
        """For messages: a quoted identifier may hold a newline or an escape code."""
        return printable(f"{self.schema}.{self.name}", NAME_LIMIT)

    @property
    def dead_ratio(self) -> float:
        total = self.live + self.dead
        return self.dead / total if total else 0.0

    @property
    def has_rows(self) -> bool:
        return self.live > 0 or self.reltuples > 0

    @property
    def autovacuum_trigger(self) -> float:
        """Dead tuples past which autovacuum should vacuum this table."""
        return self.vacuum_threshold + self.vacuum_scale_factor * max(self.reltuples, 0.0)


@dataclass(frozen=True)
class IndexStats:
    schema: str
    name: str
    table: str  # for messages only: already printable
    owner: str
    valid: bool
    unique: bool
    scans: int
    bytes: int
    signature: str  # table, columns, opclasses, expressions, predicate: equal means duplicate
    building: bool  # a CREATE INDEX CONCURRENTLY is still running on it
    can_maintain: bool

    @property
    def qualified(self) -> str:
        """For messages: a quoted identifier may hold a newline or an escape code."""
        return printable(f"{self.schema}.{self.name}", NAME_LIMIT)


@dataclass(frozen=True)
class Session:
    """A client session, described without its query text."""

    pid: int
    user: str
    application: str
    state: str
    same_database: bool
    transaction_age: float | None  # seconds since xact_start
    state_age: float | None  # seconds in the current state

    def describe(self) -> str:
        app = printable(self.application, 60) or "(no application_name)"
        return f"pid {self.pid} (user {printable(self.user, 60)}, application {app})"


@dataclass(frozen=True)
class Statement:
    queryid: int
    calls: int
    mean_ms: float
    text: str  # already redacted and cut


@dataclass(frozen=True)
class FrozenTable:
    name: str
    age: int


@dataclass
class Snapshot:
    """Everything the weekly checks judge for one database, read in one session."""

    database: str
    user: str
    taken_at: datetime
    server_version: int
    max_connections: int
    autovacuum_on: bool
    freeze_max_age: int
    size: int
    frozen_age: int
    blocks_hit: int
    blocks_read: int
    stats_reset: datetime | None
    reads_all_stats: bool  # pg_read_all_stats (pg_monitor): sees other users' sessions
    statements_schema: str | None
    tables: list[TableStats] = field(default_factory=list)
    indexes: list[IndexStats] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    oldest_frozen: list[FrozenTable] = field(default_factory=list)
    statements: list[Statement] | None = None
    statements_problem: str | None = None
    round_trips: int = 0

    @property
    def connections(self) -> int:
        return len(self.sessions) + 1  # the others, and this probe's own session

    @property
    def dead_tuples(self) -> int:
        return sum(t.dead for t in self.tables)

    @property
    def cache_accesses(self) -> int:
        return self.blocks_hit + self.blocks_read

    @property
    def cache_hit_ratio(self) -> float | None:
        if self.cache_accesses < MIN_CACHE_ACCESSES:
            return None
        return self.blocks_hit / self.cache_accesses

    def db_metrics(self) -> dict[str, Any]:
        """The DatabaseMaintenance record's metrics."""
        return {"size": self.size, "connections": self.connections, "deadTuples": self.dead_tuples}

    def largest_tables(self, n: int = LARGEST) -> list[dict[str, Any]]:
        top = sorted(self.tables, key=lambda t: t.total_bytes, reverse=True)[:n]
        return [{"table": t.qualified, "bytes": t.total_bytes, "rows": t.live} for t in top]

    def largest_indexes(self, n: int = LARGEST) -> list[dict[str, Any]]:
        top = sorted(self.indexes, key=lambda i: i.bytes, reverse=True)[:n]
        return [{"index": i.qualified, "table": i.table, "bytes": i.bytes} for i in top]


# ---------------------------------------------------------------------------- the queries

_DATABASE = """
SELECT current_database(), current_user, now(), current_setting('server_version_num')::int,
       current_setting('max_connections')::int, current_setting('autovacuum')::bool,
       current_setting('autovacuum_vacuum_threshold')::float8,
       current_setting('autovacuum_vacuum_scale_factor')::float8,
       current_setting('autovacuum_freeze_max_age')::bigint,
       pg_database_size(d.oid), age(d.datfrozenxid), s.blks_hit, s.blks_read, s.stats_reset,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
       (SELECT e.extnamespace::regnamespace::text FROM pg_extension e
         WHERE e.extname = 'pg_stat_statements')
  FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
 WHERE d.datname = current_database()
"""

# never the query column: it can hold patient data
_SESSIONS = """
SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(state, 'unknown'),
       datname IS NOT DISTINCT FROM current_database(),
       extract(epoch FROM now() - xact_start)::float8,
       extract(epoch FROM now() - state_change)::float8
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""

# Sizes come from relpages (kept by VACUUM and ANALYZE) for every table and index, and from the
# files only for the largest few: a stat() per relation would make the cost grow with the
# number of tables. Per-table counters come from the pg_stat_get_* functions on the oid.
_TABLES = """
SELECT nspname, relname, pg_get_userbyid(relowner),
       pg_stat_get_live_tuples(oid), pg_stat_get_dead_tuples(oid), reltuples::float8,
       extract(epoch FROM now() - greatest(pg_stat_get_last_vacuum_time(oid),
                                           pg_stat_get_last_autovacuum_time(oid)))::float8,
       extract(epoch FROM now() - greatest(pg_stat_get_last_analyze_time(oid),
                                           pg_stat_get_last_autoanalyze_time(oid)))::float8,
       pg_stat_get_vacuum_count(oid) + pg_stat_get_autovacuum_count(oid),
       pg_stat_get_analyze_count(oid) + pg_stat_get_autoanalyze_count(oid),
       coalesce(reloptions, '{}'),
       CASE WHEN biggest <= %(largest)s THEN pg_total_relation_size(oid)
            ELSE (relpages + toastpages)::bigint * current_setting('block_size')::int END,
       pg_has_role(relowner, 'USAGE') OR pg_has_role(datdba, 'USAGE')
  FROM (SELECT c.oid, n.nspname, c.relname, c.relowner, c.reltuples, c.reloptions, c.relpages,
               coalesce(t.relpages, 0) AS toastpages, d.datdba,
               row_number() OVER (ORDER BY c.relpages + coalesce(t.relpages, 0) DESC) AS biggest
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_database d ON d.datname = current_database()
          LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
         WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname !~ '^pg_toast') tables
 ORDER BY 1, 2
"""

_OLDEST_FROZEN = """
SELECT oid::regclass::text, frozen_age
  FROM (SELECT c.oid, age(c.relfrozenxid) AS frozen_age FROM pg_class c
         WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
         ORDER BY 2 DESC LIMIT %(oldest)s) oldest
 ORDER BY 2 DESC
"""

_INDEXES = """
SELECT nspname, relname, table_name, pg_get_userbyid(relowner), indisvalid, indisunique,
       pg_stat_get_numscans(indexrelid),
       CASE WHEN biggest <= %(largest)s THEN pg_relation_size(indexrelid)
            ELSE relpages::bigint * current_setting('block_size')::int END,
       concat_ws('|', indrelid, indkey::text, indclass::text, indcollation::text,
                 pg_get_expr(indexprs, indrelid), pg_get_expr(indpred, indrelid)),
       indexrelid = ANY (ARRAY(SELECT index_relid FROM pg_stat_progress_create_index)),
       pg_has_role(relowner, 'USAGE')
  FROM (SELECT i.*, n.nspname, ic.relname, ic.relowner, ic.relpages,
               tc.oid::regclass::text AS table_name,
               row_number() OVER (ORDER BY ic.relpages DESC) AS biggest
          FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_class tc ON tc.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = ic.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname !~ '^pg_toast') indexes
 ORDER BY 1, 2
"""

_STATEMENTS = """
SELECT queryid, calls, mean_exec_time, left(query, 2000)
  FROM {}.pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND toplevel AND queryid IS NOT NULL
 ORDER BY mean_exec_time DESC LIMIT %(slowest)s
"""

SNAPSHOT_QUERIES = 5  # database, sessions, tables, oldest frozen, indexes (+1: statements)

Row = tuple[Any, ...]


def _reloption(options: Iterable[str], name: str) -> str | None:
    prefix = name + "="
    return next((o[len(prefix) :] for o in options if o.startswith(prefix)), None)


def _table(row: Row, base: float, scale: float, autovacuum_on: bool) -> TableStats:
    options = list(row[10])
    enabled = _reloption(options, "autovacuum_enabled")
    threshold = _reloption(options, "autovacuum_vacuum_threshold")
    factor = _reloption(options, "autovacuum_vacuum_scale_factor")
    return TableStats(
        schema=row[0],
        name=row[1],
        owner=printable(row[2], NAME_LIMIT),
        live=int(row[3]),
        dead=int(row[4]),
        reltuples=float(row[5]),
        vacuum_age=row[6],
        analyze_age=row[7],
        vacuums=int(row[8]),
        analyzes=int(row[9]),
        autovacuum_enabled=autovacuum_on and (enabled or "true").lower() not in ("false", "off"),
        vacuum_threshold=float(threshold) if threshold else base,
        vacuum_scale_factor=float(factor) if factor else scale,
        total_bytes=int(row[11]),
        can_maintain=bool(row[12]),
    )


def _index(row: Row) -> IndexStats:
    schema, name, table, owner, *rest = row
    return IndexStats(
        schema, name, printable(table, NAME_LIMIT), printable(owner, NAME_LIMIT), *rest
    )


class _Reader:
    """Counts every statement sent, so the fixed cost of a snapshot can be shown."""

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.conn, self.round_trips = conn, 0

    def all(self, query: str | sql.Composed) -> list[Row]:
        self.round_trips += 1
        params = {"largest": LARGEST, "oldest": OLDEST_FROZEN, "slowest": SLOWEST_STATEMENTS}
        text = query if isinstance(query, str) else query.as_string(self.conn)
        used = {k: v for k, v in params.items() if f"%({k})s" in text}
        return self.conn.execute(query, used or None).fetchall()


def _missing_grant(database: Database, message: str) -> str:
    if "permission denied for database" not in message:
        return message
    try:
        parts = conninfo_to_dict(database.dsn)
    except psycopg.Error:
        parts = {}
    return (
        f"{message}; missing grant: GRANT CONNECT ON DATABASE "
        f"{parts.get('dbname') or '<database>'} TO {parts.get('user') or '<monitoring role>'}"
    )


def take_snapshot(target: DatabaseMaintenanceTarget, database: Database) -> Snapshot:
    """Read the whole maintenance state of one database in one read-only session.

    The whole session is bounded from outside too (``run_bounded``): statement_timeout is
    the server's, and a stopped backend or a dropped network would never answer.
    """
    statement_timeout = min(database.statement_timeout, target.timeout)
    bound = session_bound(database.connect_timeout, statement_timeout, SNAPSHOT_QUERIES + 1)
    return run_bounded(
        bound, f"{database.name} ({database.safe_dsn})", _take, database, statement_timeout
    )


def _take(database: Database, statement_timeout: float) -> Snapshot:
    try:
        with connect(
            database.dsn,
            connect_timeout=database.connect_timeout,
            statement_timeout=statement_timeout,
            application_name="pytest-maintcheck weekly",
        ) as conn:
            return _read(_Reader(conn))
    except ProbeError as exc:
        raise exc.reworded(_missing_grant(database, str(exc))) from None
    except psycopg.Error as exc:
        privilege = isinstance(exc, psycopg.errors.InsufficientPrivilege)
        raise ProbeError(
            f"reading {database.name} ({database.safe_dsn}): {describe_pg_error(exc)}",
            cause=Cause.MISSING_PRIVILEGE if privilege else Cause.FAILED,
            where=server_address(database.dsn),
        ) from None


def _read(reader: _Reader) -> Snapshot:
    rows = reader.all(_DATABASE)
    if not rows:
        raise ProbeError("pg_stat_database has no row for this database")
    d = rows[0]
    snap = Snapshot(
        database=printable(d[0], NAME_LIMIT),
        user=printable(d[1], NAME_LIMIT),
        taken_at=d[2],
        server_version=d[3],
        max_connections=d[4],
        autovacuum_on=bool(d[5]),
        freeze_max_age=int(d[8]),
        size=int(d[9]),
        frozen_age=int(d[10]),
        blocks_hit=int(d[11] or 0),
        blocks_read=int(d[12] or 0),
        stats_reset=d[13],
        reads_all_stats=bool(d[14]),
        statements_schema=d[15],
    )
    base, scale = float(d[6]), float(d[7])
    snap.sessions = [Session(*r) for r in reader.all(_SESSIONS)]
    snap.tables = [_table(r, base, scale, snap.autovacuum_on) for r in reader.all(_TABLES)]
    snap.oldest_frozen = [
        FrozenTable(printable(r[0], NAME_LIMIT), int(r[1])) for r in reader.all(_OLDEST_FROZEN)
    ]
    snap.indexes = [_index(r) for r in reader.all(_INDEXES)]
    if snap.statements_schema is not None:
        query = sql.SQL(_STATEMENTS).format(sql.Identifier(snap.statements_schema))
        try:
            found = reader.all(query)
        except psycopg.Error as exc:  # installed but not in shared_preload_libraries
            snap.statements_problem = describe_pg_error(exc)
        else:
            snap.statements = [
                Statement(int(r[0]), int(r[1]), float(r[2]), redact_statement(r[3])) for r in found
            ]
    snap.round_trips = reader.round_trips
    return snap


# ---------------------------------------------------------------------------- sharing


class SnapshotCache:
    """One snapshot per database per run, shared by its checks; retaken after a repair.

    A failure is cached too: an unreachable database costs one connection attempt per run,
    and each of its checks reports it.
    """

    def __init__(
        self,
        take: Callable[[DatabaseMaintenanceTarget, Database], Snapshot] = take_snapshot,
    ) -> None:
        self._take = take
        self._taken: dict[str, Snapshot | ProbeError] = {}
        self.taken = 0

    def get(self, target: DatabaseMaintenanceTarget, database: Database) -> Snapshot:
        if target.database not in self._taken:
            self.taken += 1
            try:
                self._taken[target.database] = self._take(target, database)
            except ProbeError as exc:
                self._taken[target.database] = exc
        found = self._taken[target.database]
        if isinstance(found, ProbeError):
            raise found
        return found

    def refresh(self, target: DatabaseMaintenanceTarget, database: Database) -> Snapshot:
        """Measure again, after a repair changed the database."""
        self._taken.pop(target.database, None)
        return self.get(target, database)


# ---------------------------------------------------------------------------- derived facts


def past_autovacuum_trigger(snap: Snapshot, min_dead: int) -> list[TableStats]:
    """Tables whose dead tuples passed autovacuum's own trigger without autovacuum reaching them."""
    return [t for t in snap.tables if t.dead >= max(min_dead, 1) and t.dead > t.autovacuum_trigger]


def why_not_vacuumed(table: TableStats, snap: Snapshot) -> str:
    if not snap.autovacuum_on:
        return "autovacuum is off for the whole server"
    if not table.autovacuum_enabled:
        return "autovacuum_enabled=false on this table"
    return "autovacuum has not reached it"


def duplicate_indexes(snap: Snapshot) -> list[list[IndexStats]]:
    groups: dict[str, list[IndexStats]] = {}
    for index in snap.indexes:
        if index.valid:
            groups.setdefault(index.signature, []).append(index)
    return [g for g in groups.values() if len(g) > 1]


def unused_indexes(snap: Snapshot, min_bytes: int = UNUSED_INDEX_MIN_BYTES) -> list[IndexStats]:
    """Valid, non-unique indexes never scanned since the stats reset, over a non-trivial size."""
    return [
        i
        for i in snap.indexes
        if i.valid and not i.unique and i.scans == 0 and i.bytes >= min_bytes
    ]


def invalid_indexes(snap: Snapshot) -> list[IndexStats]:
    return [i for i in snap.indexes if not i.valid and not i.building]


def open_transactions(snap: Snapshot) -> list[Session]:
    """Sessions of this database inside a transaction, oldest first."""
    found = [s for s in snap.sessions if s.same_database and s.transaction_age is not None]
    return sorted(found, key=lambda s: s.transaction_age or 0.0, reverse=True)


def sessions_by_state(snap: Snapshot) -> dict[str, int]:
    counts: dict[str, int] = {"active": 1}  # this probe
    for s in snap.sessions:
        counts[s.state] = counts.get(s.state, 0) + 1
    return counts


# ---------------------------------------------------------------------------- statement text

_LITERAL = re.compile(
    r"""\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$"""  # dollar-quoted body
    r"""|(?<![\w$])[Ee]'(?:[^'\\]|''|\\.)*'"""  # E'...': the only strings a backslash escapes in
    r"""|(?:[BbXx]|[Uu]&)?'(?:[^']|'')*'"""  # standard, bit and unicode strings ('C:\' ends here)
    r"""|'.*"""  # an unterminated literal (a cut text): hide the rest
    r"""|(?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?""",  # numbers, not $1 or t1
    re.DOTALL,
)
_SPACE = re.compile(r"\s+")


def redact_statement(text: object, limit: int = STATEMENT_TEXT_LIMIT) -> str:
    """A statement's shape without its values: literals become ``?``, then cut to ``limit``."""
    shown = _LITERAL.sub("?", str(text or ""))
    return printable(_SPACE.sub(" ", shown).strip(), limit)


def never(age: float | None) -> float:
    return math.inf if age is None else age
