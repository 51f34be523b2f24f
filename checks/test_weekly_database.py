"""Weekly database maintenance and performance, one check per databaseMaintenance entry.

All checks of one database judge one shared snapshot (one session, a fixed number of catalog
queries). Read-only unless --maintcheck-apply: then the tables and indexes at fault are
repaired and the check judges the state measured after the repair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from pytest_maintcheck.config import Config, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_maintenance as pgm
from pytest_maintcheck.probes import pg_repair
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.units import format_duration, format_size
from pytest_maintcheck.verdict import Assessment, Verdict

pytestmark = pytest.mark.weekly

Snap = pgm.Snapshot


@pytest.fixture(scope="session")
def db_snapshots() -> pgm.SnapshotCache:
    """Snapshots of this run, one per database, shared by all its checks."""
    return pgm.SnapshotCache()


class Probe:
    """The snapshot of one check's database, and the way to repair it and measure again."""

    def __init__(
        self,
        target: DatabaseMaintenanceTarget,
        config: Config,
        cache: pgm.SnapshotCache,
        assessment: Assessment,
        apply: bool,
    ) -> None:
        self.target, self.database = target, config.databases[target.database]
        self.cache, self.assessment, self.apply = cache, assessment, apply
        assessment.details.update(
            database=target.database, tasks={"vacuum": False, "analyze": False, "reindex": False}
        )
        self._snap: Snap | None = None
        self._unreached: ProbeError | None = None
        try:
            self._snap = self._record(cache.get(target, self.database))
        except ProbeError as exc:  # raised when a check reads it: it could not measure
            self._unreached = exc.about(target.database)

    @property
    def snap(self) -> Snap | None:
        """The snapshot; a database that could not be read raises ProbeError here."""
        if self._unreached is not None:
            raise self._unreached
        return self._snap

    def _record(self, snap: Snap | None) -> Snap | None:
        if snap is not None:
            self.assessment.details["dbMetrics"] = snap.db_metrics()
        return snap

    def repair(self, repairs: Sequence[pg_repair.Repair]) -> Snap | None:
        """With --maintcheck-apply: run the repairs, then measure again; else leave it be."""
        if not self.apply or not repairs or self.snap is None:
            return self.snap
        done = pg_repair.apply_repairs(self.target, self.database, repairs, self.snap.user)
        details = self.assessment.details
        details["tasks"].update(done.tasks)
        details["performed"] = done.performed
        details["repair"] = done.to_json()
        for line in done.refused + done.failed:
            self.assessment.add_finding(Verdict.VIOLATION, f"{self.target.database}: {line}")
        self._snap = self._record(self.cache.refresh(self.target, self.database))
        return self._snap


@pytest.fixture
def probe(
    maintained_database: DatabaseMaintenanceTarget,
    maintcheck_config: Config,
    db_snapshots: pgm.SnapshotCache,
    assessment: Assessment,
    maintcheck_apply: bool,
) -> Probe:
    return Probe(maintained_database, maintcheck_config, db_snapshots, assessment, maintcheck_apply)


def _over_dead_ratio(snap: Snap, target: DatabaseMaintenanceTarget) -> list[pgm.TableStats]:
    limit = target.thresholds.get("deadTupleRatio")
    return [
        t
        for t in snap.tables
        if t.dead_count >= target.min_dead_tuples
        and limit is not None
        and limit.judge(t.dead_ratio) is not Verdict.PASS
    ]


@pytest.mark.maintcheck("dead_tuples")
def test_dead_tuples(probe: Probe, assessment: Assessment) -> None:
    target, snap = probe.target, probe.snap
    if snap is None:
        return
    due = {t.qualified: t for t in _over_dead_ratio(snap, target)}
    due.update({t.qualified: t for t in pgm.past_autovacuum_trigger(snap, target.min_dead_tuples)})
    snap = probe.repair([pg_repair.vacuum(t) for t in due.values()])
    if snap is None:
        return
    limit = target.thresholds.get("deadTupleRatio")
    worst = max(
        (t.dead_ratio for t in snap.tables if t.dead_count >= target.min_dead_tuples), default=0
    )
    assessment.metrics["deadTupleRatio"] = worst
    if limit is not None:
        assessment.thresholds["deadTupleRatio"] = limit.to_json()
    for table in _over_dead_ratio(snap, target):
        since = f"; its counter restarted when {snap.counted_since}" if table.estimated else ""
        assessment.measure(
            limit,
            table.dead_ratio,
            subject=f"{table.qualified} ({table.describe_dead()}{since})",
            action=f"VACUUM (ANALYZE) {table.sql_name}; check why autovacuum did not keep up.",
            key="deadTupleRatio",
        )
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


@pytest.mark.maintcheck("vacuum_age")
def test_vacuum_age(probe: Probe, assessment: Assessment) -> None:
    target, snap = probe.target, probe.snap
    if snap is None:
        return
    unvacuumed = pgm.neglected(snap, target.thresholds.get("vacuumAge"), "vacuum")
    analyze_only = [
        t
        for t in pgm.neglected(snap, target.thresholds.get("analyzeAge"), "analyze")
        if t not in unvacuumed
    ]
    snap = probe.repair(
        [pg_repair.vacuum(t) for t in unvacuumed] + [pg_repair.analyze(t) for t in analyze_only]
    )
    if snap is None:
        return
    for metric, task in (("vacuumAge", "vacuum"), ("analyzeAge", "analyze")):
        limit = target.thresholds.get(metric)
        ages = [pgm.least_age(snap, t, task) for t in snap.tables if pgm.has_work(t, task)]
        oldest = max(ages, default=0.0)
        assessment.metrics[metric] = None if math.isinf(oldest) else oldest
        if limit is None:
            continue
        assessment.thresholds[metric] = limit.to_json()
        verb = "vacuumed" if task == "vacuum" else "analyzed"
        statement = "VACUUM (ANALYZE)" if task == "vacuum" else "ANALYZE"
        for table in pgm.neglected(snap, limit, task):
            age = table.vacuum_age if task == "vacuum" else table.analyze_age
            if age is not None:
                when = f"last {verb} {format_duration(age)} ago"
            elif math.isinf(snap.counted_for):
                when = f"never {verb}"
            else:
                when = (
                    f"not {verb} since {snap.counted_since} "
                    f"({format_duration(snap.counted_for)} ago)"
                )
            assessment.add_finding(
                limit.judge(pgm.least_age(snap, table, task)),
                f"{table.qualified}: {when} ({limit.describe()})",
                f"{statement} {table.sql_name}; check the autovacuum settings for it.",
            )
        unknown = pgm.age_unknown(snap, limit, task)
        if unknown:
            assessment.add_finding(
                Verdict.PASS,
                f"last {task} of {pgm.some_tables(unknown)} unknown since {snap.counted_since} "
                f"({format_duration(snap.counted_for)} ago, within {limit.describe()})",
            )


@pytest.mark.maintcheck("invalid_indexes")
def test_invalid_indexes(probe: Probe, assessment: Assessment) -> None:
    snap = probe.snap
    if snap is None:
        return
    snap = probe.repair([pg_repair.reindex(i) for i in pgm.invalid_indexes(snap)])
    if snap is None:
        return
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


@pytest.mark.maintcheck("wraparound")
def test_wraparound(probe: Probe, assessment: Assessment) -> None:
    """Wraparound stops the whole cluster: every database's age is judged, not only ours."""
    snap = probe.snap
    if snap is None:
        return
    worst = snap.oldest_database
    share = worst.age / snap.freeze_max_age if snap.freeze_max_age else 0.0
    oldest = ", ".join(f"{t.name} ({t.age})" for t in snap.oldest_frozen)
    assessment.details["oldestTables"] = [
        {"table": t.name, "age": t.age} for t in snap.oldest_frozen
    ]
    assessment.details["databases"] = {d.name: d.age for d in snap.database_ages} | {
        snap.database: snap.frozen_age
    }
    assessment.metrics["freezeMaxAgeFraction"] = round(share, 4)
    limit = probe.target.thresholds.get("wraparoundAge")
    assessment.measure(
        limit,
        worst.age,
        subject=f"{worst.name}: {share:.0%} of autovacuum_freeze_max_age"
        + (f"; oldest: {oldest}" if worst.name == snap.database else ""),
        action=f"VACUUM (FREEZE) the oldest tables of {worst.name}"
        + (f": {oldest}." if worst.name == snap.database else " (vacuumdb --freeze)."),
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
    if worst.name != snap.database and limit.judge(snap.frozen_age) is not Verdict.PASS:
        assessment.add_finding(
            limit.judge(snap.frozen_age),
            f"{snap.database}: transaction ID age {snap.frozen_age}; oldest: {oldest}",
            f"VACUUM (FREEZE) the oldest tables of {snap.database}: {oldest}.",
        )


@pytest.mark.maintcheck("connections")
def test_connections(probe: Probe, assessment: Assessment) -> None:
    snap = probe.snap
    if snap is None:
        return
    if not snap.reads_all_stats:
        assessment.could_not_measure(
            f"{snap.database}: role {snap.user} cannot see other users' sessions; "
            f"missing grant: GRANT pg_monitor TO {pgm.quote_ident(snap.user)}"
        )
        return
    assessment.details["byState"] = pgm.sessions_by_state(snap)
    assessment.measure(
        probe.target.thresholds.get("connectionUsage"),
        snap.connections / snap.max_connections,
        subject=f"{snap.connections} of max_connections {snap.max_connections}",
    )
    limit = probe.target.thresholds.get("longTransaction")
    sessions = pgm.open_transactions(snap)
    assessment.details["openTransactions"] = [
        {"pid": s.pid, "user": s.user, "application": s.application, "state": s.state,
         "transactionAge": s.transaction_age, "stateAge": s.state_age}
        for s in sessions
    ]  # fmt: skip
    if limit is None:
        return
    assessment.metrics["longTransaction"] = sessions[0].transaction_age if sessions else 0.0
    assessment.thresholds["longTransaction"] = limit.to_json()
    for s in sessions:
        verdict = limit.judge(s.transaction_age or 0.0)
        idle = f", idle for {format_duration(s.state_age or 0)}" if "idle" in s.state else ""
        assessment.add_finding(
            verdict,
            f"{s.describe()} {s.state}{idle}: transaction open for "
            f"{format_duration(s.transaction_age or 0)} ({limit.describe()})",
            f"Ask the owner of application {s.application or '?'} to commit; if it is stuck, "
            f"SELECT pg_terminate_backend({s.pid}); set idle_in_transaction_session_timeout.",
        )


@pytest.mark.maintcheck("database_size")
def test_database_size(probe: Probe, assessment: Assessment) -> None:
    snap = probe.snap
    if snap is None:
        return
    assessment.details.update(
        largestTables=snap.largest_tables(), largestIndexes=snap.largest_indexes()
    )
    top = ", ".join(f"{t['table']} {format_size(t['bytes'])}" for t in snap.largest_tables(3))
    assessment.measure(
        probe.target.thresholds.get("size"),
        snap.size,
        subject=f"{snap.database} (largest: {top})",
    )


@pytest.mark.maintcheck("cache_hit")
def test_cache_hit(probe: Probe, assessment: Assessment) -> None:
    snap = probe.snap
    if snap is None:
        return
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
        probe.target.thresholds.get("cacheHitRatio"),
        ratio,
        subject=f"{snap.database} ({snap.blocks_read} blocks read, {snap.blocks_hit} hit)",
    )


@pytest.mark.maintcheck("slow_queries")
def test_slow_queries(probe: Probe, assessment: Assessment) -> None:
    snap = probe.snap
    if snap is None:
        return
    db = snap.database
    if snap.statements is None:
        why = (
            snap.statements_problem or f"the pg_stat_statements extension is not installed in {db}"
        )
        pytest.skip(
            f"{why}: add pg_stat_statements to shared_preload_libraries, restart PostgreSQL, "
            f"then as a superuser run CREATE EXTENSION pg_stat_statements in {db}"
        )
    if not snap.reads_all_stats:
        assessment.could_not_measure(
            f"{db}: role {snap.user} cannot read other users' statements; "
            f"missing grant: GRANT pg_monitor TO {pgm.quote_ident(snap.user)}"
        )
        return
    limit = probe.target.thresholds.get("slowQuery")
    slowest = snap.statements[0].mean_ms / 1000 if snap.statements else 0.0
    assessment.metrics["slowQuery"] = slowest
    if limit is None:
        return
    assessment.thresholds["slowQuery"] = limit.to_json()
    slow = [s for s in snap.statements if limit.judge(s.mean_ms / 1000) is not Verdict.PASS]
    assessment.details["slowStatements"] = [
        {"queryid": s.queryid, "calls": s.calls, "meanMs": round(s.mean_ms, 1), "text": s.text}
        for s in slow
    ]
    for s in slow:
        assessment.add_finding(
            limit.judge(s.mean_ms / 1000),
            f"queryid {s.queryid} ({s.calls} calls) mean {format_duration(s.mean_ms / 1000)} "
            f"({limit.describe()}): {s.text}",
            f"EXPLAIN ANALYZE queryid {s.queryid} (see pg_stat_statements) and add an index "
            "or rewrite it.",
        )


@pytest.mark.maintcheck("index_usage")
def test_index_usage(probe: Probe, assessment: Assessment) -> None:
    snap = probe.snap
    if snap is None:
        return
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
