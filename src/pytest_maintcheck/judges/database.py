"""The weekly database checks' rules, judged on one database's Snapshot.

Each ``*_repairs`` function says what --maintcheck-apply would repair for a check; the check
judges the snapshot measured after that repair (MeasuredDatabase.repaired).
"""

from __future__ import annotations

import math

from pytest_maintcheck.config import DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_maintenance as pgm
from pytest_maintcheck.probes import pg_repair
from pytest_maintcheck.probes.pg_maintenance import Snapshot, TableStats
from pytest_maintcheck.probes.pg_repair import Repair
from pytest_maintcheck.units import format_duration, format_size
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

TASKS = {"vacuum": ("vacuumed", "VACUUM (ANALYZE)"), "analyze": ("analyzed", "ANALYZE")}


# ---------------------------------------------------------------------------- dead tuples


def _counted(snap: Snapshot, target: DatabaseMaintenanceTarget) -> list[TableStats]:
    """Tables with enough dead tuples to judge their ratio (a tiny table's ratio is noise)."""
    return [t for t in snap.tables if t.dead_count >= target.min_dead_tuples]


def _over_dead_ratio(snap: Snapshot, target: DatabaseMaintenanceTarget) -> list[TableStats]:
    limit = target.thresholds.get("deadTupleRatio")
    if limit is None:
        return []
    return [t for t in _counted(snap, target) if limit.judge(t.dead_ratio) is not Verdict.PASS]


def dead_tuple_repairs(snap: Snapshot, target: DatabaseMaintenanceTarget) -> list[Repair]:
    """VACUUM (ANALYZE) for each table past the ratio or past autovacuum's own trigger."""
    due = {t.qualified: t for t in _over_dead_ratio(snap, target)}
    due.update({t.qualified: t for t in pgm.past_autovacuum_trigger(snap, target.min_dead_tuples)})
    return [pg_repair.vacuum(t) for t in due.values()]


def _dead_subject(table: TableStats, snap: Snapshot) -> str:
    since = f"; its counter restarted when {snap.counted_since}" if table.estimated else ""
    return f"{table.qualified} ({table.describe_dead()}{since})"


def judge_dead_tuples(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """Each table's dead tuple ratio; tables autovacuum left past its trigger; what is unknown."""
    counted = _counted(snap, target)
    by_subject = {_dead_subject(t, snap): t for t in counted}
    assessment.measure_each(
        target.thresholds.get("deadTupleRatio"),
        [(subject, t.dead_ratio) for subject, t in by_subject.items()],
        action=lambda subject: (
            f"VACUUM (ANALYZE) {by_subject[subject].sql_name}; check why autovacuum did not "
            "keep up."
        ),
        key="deadTupleRatio",
    )
    # a database without dead tuples measured 0, not nothing (also without a threshold)
    assessment.metrics["deadTupleRatio"] = max((t.dead_ratio for t in counted), default=0)
    flagged = {t.qualified for t in _over_dead_ratio(snap, target)}
    for table in pgm.past_autovacuum_trigger(snap, target.min_dead_tuples):
        if table.qualified in flagged:
            continue
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{table.qualified}: {table.dead_count} dead tuples, past autovacuum's trigger of "
            f"{table.autovacuum_trigger:.0f} ({pgm.why_not_vacuumed(table, snap)})",
            f"VACUUM (ANALYZE) {table.sql_name}; re-enable or tune autovacuum for it.",
        )
    unknown = pgm.dead_space_unknown(snap)
    if unknown:
        assessment.add_finding(
            Verdict.PASS,
            f"dead tuples of {pgm.some_tables(unknown)} unknown: counted only since "
            f"{snap.counted_since}, and no estimate covers them (to estimate them after a "
            "reset: CREATE EXTENSION pgstattuple, whose pgstattuple_approx pg_monitor may run)",
        )
    assessment.metrics.update(deadTuples=snap.dead_tuples, tables=len(snap.tables))


# ---------------------------------------------------------------------------- vacuum age


def vacuum_age_repairs(snap: Snapshot, target: DatabaseMaintenanceTarget) -> list[Repair]:
    """VACUUM (ANALYZE) for tables vacuumed too long ago; ANALYZE for those only analyzed so."""
    unvacuumed = pgm.neglected(snap, target.thresholds.get("vacuumAge"), "vacuum")
    analyze_only = [
        t
        for t in pgm.neglected(snap, target.thresholds.get("analyzeAge"), "analyze")
        if t not in unvacuumed
    ]
    return [pg_repair.vacuum(t) for t in unvacuumed] + [pg_repair.analyze(t) for t in analyze_only]


def _last_done(snap: Snapshot, table: TableStats, task: str) -> str:
    """'last vacuumed 3 days ago', 'never vacuumed', or 'not vacuumed since <reset>'."""
    verb = TASKS[task][0]
    age = table.vacuum_age if task == "vacuum" else table.analyze_age
    if age is not None:
        return f"last {verb} {format_duration(age)} ago"
    if math.isinf(snap.counted_for):
        return f"never {verb}"
    return f"not {verb} since {snap.counted_since} ({format_duration(snap.counted_for)} ago)"


def _judge_task_age(snap: Snapshot, limit: Threshold, task: str, assessment: Assessment) -> None:
    statement = TASKS[task][1]
    # one finding per table: its words ("never", "since the reset") say more than a number
    for table in pgm.neglected(snap, limit, task):
        assessment.add_finding(
            limit.judge(pgm.least_age(snap, table, task)),
            f"{table.qualified}: {_last_done(snap, table, task)} ({limit.describe()})",
            f"{statement} {table.sql_name}; check the autovacuum settings for it.",
        )
    unknown = pgm.age_unknown(snap, limit, task)
    if unknown:
        assessment.add_finding(
            Verdict.PASS,
            f"last {task} of {pgm.some_tables(unknown)} unknown since {snap.counted_since} "
            f"({format_duration(snap.counted_for)} ago, within {limit.describe()})",
        )


def judge_vacuum_age(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """Time since each table with work was last vacuumed and analyzed; a stats reset makes
    an age unknown (said so), never "never"."""
    for metric, task in (("vacuumAge", "vacuum"), ("analyzeAge", "analyze")):
        ages = [pgm.least_age(snap, t, task) for t in snap.tables if pgm.has_work(t, task)]
        oldest = max(ages, default=0.0)
        assessment.metrics[metric] = None if math.isinf(oldest) else oldest
        limit = target.thresholds.get(metric)
        if limit is not None:
            assessment.thresholds[metric] = limit.to_json()
            _judge_task_age(snap, limit, task, assessment)


# ---------------------------------------------------------------------------- indexes


def invalid_index_repairs(snap: Snapshot, target: DatabaseMaintenanceTarget) -> list[Repair]:
    """REINDEX INDEX CONCURRENTLY for each invalid index (not one still being built)."""
    return [pg_repair.reindex(i) for i in pgm.invalid_indexes(snap)]


def judge_invalid_indexes(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    invalid = pgm.invalid_indexes(snap)
    assessment.metrics["invalidIndexes"] = len(invalid)
    assessment.details["invalidIndexes"] = [i.qualified for i in invalid]
    for index in invalid:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{index.qualified} on {index.table} is invalid (a failed CREATE INDEX CONCURRENTLY)",
            f"REINDEX INDEX CONCURRENTLY {index.sql_name}, or drop it and create it again "
            "(for a unique index, remove the duplicate rows first).",
        )


def judge_index_usage(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """Indexes never scanned since the stats reset, and indexes covering the same columns."""
    since = f"since {snap.stats_reset:%Y-%m-%d}" if snap.stats_reset else "since the stats began"
    unused = pgm.unused_indexes(snap)
    duplicates = pgm.duplicate_indexes(snap)
    assessment.metrics.update(unusedIndexes=len(unused), duplicateIndexes=len(duplicates))
    for index in unused:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{index.qualified} on {index.table} ({format_size(index.bytes)}) "
            f"never scanned {since}",
            f"Review and DROP INDEX CONCURRENTLY {index.sql_name} if no query needs it.",
            severity="low",  # issue 3
        )
    for group in duplicates:
        names = [i.qualified for i in group]
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{group[0].table}: indexes {', '.join(names)} cover the same columns",
            f"Keep one of {', '.join(i.sql_name for i in group)} and DROP INDEX CONCURRENTLY "
            "the others.",
            severity="low",  # issue 3
        )


# ---------------------------------------------------------------------------- wraparound


def judge_wraparound(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """Wraparound stops the whole cluster: every database's age is judged, not only ours."""
    worst = snap.oldest_database
    share = worst.age / snap.freeze_max_age if snap.freeze_max_age else 0.0
    oldest = ", ".join(f"{t.name} ({t.age})" for t in snap.oldest_frozen)
    ours = worst.name == snap.database
    assessment.details["oldestTables"] = [
        {"table": t.name, "age": t.age} for t in snap.oldest_frozen
    ]
    assessment.details["databases"] = {d.name: d.age for d in snap.database_ages} | {
        snap.database: snap.frozen_age
    }
    assessment.metrics["freezeMaxAgeFraction"] = round(share, 4)
    limit = target.thresholds.get("wraparoundAge")
    assessment.measure(
        limit,
        worst.age,
        subject=f"{worst.name}: {share:.0%} of autovacuum_freeze_max_age"
        + (f"; oldest: {oldest}" if ours else ""),
        action=f"VACUUM (FREEZE) the oldest tables of {worst.name}"
        + (f": {oldest}." if ours else " (vacuumdb --freeze)."),
    )
    if limit is None:
        return
    for other in sorted(snap.database_ages, key=lambda d: -d.age):
        if other.name != worst.name and limit.judge(other.age) is not Verdict.PASS:
            assessment.add_finding(
                limit.judge(other.age),
                f"{other.name}: transaction ID age {other.age} ({limit.describe()})",
                f"VACUUM (FREEZE) the oldest tables of {other.name} (vacuumdb --freeze).",
            )
    if not ours and limit.judge(snap.frozen_age) is not Verdict.PASS:
        assessment.add_finding(
            limit.judge(snap.frozen_age),
            f"{snap.database}: transaction ID age {snap.frozen_age}; oldest: {oldest}",
            f"VACUUM (FREEZE) the oldest tables of {snap.database}: {oldest}.",
        )


# ---------------------------------------------------------------------------- sessions


def _missing_pg_monitor(snap: Snapshot, what: str, assessment: Assessment) -> bool:
    """Without pg_read_all_stats the counts leave out other users: could not measure."""
    if snap.reads_all_stats:
        return False
    assessment.could_not_measure(
        f"{snap.database}: role {snap.user} cannot {what}; "
        f"missing grant: GRANT pg_monitor TO {pgm.quote_ident(snap.user)}"
    )
    return True


def judge_connections(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """Connections in use of max_connections, and each transaction open too long."""
    if _missing_pg_monitor(snap, "see other users' sessions", assessment):
        return
    assessment.details["byState"] = pgm.sessions_by_state(snap)
    assessment.measure(
        target.thresholds.get("connectionUsage"),
        snap.connections / snap.max_connections,
        subject=f"{snap.connections} of max_connections {snap.max_connections}",
    )
    sessions = pgm.open_transactions(snap)
    assessment.details["openTransactions"] = [
        {"pid": s.pid, "user": s.user, "application": s.application, "state": s.state,
         "transactionAge": s.transaction_age, "stateAge": s.state_age}
        for s in sessions
    ]  # fmt: skip
    limit = target.thresholds.get("longTransaction")
    if limit is None:
        return
    by_subject = {_session_subject(s): s for s in sessions}
    assessment.measure_each(
        limit,
        [(subject, s.transaction_age or 0.0) for subject, s in by_subject.items()],
        action=lambda subject: _end_transaction(by_subject[subject]),
    )
    assessment.metrics["longTransaction"] = sessions[0].transaction_age if sessions else 0.0


def _session_subject(s: pgm.Session) -> str:
    idle = f", idle for {format_duration(s.state_age or 0)}" if "idle" in s.state else ""
    return f"{s.describe()} {s.state}{idle}"


def _end_transaction(s: pgm.Session) -> str:
    return (
        f"Ask the owner of application {s.application or '?'} to commit; if it is stuck, "
        f"SELECT pg_terminate_backend({s.pid}); set idle_in_transaction_session_timeout."
    )


# ---------------------------------------------------------------------------- size and cache


def judge_database_size(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    assessment.details.update(
        largestTables=snap.largest_tables(), largestIndexes=snap.largest_indexes()
    )
    top = ", ".join(f"{t['table']} {format_size(t['bytes'])}" for t in snap.largest_tables(3))
    assessment.measure(
        target.thresholds.get("size"), snap.size, subject=f"{snap.database} (largest: {top})"
    )


def judge_cache_hit(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """The share of block reads served from shared buffers; too little traffic is no verdict."""
    assessment.details["blockAccesses"] = snap.cache_accesses
    ratio = snap.cache_hit_ratio
    if ratio is None:
        assessment.metrics["cacheHitRatio"] = None
        assessment.add_finding(
            Verdict.PASS,
            f"no verdict: too little traffic to judge the cache hit ratio of {snap.database} "
            f"({snap.cache_accesses} block accesses since the stats reset, "
            f"{pgm.MIN_CACHE_ACCESSES} needed)",
        )
        return
    assessment.measure(
        target.thresholds.get("cacheHitRatio"),
        ratio,
        subject=f"{snap.database} ({snap.blocks_read} blocks read, {snap.blocks_hit} hit)",
    )


# ---------------------------------------------------------------------------- statements


def statements_missing(snap: Snapshot) -> str | None:
    """Why the slow query check cannot run here (pg_stat_statements absent), with the fix;
    None when it can. The check skips with this reason: a missing extension is no finding."""
    if snap.statements is not None:
        return None
    db = snap.database
    why = snap.statements_problem or f"the pg_stat_statements extension is not installed in {db}"
    return (
        f"{why}: add pg_stat_statements to shared_preload_libraries, restart PostgreSQL, "
        f"then as a superuser run CREATE EXTENSION pg_stat_statements in {db}"
    )


def judge_slow_queries(
    snap: Snapshot, target: DatabaseMaintenanceTarget, assessment: Assessment
) -> None:
    """Mean time of the slowest statements (pg_stat_statements), each with its redacted text.

    Call only when statements_missing(snap) is None."""
    if _missing_pg_monitor(snap, "read other users' statements", assessment):
        return
    statements = snap.statements or []
    limit = target.thresholds.get("slowQuery")
    assessment.metrics["slowQuery"] = statements[0].mean_ms / 1000 if statements else 0.0
    if limit is None:
        return
    assessment.thresholds["slowQuery"] = limit.to_json()
    slow = [s for s in statements if limit.judge(s.mean_ms / 1000) is not Verdict.PASS]
    assessment.details["slowStatements"] = [
        {"queryid": s.queryid, "calls": s.calls, "meanMs": round(s.mean_ms, 1), "text": s.text}
        for s in slow
    ]
    # at most SLOWEST_STATEMENTS; each finding ends with its text, so not measure_each
    for s in slow:
        assessment.add_finding(
            limit.judge(s.mean_ms / 1000),
            f"queryid {s.queryid} ({s.calls} calls) mean {format_duration(s.mean_ms / 1000)} "
            f"({limit.describe()}): {s.text}",
            f"EXPLAIN ANALYZE queryid {s.queryid} (see pg_stat_statements) and add an index "
            "or rewrite it.",
        )
