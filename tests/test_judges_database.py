"""The weekly database rules, judged in-process on snapshots made for the test (no PostgreSQL).

tests/test_database_checks.py runs the same checks end to end against a real cluster: it
proves the wiring (snapshot, repair, records); these prove each rule, fast.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget, Thresholds
from pytest_maintcheck.judges import database as judges
from pytest_maintcheck.probes.pg_maintenance import (
    MIN_CACHE_ACCESSES,
    DatabaseAge,
    FrozenTable,
    IndexStats,
    Session,
    Snapshot,
    SnapshotCache,
    Statement,
    TableStats,
)
from pytest_maintcheck.probes.pg_measured import MeasuredDatabase
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

TAKEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0


def target(min_dead: int = 1000, **limits: object) -> DatabaseMaintenanceTarget:
    items = tuple(Threshold.parse(name, raw) for name, raw in limits.items())
    return DatabaseMaintenanceTarget(
        "clinical", min_dead_tuples=min_dead, thresholds=Thresholds(items)
    )


def table(name: str, live: int = 10_000, dead: int = 0, **extra: Any) -> TableStats:
    fields: dict[str, Any] = {
        "schema": "public", "name": name, "owner": "app", "live": live, "dead": dead,
        "reltuples": float(live), "vacuum_age": 3600.0, "analyze_age": 3600.0, "vacuums": 1,
        "analyzes": 1, "autovacuum_enabled": True, "vacuum_threshold": 50.0,
        "vacuum_scale_factor": 0.2, "total_bytes": 8192 * 100, "can_maintain": True,
    }  # fmt: skip
    return TableStats(**(fields | extra))


def index(name: str, **extra: Any) -> IndexStats:
    fields: dict[str, Any] = {
        "schema": "public", "name": name, "table": "visits", "owner": "app", "valid": True,
        "unique": False, "scans": 10, "bytes": 8 * 1024 * 1024, "signature": name,
        "building": False, "can_maintain": True,
    }  # fmt: skip
    return IndexStats(**(fields | extra))


def snapshot(**extra: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "database": "clinical", "user": "monitor", "taken_at": TAKEN, "server_version": 150000,
        "max_connections": 100, "autovacuum_on": True, "freeze_max_age": 200_000_000,
        "size": 50 * 1024**2, "frozen_age": 1000, "blocks_hit": 99_000, "blocks_read": 1000,
        "stats_reset": None, "stats_since": None, "reads_all_stats": True,
        "statements_schema": "public",
    }  # fmt: skip
    return Snapshot(**(fields | extra))


def judged(rule: Any, snap: Snapshot, tgt: DatabaseMaintenanceTarget) -> Assessment:
    assessment = Assessment()
    rule(snap, tgt, assessment)
    return assessment


# ---------------------------------------------------------------------------- dead tuples


def test_each_table_past_the_dead_tuple_ratio_is_named_and_the_worst_is_the_metric() -> None:
    snap = snapshot(
        tables=[
            table("readings", live=4000, dead=6000),
            table("orders", live=7000, dead=3000),
            table("small", live=10, dead=90),  # under minDeadTuples: its ratio is noise
            table("clean", live=10_000, dead=100),
        ]
    )
    made = judged(judges.judge_dead_tuples, snap, target(deadTupleRatio={"warn": 0.1, "fail": 0.5}))
    assert made.verdict is Verdict.VIOLATION
    # the worst table's ratio, not the last one judged
    assert made.metrics["deadTupleRatio"] == 0.6
    described = [f.description for f in made.findings]
    assert described[0].startswith(
        "public.readings (6000 dead of 10000 rows): dead tuple ratio 60%"
    )
    assert described[1].startswith("public.orders (3000 dead of 10000 rows): dead tuple ratio 30%")
    assert made.findings[0].action.startswith("VACUUM (ANALYZE) public.readings;")
    assert not any("small" in d for d in described)
    assert made.metrics["deadTuples"] == 6000 + 3000 + 90 + 100


def test_past_twenty_tables_the_rest_is_one_line() -> None:
    snap = snapshot(tables=[table(f"t{i:02}", live=5000, dead=5000) for i in range(25)])
    made = judged(judges.judge_dead_tuples, snap, target(deadTupleRatio=0.2))
    assert len(made.findings) == 21
    assert made.findings[-1].description.startswith("+5 more past fail > 20%")


def test_a_table_autovacuum_left_past_its_trigger_says_why() -> None:
    lagging = table("orders", live=100_000, dead=5000, vacuum_scale_factor=0.01)
    snap = snapshot(autovacuum_on=False, tables=[lagging])
    made = judged(judges.judge_dead_tuples, snap, target(deadTupleRatio=0.2))
    (finding,) = made.findings
    assert finding.verdict is Verdict.DEGRADED
    assert finding.description == (
        "public.orders: 5000 dead tuples, past autovacuum's trigger of 1050 "
        "(autovacuum is off for the whole server)"
    )
    assert [r.shown for r in judges.dead_tuple_repairs(snap, target(deadTupleRatio=0.2))] == [
        "VACUUM (ANALYZE) public.orders"
    ]


def test_no_dead_tuples_measures_zero_and_a_reset_counter_is_said_to_be_unknown() -> None:
    reset = table("vitals", dead=0, counters_reset=True, vacuum_age=None)
    snap = snapshot(stats_since=TAKEN - timedelta(hours=1), tables=[reset])
    made = judged(judges.judge_dead_tuples, snap, target(deadTupleRatio=0.2))
    assert made.verdict is Verdict.PASS
    assert made.metrics["deadTupleRatio"] == 0
    assert made.notes[0].startswith(
        "dead tuples of 1 table (public.vitals) unknown: counted only since the statistics "
        "were reset at 2025-03-01 11:00 UTC"
    )


def test_one_repair_per_table_due_for_both_reasons() -> None:
    both = table("readings", live=4000, dead=6000)
    snap = snapshot(tables=[both])
    repairs = judges.dead_tuple_repairs(snap, target(deadTupleRatio=0.2))
    assert [(r.task, r.subject) for r in repairs] == [("vacuum", "public.readings")]


# ---------------------------------------------------------------------------- vacuum age


def test_vacuum_age_says_when_last_never_or_not_since_the_reset() -> None:
    stale = table("stale", dead=10, vacuum_age=10 * DAY, analyze_age=10 * DAY)
    never = table("never", dead=10, vacuum_age=None, analyze_age=None)
    limits = target(vacuumAge="7d", analyzeAge="7d")
    made = judged(judges.judge_vacuum_age, snapshot(tables=[stale, never]), limits)
    described = [f.description for f in made.findings]
    assert "public.stale: last vacuumed 10d ago (fail > 7d)" in described
    assert "public.never: never vacuumed (fail > 7d)" in described
    assert made.metrics["vacuumAge"] is None  # never: no finite age to record
    since_reset = snapshot(stats_since=TAKEN - timedelta(days=9), tables=[never])
    made = judged(judges.judge_vacuum_age, since_reset, limits)
    assert made.findings[0].description.startswith(
        "public.never: not vacuumed since the statistics were reset at 2025-02-20 12:00 UTC "
        "(9d ago)"
    )
    assert made.metrics["vacuumAge"] == 9 * DAY


def test_a_table_unrecorded_since_a_recent_reset_is_unknown_not_never() -> None:
    never = table("never", dead=10, vacuum_age=None, analyze_age=3600.0)
    snap = snapshot(stats_since=TAKEN - timedelta(days=2), tables=[never])
    made = judged(judges.judge_vacuum_age, snap, target(vacuumAge="7d"))
    assert made.verdict is Verdict.PASS
    assert made.notes == [
        "last vacuum of 1 table (public.never) unknown since the statistics were reset at "
        "2025-02-27 12:00 UTC (2d ago, within fail > 7d)"
    ]


def test_a_quiet_small_table_is_not_neglected() -> None:
    quiet = table("notes", live=5, dead=0, vacuum_age=None, analyze_age=None)
    made = judged(judges.judge_vacuum_age, snapshot(tables=[quiet]), target(vacuumAge="7d"))
    assert made.findings == []
    assert judges.vacuum_age_repairs(snapshot(tables=[quiet]), target(vacuumAge="7d")) == []


def test_vacuum_age_repairs_vacuum_the_unvacuumed_and_analyze_the_rest() -> None:
    unvacuumed = table("a", dead=10, vacuum_age=10 * DAY, analyze_age=10 * DAY)
    unanalyzed = table("b", dead=10, analyze_age=10 * DAY, changes_since_analyze=5000)
    snap = snapshot(tables=[unvacuumed, unanalyzed])
    repairs = judges.vacuum_age_repairs(snap, target(vacuumAge="7d", analyzeAge="7d"))
    assert [r.shown for r in repairs] == ["VACUUM (ANALYZE) public.a", "ANALYZE public.b"]


# ---------------------------------------------------------------------------- indexes


def test_an_invalid_index_is_a_violation_and_one_being_built_is_not() -> None:
    broken = index("visits_ticket_uq", valid=False, unique=True)
    building = index("visits_new", valid=False, building=True)
    snap = snapshot(indexes=[broken, building])
    made = judged(judges.judge_invalid_indexes, snap, target())
    (finding,) = made.findings
    assert finding.description.startswith("public.visits_ticket_uq on visits is invalid")
    assert finding.action.startswith("REINDEX INDEX CONCURRENTLY public.visits_ticket_uq")
    assert made.details["invalidIndexes"] == ["public.visits_ticket_uq"]
    assert [r.task for r in judges.invalid_index_repairs(snap, target())] == ["reindex"]


def test_unused_and_duplicate_indexes_are_low_severity_findings() -> None:
    unused = index("visits_note", scans=0)
    tiny = index("visits_tiny", scans=0, bytes=8192)  # too small to be worth a finding
    twin_a, twin_b = (
        index("labs_code", table="labs", signature="s"),
        index("labs_code_again", table="labs", signature="s"),
    )
    snap = snapshot(indexes=[unused, tiny, twin_a, twin_b])
    made = judged(judges.judge_index_usage, snap, target())
    assert [(f.description, f.severity) for f in made.findings] == [
        ("public.visits_note on visits (8.4MB) never scanned since the stats began", "low"),
        ("labs: indexes public.labs_code, public.labs_code_again cover the same columns", "low"),
    ]
    assert made.metrics == {"unusedIndexes": 1, "duplicateIndexes": 1}


# ---------------------------------------------------------------------------- wraparound


def test_wraparound_judges_every_database_of_the_cluster() -> None:
    snap = snapshot(
        frozen_age=150_000_000,
        database_ages=[DatabaseAge("archive", 190_000_000), DatabaseAge("postgres", 1000)],
        oldest_frozen=[FrozenTable("public.readings", 150_000_000)],
    )
    limits = target(wraparoundAge={"warn": 100_000_000, "fail": 180_000_000})
    made = judged(judges.judge_wraparound, snap, limits)
    described = [(f.verdict, f.description) for f in made.findings]
    assert described[0] == (
        Verdict.VIOLATION,
        "archive: 95% of autovacuum_freeze_max_age: transaction ID age 1.9e+08 "
        "(warn > 1e+08, fail > 1.8e+08)",
    )
    assert described[1] == (
        Verdict.DEGRADED,
        "clinical: transaction ID age 150000000; oldest: public.readings (150000000)",
    )
    assert made.metrics["freezeMaxAgeFraction"] == 0.95


# ---------------------------------------------------------------------------- sessions


def test_connections_without_pg_monitor_could_not_be_measured() -> None:
    made = judged(judges.judge_connections, snapshot(reads_all_stats=False), target())
    (finding,) = made.findings
    assert finding.verdict is Verdict.VIOLATION
    assert "missing grant: GRANT pg_monitor TO monitor" in finding.description


def test_connection_usage_and_each_long_transaction() -> None:
    sessions = [
        Session(41, "app", "ris", "idle in transaction", True, 7200.0, 7000.0, "clinical"),
        Session(42, "app", "pacs", "active", True, 30.0, 30.0, "clinical"),
    ] + [Session(100 + i, "app", "web", "idle", True, None, 5.0) for i in range(88)]
    snap = snapshot(sessions=sessions)
    limits = target(connectionUsage={"warn": 0.8, "fail": 0.95}, longTransaction="1h")
    made = judged(judges.judge_connections, snap, limits)
    assert made.metrics["connectionUsage"] == 0.91
    assert made.metrics["longTransaction"] == 7200.0
    assert [f.verdict for f in made.findings] == [Verdict.DEGRADED, Verdict.VIOLATION]
    long = made.findings[1]
    assert long.description.startswith(
        "pid 41 (user app, application ris) idle in transaction, idle for "
    )
    assert "SELECT pg_terminate_backend(41)" in long.action
    assert made.details["byState"]["idle"] == 88


def test_no_open_transaction_measures_zero() -> None:
    made = judged(judges.judge_connections, snapshot(), target(longTransaction="1h"))
    assert made.metrics["longTransaction"] == 0.0
    assert made.verdict is Verdict.PASS


# ---------------------------------------------------------------------------- size, cache


def test_database_size_names_its_largest_tables() -> None:
    big = table("big_readings", total_bytes=40 * 1024**2)
    made = judged(judges.judge_database_size, snapshot(tables=[big]), target(size="10MB"))
    assert made.findings[0].description == (
        "clinical (largest: public.big_readings 41.9MB): database size 52.4MB (fail > 10.0MB)"
    )


def test_too_little_traffic_is_no_verdict_on_the_cache_hit_ratio() -> None:
    quiet = snapshot(blocks_hit=10, blocks_read=10)
    made = judged(judges.judge_cache_hit, quiet, target(cacheHitRatio=0.9))
    assert made.verdict is Verdict.PASS
    assert made.metrics["cacheHitRatio"] is None
    assert f"{MIN_CACHE_ACCESSES} needed" in made.notes[0]
    busy = snapshot(blocks_hit=80_000, blocks_read=20_000)
    made = judged(judges.judge_cache_hit, busy, target(cacheHitRatio=0.9))
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["cacheHitRatio"] == 0.8


# ---------------------------------------------------------------------------- statements


def test_slow_queries_need_pg_stat_statements_and_name_each_statement() -> None:
    assert "CREATE EXTENSION pg_stat_statements in clinical" in str(
        judges.statements_missing(snapshot(statements=None))
    )
    snap = snapshot(
        statements=[Statement(7, 3, 2500.0, "SELECT * FROM visits WHERE id = ?"),
                    Statement(8, 900, 2.0, "SELECT ?")]
    )  # fmt: skip
    assert judges.statements_missing(snap) is None
    made = judged(judges.judge_slow_queries, snap, target(slowQuery="1s"))
    (finding,) = made.findings
    assert finding.description == (
        "queryid 7 (3 calls) mean 2.5s (fail > 1s): SELECT * FROM visits WHERE id = ?"
    )
    assert made.metrics["slowQuery"] == 2.5
    denied = replace(snap, reads_all_stats=False)
    made = judged(judges.judge_slow_queries, denied, target(slowQuery="1s"))
    assert "cannot read other users' statements" in made.findings[0].description


# ---------------------------------------------------------------------------- the measurement


def test_the_snapshot_is_shared_and_unrepaired_without_apply() -> None:
    taken: list[str] = []

    def take(tgt: DatabaseMaintenanceTarget, db: Database) -> Snapshot:
        taken.append(tgt.database)
        return snapshot(tables=[table("readings", live=4000, dead=6000)])

    cache = SnapshotCache(take)
    db = Database("clinical", "postgresql://127.0.0.1:1/clinical")
    for _ in range(2):
        assessment = Assessment()
        measured = MeasuredDatabase(target(), db, cache, assessment, apply=False)
        snap = measured.repaired(judges.dead_tuple_repairs)  # due, but not allowed: untouched
        assert snap.tables[0].dead == 6000
        assert assessment.details["tasks"] == {"vacuum": False, "analyze": False, "reindex": False}
        assert assessment.details["dbMetrics"]["deadTuples"] == 6000
    assert taken == ["clinical"]


def test_an_unreadable_database_raises_its_probe_error_naming_it() -> None:
    # the real refusal is tested end to end (test_review_unreachable.py); here only the naming
    def take(tgt: DatabaseMaintenanceTarget, db: Database) -> Snapshot:
        raise ProbeError("cannot connect")

    db = Database("clinical", "postgresql://127.0.0.1:1/clinical")
    measured = MeasuredDatabase(target(), db, SnapshotCache(take), Assessment(), apply=False)
    with pytest.raises(ProbeError) as raised:
        measured.snapshot  # noqa: B018 (reading it is the measurement)
    assert raised.value.target == "clinical"
