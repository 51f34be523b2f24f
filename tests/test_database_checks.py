"""Weekly database checks against a real throwaway PostgreSQL, run as a pg_monitor-only role.

Each test makes the condition it is about (dead tuples with autovacuum off, an index left
invalid by a failed CREATE INDEX CONCURRENTLY, a transaction held open in another session) and
runs checks/test_weekly_database.py end to end in a pytest subprocess.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from check_runs import CheckRun, run_checks
from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_maintenance as pgm
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase


@dataclass
class Role:
    name: str
    password: str


class Run(CheckRun):
    @property
    def outcomes(self) -> dict[str, int]:
        return {k: v for k, v in self.result.parseoutcomes().items() if k != "deselected"}

    @property
    def stdout(self) -> str:
        return self.result.stdout.str()

    def results(self) -> dict[str, dict[str, Any]]:
        return self.by_test

    def everything_written(self) -> str:
        return self.stdout + "".join(p.read_text() for p in self.run_dir.iterdir() if p.is_file())


@contextmanager
def _make_role(cluster: PostgresCluster, db: SandboxDatabase, *grants: str) -> Iterator[Role]:
    """A login role with CONNECT on the test database and the given role grants only."""
    role = Role(f"mon_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
    cluster.create_role(role.name, role.password, *grants)
    with db.connect() as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(db.name), sql.Identifier(role.name)
            )
        )
    yield role
    with db.connect() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role.name)))
    cluster.drop_database(db.name)  # its grants to the role go with it
    cluster.drop_role(role.name)


@pytest.fixture
def monitor(pg_cluster: PostgresCluster, pg_db: SandboxDatabase) -> Iterator[Role]:
    """A role with only pg_monitor and CONNECT: what the checks are meant to run as."""
    with _make_role(pg_cluster, pg_db, "pg_monitor") as role:
        yield role


@pytest.fixture
def connect_only(pg_cluster: PostgresCluster, pg_db: SandboxDatabase) -> Iterator[Role]:
    with _make_role(pg_cluster, pg_db) as role:
        yield role


def flush(conn: psycopg.Connection[Any]) -> None:
    """Counters reach pg_stat_* when the session goes idle; make that happen now."""
    conn.execute("SELECT pg_stat_force_next_flush()")


def run_weekly(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    db: SandboxDatabase,
    role: Role,
    *args: str,
    thresholds: dict[str, Any] | None = None,
) -> Run:
    entry: dict[str, Any] = {"database": "primary"}
    if thresholds:
        entry["thresholds"] = thresholds
    config = {
        "version": 1,
        "system": "test",
        "databases": {"primary": {"dsn": db.cluster.dsn(db.name, user=role.name)}},
        "databaseMaintenance": [entry],
    }
    monkeypatch.setenv("PGPASSWORD", role.password)
    report_dir = pytester.path / "r"
    run = run_checks(pytester, config, "test_weekly_database.py", args=args, report_dir=report_dir)
    return Run(run.result, run.run_dir)


def table_counters(db: SandboxDatabase) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT relname, vacuum_count, autovacuum_count, analyze_count, autoanalyze_count,"
            " n_dead_tup FROM pg_stat_user_tables ORDER BY relname"
        ).fetchall()


def make_dead_tuples(db: SandboxDatabase, table: str = "readings", rows: int = 10_000) -> None:
    with db.connect() as conn:
        conn.execute(
            f"CREATE TABLE {table} (id int PRIMARY KEY, ward int) WITH (autovacuum_enabled = false)"
        )
        conn.execute(f"INSERT INTO {table} SELECT g, g % 100 FROM generate_series(1, {rows}) g")
        conn.execute(f"DELETE FROM {table} WHERE id > {rows * 4 // 10}")  # 60% dead
        flush(conn)


def make_invalid_index(db: SandboxDatabase, remove_duplicates: bool = False) -> None:
    """A unique index built CONCURRENTLY over duplicates fails and stays behind, invalid."""
    with db.connect() as conn:
        conn.execute(
            "CREATE TABLE visits (id int PRIMARY KEY, ticket int) WITH (autovacuum_enabled = false)"
        )
        conn.execute("INSERT INTO visits SELECT g, g % 50 FROM generate_series(1, 200) g")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY visits_ticket_uq ON visits (ticket)")
        if remove_duplicates:
            conn.execute("DELETE FROM visits WHERE id > 50")


def invalid_indexes(db: SandboxDatabase) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


# ---------------------------------------------------------------------------- findings


def test_dead_tuples_name_the_table_and_the_vacuum(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    make_dead_tuples(pg_db, "readings")
    make_dead_tuples(pg_db, "tiny_lookup", rows=100)  # 60 dead: under minDeadTuples, ignored
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples")
    assert run.outcomes == {"failed": 1}
    result = run.results()["test_dead_tuples"]
    assert "public.readings (6000 dead of 10000 rows): dead tuple ratio 60%" in result["message"]
    assert "VACUUM (ANALYZE) public.readings" in result["message"]
    assert "tiny_lookup" not in result["message"]
    assert result["details"]["dbMetrics"]["deadTuples"] == 6060


def test_tables_past_the_autovacuum_trigger_are_flagged(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect() as conn:
        conn.execute(
            "CREATE TABLE orders (id int) WITH (autovacuum_enabled = false,"
            " autovacuum_vacuum_scale_factor = 0.01)"
        )
        conn.execute("INSERT INTO orders SELECT generate_series(1, 100000)")
        conn.execute("ANALYZE orders")
        conn.execute("DELETE FROM orders WHERE id <= 5000")  # 5%: under the 10% ratio warning
        flush(conn)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples")
    assert run.outcomes == {"degraded": 1}
    message = run.results()["test_dead_tuples"]["message"]
    assert "public.orders: 5000 dead tuples, past autovacuum's trigger of 1050" in message
    assert "autovacuum_enabled=false on this table" in message


def test_never_vacuumed_table_with_dead_tuples_is_a_finding_a_quiet_small_one_is_not(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE notes (id int) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO notes SELECT generate_series(1, 100)")
        conn.execute("DELETE FROM notes WHERE id <= 3")  # work for vacuum
        # under autovacuum's thresholds, no dead tuples: autovacuum would never touch it
        conn.execute("CREATE TABLE ward_codes (id int)")
        conn.execute("INSERT INTO ward_codes SELECT generate_series(1, 10)")
        conn.execute("CREATE TABLE empty_table (id int)")
        flush(conn)
    _counting_for_at_least(pg_db, 2.0)
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "vacuum_age",
        thresholds={"vacuumAge": {"warn": "1s", "fail": "2s"},
                    "analyzeAge": {"warn": "1s", "fail": "2s"}},
    )  # fmt: skip
    assert run.outcomes == {"failed": 1}
    message = run.results()["test_vacuum_age"]["message"]
    assert "public.notes: not vacuumed since the statistics were reset at " in message
    assert "public.notes: not analyzed since the statistics were reset at " in message
    assert "ward_codes" not in message
    assert "empty_table" not in message


def _counting_for_at_least(db: SandboxDatabase, seconds: float) -> None:
    """Wait until the cluster's statistics are older than ``seconds`` (a fresh cluster's are)."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM now() - greatest(s.stats_reset, a.stats_reset))"
            " FROM pg_stat_database s, pg_stat_archiver a WHERE s.datname = current_database()"
        ).fetchone()
    assert row is not None
    time.sleep(max(0.0, seconds + 0.2 - float(row[0])))


def test_invalid_index_is_named_with_reindex(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    make_invalid_index(pg_db)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "invalid_indexes")
    assert run.outcomes == {"failed": 1}
    result = run.results()["test_invalid_indexes"]
    assert "public.visits_ticket_uq on visits is invalid" in result["message"]
    assert "REINDEX INDEX CONCURRENTLY public.visits_ticket_uq" in result["message"]
    assert result["details"]["invalidIndexes"] == ["public.visits_ticket_uq"]


def test_open_transaction_is_named_without_its_query(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect(application_name="ward-app") as held:
        held.autocommit = False
        held.execute("SELECT 'MRN-4471-secret'")  # patient data in the query text
        pid = held.info.backend_pid
        run = run_weekly(
            pytester, monkeypatch, pg_db, monitor, "-k", "connections",
            thresholds={"longTransaction": {"warn": "0s", "fail": "1h"}},
        )  # fmt: skip
    assert run.outcomes == {"degraded": 1}
    result = run.results()["test_connections"]
    assert (
        f"pid {pid} (user {pg_db.user}, application ward-app) idle in transaction"
        in (result["message"])
    )
    assert f"pg_terminate_backend({pid})" in result["message"]
    assert result["details"]["byState"]["idle in transaction"] == 1
    assert "MRN-4471" not in run.everything_written()


def test_wraparound_reports_the_share_of_freeze_max_age_and_the_oldest_tables(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "wraparound",
        thresholds={"wraparoundAge": {"warn": 1, "fail": 1_000_000_000}},
    )  # fmt: skip
    assert run.outcomes == {"degraded": 1}
    result = run.results()["test_wraparound"]
    assert "of autovacuum_freeze_max_age; oldest: " in result["message"]
    assert result["metrics"]["wraparoundAge"] > 1
    assert len(result["details"]["oldestTables"]) == pgm.OLDEST_FROZEN


def test_size_lists_largest_tables_and_indexes_and_the_database_record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    make_dead_tuples(pg_db, "big_readings", rows=50_000)
    make_dead_tuples(pg_db, "small_readings", rows=100)
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "database_size",
        thresholds={"size": {"warn": "1MB", "fail": "10GB"}},
    )  # fmt: skip
    assert run.outcomes == {"degraded": 1}
    result = run.results()["test_database_size"]
    assert "database size" in result["message"]
    assert "(largest: public.big_readings" in result["message"]
    assert [t["table"] for t in result["details"]["largestTables"]] == [
        "public.big_readings",
        "public.small_readings",
    ]
    assert result["details"]["largestIndexes"][0]["index"] == "public.big_readings_pkey"
    (record,) = run.record("database-maintenance.json")
    assert record["database"] == "primary"
    assert record["metrics"]["deadTuples"] == 30_060
    assert record["metrics"]["size"] == result["metrics"]["size"] > 1_000_000
    assert record["tasks"] == {"vacuum": False, "analyze": False, "reindex": False}


def test_cache_hit_ratio_gives_no_verdict_on_little_traffic(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "cache_hit",
        thresholds={"cacheHitRatio": {"warn": 0.9999999, "fail": 0.999999}},
    )  # fmt: skip
    assert run.outcomes == {"passed": 1}
    result = run.results()["test_cache_hit"]
    assert "no verdict: too little traffic" in result["message"]
    assert result["metrics"]["cacheHitRatio"] is None


def test_cache_hit_ratio_judged_with_enough_traffic(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect() as conn:
        # CREATE TABLE AS writes through a small ring, and a scan of a table over a quarter of
        # shared_buffers reads through one: most of these blocks come from disk, not the cache
        conn.execute("CREATE TABLE scans AS SELECT g, repeat('x', 300) AS pad"
                     " FROM generate_series(1, 150000) g")  # fmt: skip
        conn.execute("SELECT count(*) FROM scans")
        flush(conn)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "cache_hit")
    assert run.outcomes == {"failed": 1}
    result = run.results()["test_cache_hit"]
    assert result["metrics"]["cacheHitRatio"] < 0.9
    assert "cache hit ratio" in result["message"]
    assert result["details"]["blockAccesses"] >= pgm.MIN_CACHE_ACCESSES


def test_slow_queries_skip_says_how_to_enable_pg_stat_statements(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "slow_queries", "-rs")
    assert run.outcomes == {"skipped": 1}
    assert "CREATE EXTENSION pg_stat_statements" in run.stdout
    assert "shared_preload_libraries" in run.stdout


def test_slow_statements_by_queryid_with_redacted_text(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        # a utility statement keeps its literals in pg_stat_statements: the check must not
        conn.execute("DO $$BEGIN PERFORM pg_sleep(0.3); RAISE NOTICE 'MRN-9921'; END$$")
        conn.execute("SELECT pg_sleep(0.3), 'MRN-9922'")
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "slow_queries",
        thresholds={"slowQuery": {"warn": "100ms", "fail": "200ms"}},
    )  # fmt: skip
    assert run.outcomes == {"failed": 1}
    result = run.results()["test_slow_queries"]
    slow = {s["text"]: s for s in result["details"]["slowStatements"]}
    assert set(slow) >= {"DO ?", "SELECT pg_sleep($1), $2"}
    assert all(s["calls"] == 1 and s["queryid"] for s in slow.values())
    assert f"queryid {slow['DO ?']['queryid']} (1 calls) mean" in result["message"]
    assert "MRN-99" not in run.everything_written()


def test_unused_and_duplicate_indexes_are_low_findings(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE labs (id int, code int)")
        conn.execute("INSERT INTO labs SELECT g, g FROM generate_series(1, 100000) g")
        conn.execute("CREATE INDEX labs_code ON labs (code)")
        conn.execute("CREATE INDEX labs_code_again ON labs (code)")
        conn.execute("CREATE INDEX labs_id ON labs (id)")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT * FROM labs WHERE id = 5")  # labs_id is used
        flush(conn)
    run = run_weekly(pytester, monkeypatch, pg_db, monitor, "-k", "index_usage")
    assert run.outcomes == {"degraded": 1}
    message = run.results()["test_index_usage"]["message"]
    assert "public.labs_code on labs" in message
    assert "never scanned" in message
    assert "labs: indexes public.labs_code, public.labs_code_again cover the same columns" in (
        message
    )
    assert "public.labs_id on" not in message
    # issue 3: low-severity findings, each carrying that severity itself in results.json
    findings = run.results()["test_index_usage"]["findings"]
    assert len(findings) == 3  # two unused, one duplicate pair
    assert [f["severity"] for f in findings] == ["low"] * 3


# ---------------------------------------------------------------------------- privileges


def test_without_pg_monitor_connections_name_the_missing_grant(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    connect_only: Role,
) -> None:
    plain = connect_only
    with pg_db.connect() as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    run = run_weekly(pytester, monkeypatch, pg_db, plain, "-k", "connections or slow_queries")
    assert run.outcomes == {"failed": 2}
    for check in ("test_connections", "test_slow_queries"):
        assert f"missing grant: GRANT pg_monitor TO {plain.name}" in run.results()[check]["message"]


def test_without_connect_every_check_names_the_missing_grant(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    with pg_db.connect() as conn:
        conn.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {}").format(
                sql.Identifier(pg_db.name), sql.Identifier(monitor.name)
            )
        )
    run = run_weekly(pytester, monkeypatch, pg_db, monitor)
    assert run.outcomes == {"failed": 9}
    grant = f"missing grant: GRANT CONNECT ON DATABASE {pg_db.name} TO {monitor.name}"
    assert all(grant in r["message"] for r in run.results().values())


# ---------------------------------------------------------------------------- read-only, repair


def test_a_run_without_apply_changes_nothing(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    make_dead_tuples(pg_db)
    make_invalid_index(pg_db, remove_duplicates=True)
    before = table_counters(pg_db)
    with pg_db.connect() as conn:
        flush(conn)
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        sessions_before = row[0] + 1  # this session counts once it ends
    run = run_weekly(pytester, monkeypatch, pg_db, monitor)
    assert run.outcomes["failed"] >= 2  # dead tuples, invalid index
    # nine checks, one snapshot: the database saw exactly one session from the run
    with pg_db.connect() as conn:
        seen = 0
        for _ in range(50):  # a session is counted when its backend exits: bounded wait
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            seen = (row[0] if row else 0) - sessions_before
            if seen >= 1:
                break
            time.sleep(0.1)
    assert seen == 1
    assert table_counters(pg_db) == before
    assert invalid_indexes(pg_db) == ["visits_ticket_uq"]
    assert all(not any(r["details"]["tasks"].values()) for r in run.results().values())
    actions = run.record("maintenance-log.json")["details"]["actions"]
    assert not any("performed" in a for a in actions)


def test_apply_as_monitor_only_names_the_missing_grant_and_changes_nothing(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    monitor: Role,
) -> None:
    make_dead_tuples(pg_db)
    before = table_counters(pg_db)
    run = run_weekly(
        pytester, monkeypatch, pg_db, monitor, "-k", "dead_tuples", "--maintcheck-apply"
    )
    assert run.outcomes == {"failed": 1}
    message = run.results()["test_dead_tuples"]["message"]
    assert f"VACUUM (ANALYZE) public.readings not done: role {monitor.name} does not own" in message
    assert f"missing grant: GRANT {pg_db.user} TO {monitor.name}" in message
    assert "dead tuple ratio 60%" in message  # re-measured: still there
    assert table_counters(pg_db) == before


@pytest.fixture
def maintainer(pg_cluster: PostgresCluster, pg_db: SandboxDatabase) -> Iterator[Role]:
    """pg_monitor plus membership in the role owning the tables: the grant the check names."""
    owner = f"own_{uuid.uuid4().hex[:8]}"
    with pg_db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
    with _make_role(pg_cluster, pg_db, "pg_monitor", owner) as role:
        yield role
    pg_cluster.drop_role(owner)


def _own_everything(db: SandboxDatabase, role: Role) -> None:
    with db.connect() as conn:
        owner = conn.execute(
            "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles a ON a.oid = m.member"
            " JOIN pg_roles b ON b.oid = m.roleid WHERE a.rolname = %s AND b.rolname LIKE 'own_%%'",
            (role.name,),
        ).fetchone()
        assert owner is not None
        for table in ("readings", "visits"):
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier(table), sql.Identifier(owner[0])
                )
            )


def test_apply_repairs_then_judges_the_remeasured_state(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    maintainer: Role,
) -> None:
    make_dead_tuples(pg_db)
    make_invalid_index(pg_db, remove_duplicates=True)
    _own_everything(pg_db, maintainer)
    run = run_weekly(
        pytester, monkeypatch, pg_db, maintainer, "--maintcheck-apply",
        "-k", "dead_tuples or invalid_indexes or vacuum_age",
    )  # fmt: skip
    assert run.outcomes == {"passed": 3}, run.stdout
    results = run.results()
    assert results["test_dead_tuples"]["details"]["performed"] == [
        "VACUUM (ANALYZE) public.readings"
    ]
    assert results["test_invalid_indexes"]["details"]["performed"] == [
        "REINDEX INDEX CONCURRENTLY public.visits_ticket_uq"
    ]
    assert invalid_indexes(pg_db) == []
    counters = {row[0]: row for row in table_counters(pg_db)}
    assert counters["readings"][1] >= 1  # vacuum_count
    assert counters["readings"][5] == 0  # n_dead_tup, re-measured
    (record,) = run.record("database-maintenance.json")
    assert record["tasks"] == {"vacuum": True, "analyze": True, "reindex": True}
    actions = run.record("maintenance-log.json")["details"]["actions"]
    assert any(a.endswith("performed VACUUM (ANALYZE) public.readings") for a in actions)


def test_a_failed_reindex_is_reported_and_leaves_no_debris(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_db: SandboxDatabase,
    maintainer: Role,
) -> None:
    make_dead_tuples(pg_db)
    make_invalid_index(pg_db)  # the duplicates stay: the rebuild must fail again
    _own_everything(pg_db, maintainer)
    run = run_weekly(
        pytester, monkeypatch, pg_db, maintainer, "--maintcheck-apply", "-k", "invalid_indexes"
    )
    assert run.outcomes == {"failed": 1}
    message = run.results()["test_invalid_indexes"]["message"]
    assert "REINDEX INDEX CONCURRENTLY public.visits_ticket_uq failed" in message
    assert "public.visits_ticket_uq on visits is invalid" in message
    assert invalid_indexes(pg_db) == ["visits_ticket_uq"]  # no visits_ticket_uq_ccnew left


# ---------------------------------------------------------------------------- probe


def _snapshot(db: SandboxDatabase) -> pgm.Snapshot:
    os.environ["PGPASSWORD"] = db.password
    try:
        return pgm.take_snapshot(DatabaseMaintenanceTarget("primary"), Database("primary", db.dsn))
    finally:
        del os.environ["PGPASSWORD"]


def test_a_snapshot_costs_the_same_round_trips_for_3_or_300_tables(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase
) -> None:
    with pg_db.connect() as conn:
        for i in range(3):
            conn.execute(f"CREATE TABLE few_{i} (id int PRIMARY KEY)")
    few = _snapshot(pg_db)
    with pg_db.connect() as conn:
        conn.execute(
            "DO $$BEGIN FOR i IN 1..297 LOOP "
            "EXECUTE format('CREATE TABLE many_%s (id int PRIMARY KEY)', i); END LOOP; END$$"
        )
    many = _snapshot(pg_db)
    assert (len(few.tables), len(many.tables)) == (3, 300)
    assert few.round_trips == many.round_trips == pgm.SNAPSHOT_QUERIES


def test_the_snapshot_session_is_read_only(pg_db: SandboxDatabase) -> None:
    """take_snapshot connects with default_transaction_read_only: prove the server agrees."""
    from pytest_maintcheck.probes.postgres import connect

    os.environ["PGPASSWORD"] = pg_db.password
    try:
        with connect(pg_db.dsn) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (id int)")
    finally:
        del os.environ["PGPASSWORD"]


def test_snapshot_cache_takes_one_snapshot_per_database_and_retakes_after_repair() -> None:
    taken: list[str] = []

    def take(target: DatabaseMaintenanceTarget, _db: Database) -> pgm.Snapshot:
        taken.append(target.database)
        raise pgm.ProbeError("unreachable")

    cache = pgm.SnapshotCache(take)
    target, db = DatabaseMaintenanceTarget("primary"), Database("primary", "postgresql://x@h/d")
    for _ in range(3):
        with pytest.raises(pgm.ProbeError):
            cache.get(target, db)
    with pytest.raises(pgm.ProbeError):
        cache.refresh(target, db)
    assert taken == ["primary", "primary"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("SELECT * FROM patients WHERE mrn = 'MRN-1' AND age > 42", "SELECT * FROM patients "
         "WHERE mrn = ? AND age > ?"),
        ("select $1, t1.x from t1", "select $1, t1.x from t1"),
        ("DO $body$ RAISE 'secret' $body$", "DO ?"),
        ("INSERT INTO x VALUES (E'it\\'s', 1.5e3)", "INSERT INTO x VALUES (?, ?)"),
    ],
)  # fmt: skip
def test_statement_text_loses_its_literals(text: str, shown: str) -> None:
    assert pgm.redact_statement(text) == shown
