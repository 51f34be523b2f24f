"""Review findings (issue 8, point 8 and 10): statistics that were reset, cluster-wide checks,
and suggested statements that are valid SQL.

After pg_stat_reset() or a crash restart the per-table counters start again at zero: a table
vacuumed minutes ago must not read "never", and a table full of dead tuples must not pass
because its counter restarted. Everything here runs against the real session cluster (the
crash restart against a cluster of its own), as the pg_monitor-only role the checks are meant
to run as.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_maintenance as pgm
from pytest_maintcheck.probes.sessions import pg_sessions
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from pytest_maintcheck.verdict import Threshold
from test_database_checks import Role, flush, monitor, run_weekly

__all__ = ["monitor"]  # the fixture, used by name


def _dead_table(db: SandboxDatabase, table: str, *, analyze: bool = True) -> None:
    """10,000 rows, 80% deleted, autovacuum off for it; ANALYZE records the live count."""
    with db.connect() as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int, ward int) WITH (autovacuum_enabled = off)").format(
                sql.Identifier(table)
            )
        )
        ident = sql.Identifier(table)
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, g % 100 FROM generate_series(1, 10000) g").format(
                ident
            )
        )
        conn.execute(sql.SQL("DELETE FROM {} WHERE id > 2000").format(ident))
        if analyze:
            conn.execute(sql.SQL("ANALYZE {}").format(ident))
        flush(conn)


def _reset_statistics(db: SandboxDatabase) -> None:
    with db.connect() as conn:
        conn.execute("SELECT pg_stat_reset()")
        row = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 1"
        ).fetchone()
    assert row in (None, (0,)), "pg_stat_reset() must have restarted the counters"


def _grant_select(db: SandboxDatabase, role: Role, table: str) -> None:
    with db.connect() as conn:
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(table), sql.Identifier(role.name)
            )
        )


# ---------------------------------------------------------------------------- stats reset


def test_a_table_vacuumed_before_a_stats_reset_is_unknown_not_never(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    _dead_table(pg_db, "vitals")
    with pg_db.connect() as conn:
        conn.execute("VACUUM (ANALYZE) vitals")  # vacuumed just now
    _reset_statistics(pg_db)
    with pg_db.connect() as conn:
        conn.execute("DELETE FROM vitals WHERE id <= 10")  # new work, counted since the reset
        flush(conn)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "vacuum_age")
    assert run.outcomes == {"passed": 1}, run.stdout
    message = run.results()["test_vacuum_age"]["message"]
    assert "last vacuum of 1 table (public.vitals) unknown since the statistics were reset at " in (
        message
    )
    assert "never" not in message


def test_dead_tuples_hidden_by_a_reset_are_found_by_the_pg_class_estimate(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    _dead_table(pg_db, "vitals")
    _grant_select(pg_db, monitor, "vitals")  # pg_stats shows a column's statistics only then
    _reset_statistics(pg_db)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples")
    assert run.outcomes == {"failed": 1}, run.stdout
    result = run.results()["test_dead_tuples"]
    assert "public.vitals (about " in result["message"]
    assert (
        "dead rows, estimated by pg_class and pg_stats (as check_postgres)" in (result["message"])
    )
    assert "its counter restarted when the statistics were reset at" in result["message"]
    assert 0.75 <= result["metrics"]["deadTupleRatio"] <= 0.85


def test_dead_tuples_hidden_by_a_reset_are_found_by_pgstattuple_approx(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    """No SELECT on the table: pg_stats is hidden, pgstattuple_approx (pg_monitor may) is not."""
    with pg_db.connect() as conn:
        conn.execute("CREATE EXTENSION pgstattuple")
    _dead_table(pg_db, "vitals", analyze=False)
    _reset_statistics(pg_db)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples or vacuum_age")
    assert run.outcomes == {"failed": 1, "passed": 1}, run.stdout
    dead = run.results()["test_dead_tuples"]
    assert (
        "public.vitals (about 8000 dead rows, estimated by pgstattuple_approx" in (dead["message"])
    )
    assert dead["metrics"]["deadTupleRatio"] == pytest.approx(0.8)
    # the neglected table stays in the findings of the age check too, as unknown
    age = run.results()["test_vacuum_age"]["message"]
    assert "last vacuum of 1 table (public.vitals) unknown since the statistics were reset" in age


def test_without_an_estimate_the_reset_counter_is_named_not_trusted(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    _dead_table(pg_db, "vitals")
    _reset_statistics(pg_db)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples")
    assert run.outcomes == {"passed": 1}
    message = run.results()["test_dead_tuples"]["message"]
    assert "dead tuples of 1 table (public.vitals) unknown: counted only since the statistics" in (
        message
    )
    assert "CREATE EXTENSION pgstattuple" in message


def test_after_a_crash_restart_the_cluster_reset_time_is_used() -> None:
    """A crash restart discards every counter and leaves pg_stat_database.stats_reset NULL."""
    with PostgresCluster() as cluster:
        db = cluster.create_database("ward")
        with db.connect() as conn:
            conn.execute("CREATE TABLE vitals (id int) WITH (autovacuum_enabled = off)")
            conn.execute("INSERT INTO vitals SELECT generate_series(1, 100)")
            conn.execute("VACUUM vitals")
            conn.execute("CHECKPOINT")  # the sandbox commits asynchronously: keep pg_class
        victim = cluster.connect()  # open while it is killed: a closed one's backend is gone
        backend = victim.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        os.kill(int(backend[0]), signal.SIGKILL)  # the postmaster restarts every backend
        with contextlib.suppress(Exception):  # its server went away under it: nothing to close
            victim.close()
        _snapshot_when_back(db)
        with db.connect() as conn:
            conn.execute("DELETE FROM vitals WHERE id <= 5")
            flush(conn)
        snap = _snapshot_when_back(db)
        for _ in range(50):  # the counters reach the server when the session has flushed
            if snap.tables[0].dead:
                break
            time.sleep(0.1)
            snap = _snapshot_when_back(db)
    assert snap.stats_reset is None
    assert snap.stats_since is not None
    (vitals,) = snap.tables
    assert vitals.vacuum_age is None
    limit = Threshold("vacuumAge", warn=7 * 86400, fail=14 * 86400)  # the defaults
    assert pgm.neglected(snap, limit, "vacuum") == []  # not "never": unknown
    assert pgm.age_unknown(snap, limit, "vacuum") == [vitals]


def _snapshot_when_back(db: SandboxDatabase) -> pgm.Snapshot:
    deadline = time.monotonic() + 30
    os.environ["PGPASSWORD"] = db.password
    try:
        while True:
            try:
                return pgm.take_snapshot(
                    DatabaseMaintenanceTarget("primary"), Database("primary", db.dsn)
                )
            except pgm.ProbeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        del os.environ["PGPASSWORD"]


# ---------------------------------------------------------------------------- cluster-wide


@pytest.fixture
def other_database(pg_cluster: PostgresCluster) -> Iterator[SandboxDatabase]:
    db = pg_cluster.create_database(f"unlisted_{uuid.uuid4().hex[:8]}")
    try:
        yield db
    finally:
        pg_cluster.drop_database(db.name)


def test_a_long_transaction_in_an_unlisted_database_is_found(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
    other_database: SandboxDatabase,
) -> None:
    with other_database.connect(application_name="night-batch") as held:
        held.autocommit = False
        held.execute("SELECT 1")
        pid = held.info.backend_pid
        run = run_weekly(
            pytester, monkeypatch, pg_db, monitor, "-k", "connections",
            thresholds={"longTransaction": {"warn": "0s", "fail": "1h"}},
        )  # fmt: skip
    assert run.outcomes == {"degraded": 1}, run.stdout
    message = run.results()["test_connections"]["message"]
    assert f"application night-batch, database {other_database.name}) idle in transaction" in (
        message
    )
    assert f"pg_terminate_backend({pid})" in message


def test_wraparound_judges_every_database_of_the_cluster(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
    other_database: SandboxDatabase,
) -> None:
    with other_database.connect() as conn:  # age this database's datfrozenxid only
        for _ in range(20):
            conn.execute("SELECT txid_current()")
    with pg_db.connect() as conn:
        conn.execute("VACUUM (FREEZE)")  # ours is now the youngest
        ages = dict(conn.execute("SELECT datname, age(datfrozenxid) FROM pg_database").fetchall())
    assert ages[other_database.name] > ages[pg_db.name]
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "wraparound",
        thresholds={"wraparoundAge": {"warn": ages[pg_db.name] + 1, "fail": 1_000_000_000}},
    )  # fmt: skip
    assert run.outcomes == {"degraded": 1}, run.stdout
    result = run.results()["test_wraparound"]
    assert result["details"]["databases"][other_database.name] >= ages[other_database.name]
    assert {"postgres", "template0", pg_db.name} <= set(result["details"]["databases"])
    assert result["metrics"]["wraparoundAge"] == max(result["details"]["databases"].values())


def test_daily_sessions_see_an_idle_session_in_an_unlisted_database(
    pg_db: SandboxDatabase, other_database: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    with other_database.connect() as held:
        pid = held.info.backend_pid
        monkeypatch.setenv("PGPASSWORD", pg_db.password)
        scan = pg_sessions(pg_db.dsn, connect_timeout=5, statement_timeout=5)
    labels = [s.label for s in scan.sessions]
    assert f"pid {pid} in database {other_database.name}" in labels


# ---------------------------------------------------------------------------- valid SQL


WARD = 'Ward "A"'


def _action_statement(result: dict[str, Any], starts: str) -> str:
    (action,) = [f["action"] for f in result["findings"] if f["action"].startswith(starts)]
    return str(action).split("; ")[0].split(", or drop")[0]


def test_suggested_statements_for_a_quoted_schema_and_table_run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    table = sql.Identifier(WARD, "Vitals")
    with pg_db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(WARD)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int, ticket int) WITH (autovacuum_enabled = off)").format(
                table
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, g % 50 FROM generate_series(1, 10000) g").format(
                table
            )
        )
        conn.execute(sql.SQL("DELETE FROM {} WHERE id > 4000").format(table))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} (ticket)").format(
                    sql.Identifier("Ticket UQ"), table
                )
            )
        conn.execute(sql.SQL("DELETE FROM {} WHERE id > 50").format(table))
        flush(conn)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples or invalid_indexes")
    assert run.outcomes == {"failed": 2}, run.stdout
    vacuum = _action_statement(run.results()["test_dead_tuples"], "VACUUM")
    reindex = _action_statement(run.results()["test_invalid_indexes"], "REINDEX")
    assert vacuum == 'VACUUM (ANALYZE) "Ward ""A"""."Vitals"'
    assert reindex == 'REINDEX INDEX CONCURRENTLY "Ward ""A"""."Ticket UQ"'
    with pg_db.connect() as conn:  # the statements as suggested, run for real
        conn.execute(vacuum.encode())
        conn.execute(reindex.encode())
        dead, valid = conn.execute(
            "SELECT n_dead_tup, (SELECT indisvalid FROM pg_index i JOIN pg_class c"
            " ON c.oid = i.indexrelid WHERE c.relname = 'Ticket UQ')"
            " FROM pg_stat_user_tables WHERE relname = 'Vitals'"
        ).fetchone() or (None, None)
    assert (dead, valid) == (0, True)
