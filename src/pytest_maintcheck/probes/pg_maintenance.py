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
from collections.abc import Callable, Iterable, Sequence
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
from pytest_maintcheck.verdict import Threshold, Verdict

# Block accesses (hits + reads) since the stats reset below which a hit ratio means nothing.
MIN_CACHE_ACCESSES = 10_000
# An index never scanned is worth a finding only from this size on.
UNUSED_INDEX_MIN_BYTES = 1024 * 1024
LARGEST = 10
NAME_LIMIT = 300  # a schema-qualified name (2 x 63 bytes), with room for escaped codes
OLDEST_FROZEN = 5
SLOWEST_STATEMENTS = 20
STATEMENT_TEXT_LIMIT = 160
# pgstattuple_approx reads every page not all-visible: only this many tables per snapshot
APPROX_TABLES = 10

# pg_get_keywords() of PostgreSQL 15 with catcode <> 'U': quote_ident() quotes these
_KEYWORDS = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization between bigint
    binary bit boolean both case cast char character check coalesce collate collation column
    concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user dec decimal default
    deferrable desc distinct do else end except exists extract false fetch float for foreign
    freeze from full grant greatest group grouping having ilike in initially inner inout int
    integer intersect interval into is isnull join lateral leading least left like limit
    localtime localtimestamp national natural nchar none normalize not notnull null nullif
    numeric offset on only or order out outer overlaps overlay placing position precision
    primary real references returning right row select session_user setof similar smallint
    some substring symmetric table tablesample then time timestamp to trailing treat trim
    true union unique user using values varchar variadic verbose when where window with
    xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
    xmlroot xmlserialize xmltable""".split()  # noqa: SIM905 - one word list, as the server prints it
)
_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def quote_ident(name: str) -> str:
    """An identifier as SQL text, quoted as PostgreSQL's quote_ident() quotes it."""
    if _PLAIN_IDENTIFIER.fullmatch(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def sql_name(*parts: str) -> str:
    """A (schema-)qualified name for a suggested statement: valid SQL, printable."""
    return printable(".".join(quote_ident(p) for p in parts), NAME_LIMIT)


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
    inserts_since_vacuum: int = 0
    changes_since_analyze: int = 0
    insert_trigger: float | None = None  # autovacuum's insert trigger; None: disabled
    analyze_trigger: float = 0.0
    # no vacuum or analyze since the statistics were reset: the dead counter started at 0 then
    counters_reset: bool = False
    estimated_dead: int | None = None  # from a signal that survives a reset, when counters_reset
    estimated_ratio: float | None = None
    estimate_source: str | None = None

    @property
    def qualified(self) -> str:
        """For messages: a quoted identifier may hold a newline or an escape code."""
        return printable(f"{self.schema}.{self.name}", NAME_LIMIT)

    @property
    def sql_name(self) -> str:
        """For suggested statements: quoted as SQL needs it."""
        return sql_name(self.schema, self.name)

    @property
    def counted_ratio(self) -> float:
        total = self.live + self.dead
        return self.dead / total if total else 0.0

    @property
    def estimated(self) -> bool:
        """The estimate says more than the (reset) counter: judge the estimate."""
        return self.estimated_ratio is not None and self.estimated_ratio > self.counted_ratio

    @property
    def dead_ratio(self) -> float:
        if self.estimated and self.estimated_ratio is not None:
            return self.estimated_ratio
        return self.counted_ratio

    @property
    def dead_count(self) -> int:
        return max(self.dead, self.estimated_dead or 0) if self.estimated else self.dead

    def describe_dead(self) -> str:
        """What the dead tuple figure is and where it comes from."""
        if self.estimated:
            return f"about {self.dead_count} dead rows, estimated by {self.estimate_source}"
        return f"{self.dead} dead of {self.live + self.dead} rows"

    @property
    def has_rows(self) -> bool:
        return self.live > 0 or self.reltuples > 0 or self.dead_count > 0

    @property
    def autovacuum_trigger(self) -> float:
        """Dead tuples past which autovacuum should vacuum this table."""
        return self.vacuum_threshold + self.vacuum_scale_factor * max(self.reltuples, 0.0)

    @property
    def vacuum_has_work(self) -> bool:
        """Dead tuples, or inserts past autovacuum's insert trigger: else nothing to vacuum."""
        trigger = self.insert_trigger
        return self.dead_count > 0 or (trigger is not None and self.inserts_since_vacuum > trigger)

    @property
    def analyze_has_work(self) -> bool:
        """Changes past autoanalyze's trigger (or dead space after a reset): stale statistics."""
        return self.changes_since_analyze > self.analyze_trigger or (
            self.counters_reset and self.dead_count > 0
        )


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

    @property
    def sql_name(self) -> str:
        return sql_name(self.schema, self.name)


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
    database: str = ""  # any database of the cluster: a long transaction holds back all of them

    def describe(self) -> str:
        app = printable(self.application, 60) or "(no application_name)"
        where = "" if self.same_database else f", database {printable(self.database, 64)}"
        return f"pid {self.pid} (user {printable(self.user, 60)}, application {app}{where})"


@dataclass(frozen=True)
class DatabaseAge:
    """age(datfrozenxid) of one database of the cluster: wraparound is cluster-wide."""

    name: str  # printable
    age: int


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
    # when the counters of this database started: its own reset, or the cluster's (a crash
    # restart discards every counter and leaves pg_stat_database.stats_reset NULL)
    stats_since: datetime | None
    reads_all_stats: bool  # pg_read_all_stats (pg_monitor): sees other users' sessions
    statements_schema: str | None
    approx_schema: str | None = None  # pgstattuple, when installed and executable by us
    database_ages: list[DatabaseAge] = field(default_factory=list)
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
        return sum(t.dead_count for t in self.tables)

    @property
    def counted_since(self) -> str:
        """'the statistics were reset at ...', for messages about what the counters cannot say."""
        if self.stats_since is None:
            return "the statistics began"
        return f"the statistics were reset at {self.stats_since:%Y-%m-%d %H:%M %Z}".rstrip()

    @property
    def counted_for(self) -> float:
        """Seconds the counters have been counting: the least age of anything they never saw."""
        if self.stats_since is None:
            return math.inf
        return max(0.0, (self.taken_at - self.stats_since).total_seconds())

    @property
    def oldest_database(self) -> DatabaseAge:
        own = DatabaseAge(self.database, self.frozen_age)
        return max([own, *self.database_ages], key=lambda d: d.age)

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
         WHERE e.extname = 'pg_stat_statements'),
       greatest(s.stats_reset, (SELECT a.stats_reset FROM pg_stat_archiver a)),
       (SELECT x.nspname  -- OFFSET 0: look the function up in pgstattuple's schema only
          FROM (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n
                    ON n.oid = e.extnamespace WHERE e.extname = 'pgstattuple' OFFSET 0) x
         WHERE CASE WHEN has_schema_privilege(x.nspname, 'USAGE')
                    THEN has_function_privilege(to_regprocedure(
                           quote_ident(x.nspname) || '.pgstattuple_approx(regclass)'), 'EXECUTE')
               END),
       (SELECT json_agg(json_build_array(o.datname, age(o.datfrozenxid))) FROM pg_database o
         WHERE o.oid <> d.oid),
       current_setting('autovacuum_vacuum_insert_threshold')::float8,
       current_setting('autovacuum_vacuum_insert_scale_factor')::float8,
       current_setting('autovacuum_analyze_threshold')::float8,
       current_setting('autovacuum_analyze_scale_factor')::float8
  FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
 WHERE d.datname = current_database()
"""

# never the query column: it can hold patient data
_SESSIONS = """
SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(state, 'unknown'),
       datname IS NOT DISTINCT FROM current_database(),
       extract(epoch FROM now() - xact_start)::float8,
       extract(epoch FROM now() - state_change)::float8,
       coalesce(datname, '')
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""

# Sizes come from relpages (kept by VACUUM and ANALYZE) for every table and index, and from the
# files only for the largest few: a stat() per relation would make the cost grow with the
# number of tables. Per-table counters come from the pg_stat_get_* functions on the oid.
#
# A table without any vacuum or analyze since the statistics reset has a dead tuple counter
# that started at 0 then: its dead space is estimated from what a reset does not touch.
# First from pg_class and pg_stats, as check_postgres estimates bloat (pages the live rows
# would need at their average width against the pages the table has; only where the role may
# read the columns' statistics), else by pgstattuple_approx for the largest few such tables.
_TABLES = """
SELECT nspname, relname, pg_get_userbyid(relowner),
       pg_stat_get_live_tuples(oid), pg_stat_get_dead_tuples(oid), reltuples::float8,
       extract(epoch FROM now() - last_vacuum)::float8,
       extract(epoch FROM now() - last_analyze)::float8,
       pg_stat_get_vacuum_count(oid) + pg_stat_get_autovacuum_count(oid),
       pg_stat_get_analyze_count(oid) + pg_stat_get_autoanalyze_count(oid),
       coalesce(reloptions, '{{}}'),
       CASE WHEN biggest <= %(largest)s THEN pg_total_relation_size(oid)
            ELSE (relpages + toastpages)::bigint * current_setting('block_size')::int END,
       pg_has_role(relowner, 'USAGE') OR pg_has_role(datdba, 'USAGE'),
       pg_stat_get_ins_since_vacuum(oid), pg_stat_get_mod_since_analyze(oid),
       counters_reset, wasted_rows, wasted_share, {approx}
  FROM (SELECT *,
               row_number() OVER (PARTITION BY counters_reset AND wasted_share IS NULL
                                  ORDER BY relpages DESC) AS unestimated_rank
          FROM (SELECT *,
                       CASE WHEN estimable
                            THEN greatest(relpages - ceil(reltuples / per_page), 0) * per_page
                       END AS wasted_rows,
                       CASE WHEN estimable
                            THEN greatest(1 - ceil(reltuples / per_page) / relpages, 0)
                       END::float8 AS wasted_share
                  FROM (SELECT *, counters_reset AND per_page > 0 AND reltuples >= 0
                                  AND relpages > 0 AND live_columns = stats_columns AS estimable
                  FROM (SELECT c.oid, n.nspname, c.relname, c.relowner, c.reltuples::float8,
                               c.reloptions, c.relpages, coalesce(t.relpages, 0) AS toastpages,
                               d.datdba,
                               row_number() OVER (ORDER BY c.relpages + coalesce(t.relpages, 0)
                                                  DESC) AS biggest,
                               greatest(pg_stat_get_last_vacuum_time(c.oid),
                                        pg_stat_get_last_autovacuum_time(c.oid)) AS last_vacuum,
                               greatest(pg_stat_get_last_analyze_time(c.oid),
                                        pg_stat_get_last_autoanalyze_time(c.oid)) AS last_analyze,
                               coalesce(pg_stat_get_last_vacuum_time(c.oid),
                                        pg_stat_get_last_autovacuum_time(c.oid),
                                        pg_stat_get_last_analyze_time(c.oid),
                                        pg_stat_get_last_autoanalyze_time(c.oid)) IS NULL
                                 AS counters_reset,
                               (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid
                                   AND a.attnum > 0 AND NOT a.attisdropped) AS live_columns,
                               coalesce(st.columns, 0) AS stats_columns,
                               -- rows a page holds: page header 24, tuple header 24 and a
                               -- 4-byte line pointer each, data padded to 8, fillfactor applied
                               floor((current_setting('block_size')::int - 24)
                                     * coalesce((SELECT split_part(o, '=', 2)::int
                                                   FROM unnest(c.reloptions) o
                                                  WHERE o LIKE 'fillfactor=%%'), 100) / 100.0
                                     / (28 + ceil(coalesce(st.width, 0) / 8) * 8)) AS per_page
                          FROM pg_class c
                          JOIN pg_namespace n ON n.oid = c.relnamespace
                          JOIN pg_database d ON d.datname = current_database()
                          LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
                          LEFT JOIN (SELECT schemaname, tablename, count(*) AS columns,
                                            sum((1 - null_frac) * avg_width) AS width
                                       FROM pg_stats WHERE NOT inherited
                                      GROUP BY 1, 2) st
                                 ON st.schemaname = n.nspname AND st.tablename = c.relname
                         WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
                           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                           AND n.nspname !~ '^pg_toast') counted) judged) estimated) tables
 ORDER BY 1, 2
"""
_NO_APPROX = sql.SQL("NULL::bigint[]")
# [dead, live] tuples; in a CASE, so it runs only for the largest tables whose counters were
# reset and that no estimate covers
_APPROX = """CASE WHEN counters_reset AND wasted_share IS NULL
                  AND unestimated_rank <= %(approx)s
             THEN (SELECT ARRAY[a.dead_tuple_count, a.approx_tuple_count]
                     FROM {}.pgstattuple_approx(oid) a) END"""

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


@dataclass(frozen=True)
class _Autovacuum:
    """The server's autovacuum settings; a table's reloptions override them."""

    on: bool
    threshold: float
    scale: float
    insert_threshold: float
    insert_scale: float
    analyze_threshold: float
    analyze_scale: float

    def setting(self, options: list[str], name: str, default: float) -> float:
        value = _reloption(options, name)
        return float(value) if value else default


def _table(row: Row, av: _Autovacuum) -> TableStats:
    options = list(row[10])
    enabled = _reloption(options, "autovacuum_enabled")
    reltuples = max(float(row[5]), 0.0)
    insert_base = av.setting(options, "autovacuum_vacuum_insert_threshold", av.insert_threshold)
    insert_scale = av.setting(options, "autovacuum_vacuum_insert_scale_factor", av.insert_scale)
    counters_reset = bool(row[15])
    estimate: tuple[int, float, str] | None = None
    if counters_reset and row[17] is not None:
        estimate = (int(row[16]), float(row[17]), "pg_class and pg_stats (as check_postgres)")
    elif counters_reset and row[18] is not None and sum(row[18]) > 0:
        dead, live = (int(n) for n in row[18])
        estimate = (dead, dead / (dead + live), "pgstattuple_approx")
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
        autovacuum_enabled=av.on and (enabled or "true").lower() not in ("false", "off"),
        vacuum_threshold=av.setting(options, "autovacuum_vacuum_threshold", av.threshold),
        vacuum_scale_factor=av.setting(options, "autovacuum_vacuum_scale_factor", av.scale),
        total_bytes=int(row[11]),
        can_maintain=bool(row[12]),
        inserts_since_vacuum=int(row[13] or 0),
        changes_since_analyze=int(row[14] or 0),
        insert_trigger=None if insert_base < 0 else insert_base + insert_scale * reltuples,
        analyze_trigger=av.setting(options, "autovacuum_analyze_threshold", av.analyze_threshold)
        + av.setting(options, "autovacuum_analyze_scale_factor", av.analyze_scale) * reltuples,
        counters_reset=counters_reset,
        estimated_dead=estimate[0] if estimate else None,
        estimated_ratio=estimate[1] if estimate else None,
        estimate_source=estimate[2] if estimate else None,
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
        params = {
            "largest": LARGEST,
            "oldest": OLDEST_FROZEN,
            "slowest": SLOWEST_STATEMENTS,
            "approx": APPROX_TABLES,
        }
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
    dbname, user = parts.get("dbname"), parts.get("user")
    return (
        f"{message}; missing grant: GRANT CONNECT ON DATABASE "
        f"{sql_name(str(dbname)) if dbname else '<database>'} TO "
        f"{sql_name(str(user)) if user else '<monitoring role>'}"
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
        stats_since=d[16],
        reads_all_stats=bool(d[14]),
        statements_schema=d[15],
        approx_schema=d[17],
        database_ages=[
            DatabaseAge(printable(str(name), NAME_LIMIT), int(age)) for name, age in d[18] or []
        ],
    )
    av = _Autovacuum(snap.autovacuum_on, float(d[6]), float(d[7]), *(float(x) for x in d[19:23]))
    snap.sessions = [Session(*r) for r in reader.all(_SESSIONS)]
    approx = (
        sql.SQL(_APPROX).format(sql.Identifier(snap.approx_schema))
        if snap.approx_schema
        else _NO_APPROX
    )
    snap.tables = [_table(r, av) for r in reader.all(sql.SQL(_TABLES).format(approx=approx))]
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
    return [
        t
        for t in snap.tables
        if t.dead_count >= max(min_dead, 1) and t.dead_count > t.autovacuum_trigger
    ]


def has_work(table: TableStats, task: str) -> bool:
    """Would autovacuum have reason to visit it? A small quiet table is not neglected."""
    work = table.vacuum_has_work if task == "vacuum" else table.analyze_has_work
    return table.has_rows and work


def least_age(snap: Snapshot, table: TableStats, task: str) -> float:
    """Seconds since the last vacuum/analyze; with no record, at least since the counters began."""
    age = table.vacuum_age if task == "vacuum" else table.analyze_age
    return snap.counted_for if age is None else age


def neglected(snap: Snapshot, limit: Threshold | None, task: str) -> list[TableStats]:
    """Tables with work for ``task`` (vacuum or analyze) whose last one is past ``limit``."""
    if limit is None:
        return []
    return [
        t
        for t in snap.tables
        if has_work(t, task) and limit.judge(least_age(snap, t, task)) is not Verdict.PASS
    ]


def age_unknown(snap: Snapshot, limit: Threshold | None, task: str) -> list[TableStats]:
    """Tables with work but no record since a reset recent enough that they may be fine."""
    if limit is None or math.isinf(snap.counted_for):
        return []
    return [
        t
        for t in snap.tables
        if has_work(t, task)
        and (t.vacuum_age if task == "vacuum" else t.analyze_age) is None
        and limit.judge(snap.counted_for) is Verdict.PASS
    ]


def dead_space_unknown(snap: Snapshot) -> list[TableStats]:
    """Tables whose dead tuple counter was reset and that no estimate covers.

    reltuples >= 0: a vacuum, analyze or index build measured it once, so the record of its
    maintenance was lost rather than never made.
    """
    return [
        t
        for t in snap.tables
        if t.counters_reset and t.estimated_ratio is None and t.has_rows and t.reltuples >= 0
    ]


def some_tables(tables: Sequence[TableStats], shown: int = 5) -> str:
    names = ", ".join(t.qualified for t in tables[:shown])
    more = f" and {len(tables) - shown} more" if len(tables) > shown else ""
    return f"{len(tables)} table{'s' if len(tables) != 1 else ''} ({names}{more})"


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
    """Sessions of any database inside a transaction, oldest first: an old snapshot anywhere
    keeps VACUUM from removing dead tuples in every database of the cluster."""
    found = [s for s in snap.sessions if s.transaction_age is not None]
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
