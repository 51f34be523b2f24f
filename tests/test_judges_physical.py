"""The WAL archiving, replication and physical backup rules, judged in-process on readings
made for the test.

tests/test_wal_replication.py, test_physical_backups.py and test_barman.py build real clusters,
repositories and restores: they prove the wiring; these prove each rule, fast. The last tests
run the checks against a real pgbackrest and a closed port: tool and database errors escape a
check and become "could not measure".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_runs import run_checks
from pytest_maintcheck.config import (
    ArchivingTarget,
    Backup,
    Database,
    ReplicationTarget,
    RestoreTest,
)
from pytest_maintcheck.judges import physical, replication
from pytest_maintcheck.probes.archiving import ArchiverStatus, measure_archiver
from pytest_maintcheck.probes.physical import BackupSet, Catalog, ToolError, segment_number
from pytest_maintcheck.probes.physical_backends import CatalogCache
from pytest_maintcheck.probes.physical_restore import PhysicalRestoreOutcome
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.probes.replication import Receiver, ReplicationState, Slot, Standby
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
HOUR = 3600.0
GB = 10**9


def texts(assessment: Assessment) -> str:
    return "\n".join(f.description for f in assessment.findings)


# ---------------------------------------------------------------------------- WAL archiving


def archiver(**kw: object) -> ArchiverStatus:
    base: dict[str, object] = {
        "in_recovery": False, "archive_mode": "on", "has_command": True, "has_library": False,
        "archived_count": 10, "last_archived_wal": "000000010000000000000010",
        "last_archived_time": NOW - timedelta(minutes=20), "failed_count": 0,
        "last_failed_wal": None, "last_failed_time": None, "stats_reset": None, "waiting": 0,
        "oldest_waiting": None, "now": NOW,
    }  # fmt: skip
    base.update(kw)
    return ArchiverStatus(**base)  # type: ignore[arg-type]


ARCHIVING = ArchivingTarget("primary", Threshold("archiveMaxAge", fail=900.0))


def archiving(status: ArchiverStatus) -> Assessment:
    made = Assessment()
    replication.judge_wal_archiving(status, ARCHIVING, made)
    return made


def test_archiving_off_is_a_violation_and_judges_nothing_else() -> None:
    made = archiving(archiver(archive_mode="off", waiting=5))
    assert made.verdict is Verdict.VIOLATION
    assert [f.description for f in made.findings] == [
        "WAL archiving is off (archive_mode=off): no point-in-time recovery is possible past "
        "the newest base backup"
    ]
    assert "archiveMaxAge" not in made.metrics


def test_archive_mode_on_without_a_command_is_a_violation() -> None:
    made = archiving(archiver(has_command=False, waiting=4))
    assert made.verdict is Verdict.VIOLATION
    assert "neither archive_command nor archive_library is set: 4 WAL segments" in texts(made)


def test_a_failing_archiver_is_a_violation_naming_the_segment_and_last_success() -> None:
    failed_at = NOW - timedelta(minutes=2)
    made = archiving(
        archiver(failed_count=7, last_failed_wal="000000010000000000000011",
                 last_failed_time=failed_at, waiting=2)
    )  # fmt: skip
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["archiveFailures"] == 7
    assert made.details["dbMetrics"]["archiveFailing"] is True
    assert (
        "archive_command is failing: last attempt for 000000010000000000000011 failed at "
        "2026-03-01 02:58:00 UTC (7 failures since the statistics reset); last success "
        "000000010000000000000010 at 2026-03-01 02:40:00 UTC; 2 segments waiting"
    ) in texts(made)


def test_a_failure_before_the_last_success_is_over() -> None:
    made = archiving(archiver(failed_count=4, last_failed_time=NOW - timedelta(hours=2)))
    assert made.verdict is Verdict.PASS
    assert made.metrics["archiveFailures"] == 0


def test_archive_age_is_judged_only_while_segments_wait() -> None:
    """Idle 20 minutes after the last segment: not late. Three segments waiting: the recovery
    point is 20 minutes old, past 15."""
    idle = archiving(archiver())
    assert idle.verdict is Verdict.PASS
    assert idle.metrics["archiveMaxAge"] == 0.0
    assert idle.thresholds["archiveMaxAge"]["fail"] == 900.0
    assert "nothing waiting to be archived; last segment archived 20m ago" in idle.notes[0]
    busy = archiving(archiver(waiting=3))
    assert busy.verdict is Verdict.VIOLATION
    assert busy.metrics["archiveMaxAge"] == 1200.0
    assert busy.findings[0].description.startswith("3 WAL segments waiting to be archived: ")


def test_never_archived_ages_from_the_oldest_waiting_segment() -> None:
    made = archiving(
        archiver(last_archived_time=None, last_archived_wal=None, waiting=1,
                 oldest_waiting=NOW - timedelta(minutes=30))
    )  # fmt: skip
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["archiveMaxAge"] == 1800.0


def test_a_standby_archives_on_its_primary() -> None:
    made = archiving(archiver(in_recovery=True, archive_mode="on", has_command=False, waiting=9))
    assert made.verdict is Verdict.PASS
    assert "its WAL is archived on the primary" in made.notes[0]


# ---------------------------------------------------------------------------- replication


def standby(name: str = "standby1", **kw: object) -> Standby:
    base: dict[str, object] = {
        "name": name, "address": "10.0.0.2", "state": "streaming", "sync_state": "async",
        "replay_lag_bytes": 0.0, "replay_lag": None, "slot": name,
    }  # fmt: skip
    base.update(kw)
    return Standby(**base)  # type: ignore[arg-type]


def slot(name: str = "standby1", **kw: object) -> Slot:
    base: dict[str, object] = {
        "name": name, "type": "physical", "active": True, "wal_status": "reserved",
        "retained": 1e6,
    }  # fmt: skip
    base.update(kw)
    return Slot(**base)  # type: ignore[arg-type]


def target(
    standbys: int | None = 1, names: tuple[str, ...] = (), **kw: Threshold
) -> ReplicationTarget:
    lag_bytes = Threshold("replayLagBytes", warn=GB, fail=16 * GB)
    retained = Threshold("slotRetained", warn=5 * GB, fail=20 * GB)
    return ReplicationTarget(
        "primary", standbys=standbys, standby_names=names,
        replay_lag=kw.get("replay_lag", Threshold("replayLag", warn=30.0, fail=300.0)),
        replay_lag_bytes=kw.get("replay_lag_bytes", lag_bytes),
        slot_retained=kw.get("slot_retained", retained),
    )  # fmt: skip


def primary(*standbys: Standby, slots: tuple[Slot, ...] = (), sync: str = "") -> ReplicationState:
    return ReplicationState(False, True, sync, list(standbys), list(slots))


def judged(state: ReplicationState, expect: ReplicationTarget | None = None) -> Assessment:
    made = Assessment()
    replication.judge_replication(state, expect or target(), made)
    return made


def test_a_primary_with_its_caught_up_standby_passes() -> None:
    made = judged(primary(standby(), slots=(slot(),)))
    assert made.verdict is Verdict.PASS, made.message()
    assert made.metrics["standbys"] == 1
    assert made.metrics["replayLag"] == 0.0  # NULL in the view once caught up with 0 bytes
    assert made.details["dbMetrics"]["inactiveSlots"] == 0


def test_a_missing_standby_by_count_and_by_name() -> None:
    by_count = judged(primary(), target(2))
    assert by_count.verdict is Verdict.VIOLATION
    assert "0 of 2 expected standbys streaming (none)" in texts(by_count)
    by_name = judged(primary(standby("standby2")), target(None, ("standby1", "standby2")))
    assert by_name.verdict is Verdict.VIOLATION
    assert texts(by_name) == "expected standby standby1 is not streaming from this primary"


def test_a_standby_not_streaming_is_degraded_and_does_not_count() -> None:
    made = judged(primary(standby(state="catchup")))
    assert made.verdict is Verdict.VIOLATION  # expected 1 streaming, 0 are
    assert "standby standby1 (10.0.0.2) is catchup, not streaming" in texts(made)
    assert made.metrics["standbys"] == 0


def test_synchronous_names_without_a_synchronous_standby_block_commits() -> None:
    made = judged(primary(standby(), sync="FIRST 1 (standby1)"))
    assert made.verdict is Verdict.VIOLATION
    assert "but no standby is synchronous: every commit waits" in texts(made)
    assert judged(primary(standby(sync_state="sync"), sync="standby1")).verdict is Verdict.PASS


def test_each_standbys_lag_in_time_and_bytes_worst_first() -> None:
    state = primary(
        standby("near", replay_lag=45.0, replay_lag_bytes=2 * GB),
        standby("far", replay_lag=600.0, replay_lag_bytes=20 * GB),
        standby("fine", replay_lag=1.0, replay_lag_bytes=1e3),
    )
    made = judged(state, target(3))
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["replayLag"] == 600.0
    assert made.metrics["replayLagBytes"] == 20 * GB
    lagging = [f for f in made.findings if "replay lag" in f.description]
    assert [(f.verdict, f.description.split(":")[0]) for f in lagging] == [
        (Verdict.VIOLATION, "standby far"),
        (Verdict.DEGRADED, "standby near"),
        (Verdict.VIOLATION, "standby far"),
        (Verdict.DEGRADED, "standby near"),
    ]
    assert "loses that much on failover" in lagging[0].action
    assert "replays that much WAL before a failover completes" in lagging[2].action


def test_a_lag_of_zero_seconds_is_measured_and_an_unknown_one_named() -> None:
    """0 s of lag with bytes still to replay is a measured 0 (it was read as unknown); a NULL
    lag while bytes wait is not measured and said so, never passed silently."""
    made = judged(primary(standby("a", replay_lag=0.0, replay_lag_bytes=5e3)))
    assert made.metrics["replayLag"] == 0.0
    unknown = judged(primary(standby("b", replay_lag=None, replay_lag_bytes=5e3)))
    assert unknown.metrics["replayLag"] is None
    assert "replay lag not measured for standby b" in unknown.notes


def test_an_inactive_slot_retaining_wal_past_the_limit() -> None:
    slots = (
        slot(),
        slot("forgotten", active=False, retained=25 * GB),
        slot("gone", active=False, wal_status="lost", retained=None),
        slot("pg_basebackup_1", active=False, temporary=True, retained=1e6),
    )
    made = judged(primary(standby(), slots=slots))
    assert made.verdict is Verdict.VIOLATION
    text = texts(made)
    assert "replication slot forgotten (physical) is inactive, holding 25.0GB of WAL" in text
    assert "replication slot forgotten (inactive): WAL retained by the slot 25.0GB" in text
    assert "replication slot gone is lost: the WAL its consumer needs was removed" in text
    assert "pg_basebackup_1" not in text  # a temporary slot goes with its session
    assert made.metrics["slotRetained"] == 25 * GB
    assert made.details["dbMetrics"]["inactiveSlots"] == 3


def test_a_role_without_pg_monitor_cannot_measure_the_lag() -> None:
    state = primary(standby(replay_lag_bytes=None))
    state.privileged = False
    made = judged(state)
    assert made.verdict is Verdict.VIOLATION
    assert made.findings[0].action == "GRANT pg_monitor TO the monitoring role."
    assert "replayLag" not in made.metrics


def on_standby(**kw: object) -> ReplicationState:
    base: dict[str, object] = {
        "status": "streaming", "sender_host": "10.0.0.1", "slot": "standby1",
        "unreplayed_bytes": 0.0, "since_last_replay": 7200.0, "paused": False,
    }  # fmt: skip
    base.update(kw)
    return ReplicationState(True, True, receiver=Receiver(**base))  # type: ignore[arg-type]


def test_a_standby_streaming_with_everything_replayed_passes() -> None:
    """Two hours since the last replayed transaction, nothing left to replay: an idle primary."""
    made = judged(on_standby(), target(None))
    assert made.verdict is Verdict.PASS, made.message()
    assert made.metrics["replayLag"] == 0.0
    assert made.details["dbMetrics"]["walReceiver"] == "streaming"


def test_a_standby_without_a_receiver_paused_or_behind() -> None:
    none = judged(on_standby(status=None), target(None))
    assert none.verdict is Verdict.VIOLATION
    assert "standby without a WAL receiver" in texts(none)
    stopping = judged(on_standby(status="stopping"), target(None))
    assert stopping.verdict is Verdict.DEGRADED
    behind = judged(on_standby(paused=True, unreplayed_bytes=2 * GB), target(None))
    assert behind.verdict is Verdict.VIOLATION  # 7200 s since the last replay, past 300 s
    assert "WAL replay is paused" in texts(behind)
    assert behind.metrics["replayLag"] == 7200.0
    assert behind.metrics["replayLagBytes"] == 2 * GB
    assert "this standby, received but not replayed: replay lag 2.0GB" in texts(behind)


# ---------------------------------------------------------------------------- pgBackRest


def backup_set(
    label: str, ended_hours_ago: float, size: int | None = 10 * GB, **kw: object
) -> BackupSet:
    stopped = NOW - timedelta(hours=ended_hours_ago)
    base: dict[str, object] = {
        "label": label, "type": "full", "started": stopped - timedelta(minutes=10),
        "stopped": stopped, "size": size, "wal_start": "000000010000000000000010",
        "wal_stop": "000000010000000000000011",
    }  # fmt: skip
    base.update(kw)
    return BackupSet(**base)  # type: ignore[arg-type]


def catalog(*sets: BackupSet, **kw: object) -> Catalog:
    return Catalog("pgbackrest", "main", list(sets), **kw)  # type: ignore[arg-type]


def stanza(**kw: object) -> Backup:
    made = Backup(
        "cluster", "pgbackrest", stanza="main", max_age=26 * HOUR,
        size_change=Threshold("sizeChange", warn=0.2, fail=0.5),
        restore_test=RestoreTest(max_duration=300.0, expect_tables=("patients",),
                                 min_rows=(("patients", 100),)),
    )  # fmt: skip
    return replace(made, **kw)  # type: ignore[arg-type]


def test_freshness_is_the_newest_sets_age_against_max_age() -> None:
    old = Assessment()
    physical.judge_physical_backup_freshness(
        stanza(), catalog(backup_set("F1", 60), backup_set("F2", 30)), old, now=NOW
    )
    assert old.verdict is Verdict.VIOLATION
    assert old.metrics["maxAge"] == 30 * HOUR
    assert old.findings[0].description.startswith("pgbackrest main: newest backup F2 (full): ")
    assert old.details["backup"] == "cluster"
    fresh = Assessment()
    physical.judge_physical_backup_freshness(stanza(), catalog(backup_set("F3", 2)), fresh, now=NOW)
    assert fresh.verdict is Verdict.PASS


def test_no_set_a_bad_stanza_a_future_date_or_checksum_errors() -> None:
    empty = Assessment()
    physical.judge_physical_backup_freshness(stanza(), catalog(), empty, now=NOW)
    assert texts(empty) == "pgbackrest main: no backup in the repository"
    bad = Assessment()
    physical.judge_physical_backup_freshness(
        stanza(), catalog(backup_set("F1", 1), status_ok=False, status="missing stanza path"),
        bad, now=NOW,
    )  # fmt: skip
    assert bad.verdict is Verdict.VIOLATION
    assert "pgbackrest main: missing stanza path" in texts(bad)
    odd = Assessment()
    physical.judge_physical_backup_freshness(
        stanza(), catalog(backup_set("F1", -5, error=True)), odd, now=NOW
    )
    assert odd.verdict is Verdict.DEGRADED
    assert "F1: pgbackrest found page checksum errors" in texts(odd)
    assert "F1 ended 5h in the future" in texts(odd)
    assert odd.metrics["maxAge"] == 0.0


def test_size_change_against_the_previous_set() -> None:
    shrank = Assessment()
    physical.judge_physical_backup_size(
        stanza(), catalog(backup_set("F1", 48, 10 * GB), backup_set("F2", 24, 5 * GB)), shrank
    )
    assert shrank.verdict is Verdict.VIOLATION  # halved: the fail level is reached
    assert shrank.metrics["sizeChange"] == 0.5
    assert "F2 (5.0GB) shrank against F1 (10.0GB)" in texts(shrank)
    grew = Assessment()
    physical.judge_physical_backup_size(
        stanza(), catalog(backup_set("F1", 48, 10 * GB), backup_set("F2", 24, 13 * GB)), grew
    )
    assert grew.verdict is Verdict.DEGRADED
    first = Assessment()
    physical.judge_physical_backup_size(stanza(), catalog(backup_set("F1", 24)), first)
    assert first.verdict is Verdict.PASS
    assert first.notes == ["F1: no earlier backup to compare with"]


def segments(first: int, last: int, *, without: tuple[int, ...] = ()) -> list[str]:
    """pgBackRest archive names (segment-sha1.gz) of segment numbers first..last."""
    return [
        f"0000000100000000{n:08X}-{'a' * 40}.gz" for n in range(first, last + 1) if n not in without
    ]


def continuity(archived: list[str], server: ArchiverStatus | None) -> Assessment:
    made = Assessment()
    physical.judge_wal_continuity(stanza(), catalog(backup_set("F1", 2)), archived, server, made)
    return made


def test_wal_continuous_from_the_newest_set_to_the_servers_last_segment() -> None:
    made = continuity(segments(0x10, 0x14), archiver(last_archived_wal="000000010000000000000014"))
    assert made.verdict is Verdict.PASS, made.message()
    assert made.metrics["walGaps"] == 0
    assert made.notes == [
        "WAL continuous from 000000010000000000000010 to 000000010000000000000014 "
        "(5 segments listed)"
    ]


def test_a_missing_segment_is_a_gap_named() -> None:
    made = continuity(segments(0x10, 0x14, without=(0x12,)), None)
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["walGaps"] == 1
    assert made.details["wal"]["missing"] == ["000000010000000000000012"]
    assert "1 WAL segments missing between 000000010000000000000010 (start of F1)" in texts(made)


def test_segments_the_server_archived_but_the_repository_lacks_are_gaps() -> None:
    """The server says it archived up to 0x16; the repository stops at 0x14: 0x15 and 0x16
    never arrived, so recovery to now is not possible."""
    made = continuity(segments(0x10, 0x14), archiver(last_archived_wal="000000010000000000000016"))
    assert made.verdict is Verdict.VIOLATION
    assert made.details["wal"]["missing"] == [
        "000000010000000000000015",
        "000000010000000000000016",
    ]
    assert made.details["wal"]["to"] == "000000010000000000000016"


def test_a_failing_archiver_breaks_continuity_to_now() -> None:
    failing = archiver(
        failed_count=3, last_failed_time=NOW, last_archived_wal="000000010000000000000014"
    )
    made = continuity(segments(0x10, 0x14), failing)
    assert made.verdict is Verdict.VIOLATION
    assert made.metrics["walGaps"] == 0
    assert "the server's archive_command is failing: WAL after 000000010000000000000014" in texts(
        made
    )


# ---------------------------------------------------------------------------- restore


def outcome(**kw: object) -> PhysicalRestoreOutcome:
    base: dict[str, object] = {
        "backup": "F2", "server": "scratch", "label": "F2", "target": "latest",
        "restored": True, "duration": 120.0, "total_duration": 125.0,
        "scratch": "/tmp/maintcheck-pitr-cluster-1", "dropped": True,
        "rows": {"patients": 650}, "replayed_segment": 0x14,
        "archive_end": "000000010000000000000014",
    }  # fmt: skip
    base.update(kw)
    return PhysicalRestoreOutcome(**base)  # type: ignore[arg-type]


def restored(result: PhysicalRestoreOutcome) -> Assessment:
    made = Assessment()
    physical.judge_physical_restore(stanza(), result, made)
    return made


def test_a_recovery_within_max_duration_with_its_rows_passes() -> None:
    made = restored(outcome())
    assert made.verdict is Verdict.PASS, made.message()
    assert made.metrics["restoreDuration"] == 120.0
    assert made.details["restore"]["scratchRemoved"] is True


def test_recovery_time_against_max_duration_also_when_it_timed_out() -> None:
    slow = restored(outcome(duration=420.0))
    assert slow.verdict is Verdict.VIOLATION
    assert (
        "F2 recovered to latest (restore start to accepting queries): restore time 7m (fail > 5m)"
        in texts(slow)
    )
    stopped = restored(
        outcome(restored=False, duration=None, timed_out=True, total_duration=380.0,
                error="the restored server did not finish recovery within 360 s", rows={})
    )  # fmt: skip
    assert stopped.metrics["restoreDuration"] == 380.0
    assert "restore of F2 recovered to latest failed: the restored server did not finish" in texts(
        stopped
    )
    failed = restored(
        outcome(restored=False, duration=None, error="pgbackrest restore failed (exit 1)")
    )
    assert failed.metrics["restoreDuration"] is None  # nothing timed: no restore time judged
    assert failed.verdict is Verdict.VIOLATION


def test_missing_tables_and_too_few_rows() -> None:
    made = restored(
        outcome(missing_tables=["visits"], short_tables=["patients"], rows={"patients": 40})
    )
    assert made.verdict is Verdict.VIOLATION
    assert "expected tables missing after recovery: visits" in texts(made)
    assert "patients has 40 rows after recovery, expected >= 100" in texts(made)


def test_recovery_to_latest_cut_short_by_a_gap() -> None:
    """PostgreSQL promotes at the first missing segment; the archive went on to 0x14."""
    made = restored(outcome(replayed_segment=segment_number("000000010000000000000012")[1]))
    assert made.verdict is Verdict.VIOLATION
    assert (
        "recovery to latest ended in WAL segment 000000010000000000000012 but the archive "
        "reaches 000000010000000000000014: a missing segment cut it short"
    ) in texts(made)
    to_a_time = restored(outcome(target="2026-03-01T01:00:00+00:00", replayed_segment=0x12))
    assert to_a_time.verdict is Verdict.PASS  # a target time stops early on purpose


def test_a_scratch_copy_left_behind_is_a_violation() -> None:
    made = restored(
        outcome(dropped=False, drop_error="/tmp/maintcheck-pitr-cluster-1 could not be removed",
                leftovers_failed=["/tmp/maintcheck-pitr-old"])
    )  # fmt: skip
    assert made.verdict is Verdict.VIOLATION
    assert "scratch restore /tmp/maintcheck-pitr-cluster-1 could not be removed" in texts(made)
    assert "leftover scratch restore not removed: /tmp/maintcheck-pitr-old" in texts(made)


# ---------------------------------------------------------------------------- could not measure


def test_a_tool_error_is_listed_once_and_named_for_each_check(tmp_path: Path) -> None:
    """A real pgbackrest with a missing config file: the error is kept, raised fresh for each
    check that asks, and names the backup entry."""
    cache = CatalogCache()
    entry = stanza(tool_config=tmp_path / "missing.conf")
    errors = []
    for _ in range(2):
        with pytest.raises(ToolError) as caught:
            cache.read(entry)
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].target == errors[1].target == "cluster"
    assert "pgbackrest exited 55" in str(errors[0])
    assert "Run the same pgbackrest or barman command by hand" in errors[0].action


def test_an_unreachable_source_database_cannot_measure_continuity() -> None:
    closed = Database("primary", "postgresql://maint@127.0.0.1:1/postgres", connect_timeout=2)
    with pytest.raises(ProbeError) as caught:
        measure_archiver(closed)
    assert caught.value.target == "primary"
    assert "refused" in caught.value.reason


def test_the_checks_record_could_not_measure_when_the_tool_fails(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The check modules end to end: pgbackrest fails, each check is "could not measure"
    with the tool's error, and the run goes on."""
    config = {
        "version": 1,
        "backups": [
            {"name": "cluster", "kind": "pgbackrest", "stanza": "main",
             "config": str(tmp_path / "missing.conf")},
        ],
    }  # fmt: skip
    run = run_checks(pytester, config, "test_weekly_physical_backups.py")
    checks = run.by_test
    assert checks.pop("test_physical_restore")["verdict"] == "skipped"  # no restoreTest
    assert set(checks) == {
        "test_physical_backup_freshness", "test_physical_backup_size", "test_wal_continuity",
    }  # fmt: skip
    for name, check in checks.items():
        assert check["verdict"] == "violation", name
        finding = check["findings"][0]
        assert finding["couldNotMeasure"]["target"] == "cluster", name
        assert "pgbackrest exited 55" in finding["description"], name
        assert "Run the same pgbackrest or barman command by hand" in finding["action"], name
