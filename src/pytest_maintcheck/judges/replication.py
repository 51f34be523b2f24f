"""The daily WAL archiving and streaming replication rules, judged on one reading of the
server (probes.archiving's ArchiverStatus, probes.replication's ReplicationState).

Archiving: switched on (``archive_mode`` and a command or library), not failing now (its last
failure after its last success), and, while segments wait to be archived, the age of the last
archived one against ``archiveMaxAge``: the recovery point at risk. An idle server with nothing
waiting is not late, however long ago its last segment was archived.

Replication, on a primary: the standbys expected, streaming, synchronous when
``synchronous_standby_names`` asks for it, their replay lag in time and bytes, and replication
slots that are lost, inactive or hold WAL back. On a standby: its WAL receiver, paused replay
and the replay delay (0 while every received byte is replayed).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_maintcheck.config import ArchivingTarget, ReplicationTarget
from pytest_maintcheck.probes.archiving import ArchiverStatus
from pytest_maintcheck.probes.replication import ReplicationState, Slot, Standby
from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_duration, format_size
from pytest_maintcheck.verdict import Assessment, Verdict

# ---------------------------------------------------------------------------- WAL archiving


def judge_wal_archiving(
    status: ArchiverStatus, target: ArchivingTarget, assessment: Assessment
) -> None:
    """One reading of the archiver against the target's limits."""
    assessment.details["archiver"] = status.to_json()
    assessment.details["database"] = target.database
    failures = status.failed_count if status.failing else 0
    age = status.last_archived_age
    assessment.details["dbMetrics"] = {
        "archiveFailing": status.failing,
        "walWaitingToArchive": status.waiting,
        "lastArchivedAge": age,
    }
    if status.in_recovery and status.archive_mode != "always":
        assessment.add_finding(
            Verdict.PASS,
            f"standby (archive_mode={status.archive_mode}): its WAL is archived on the primary",
        )
        return
    if status.archive_mode == "off":
        assessment.add_finding(
            Verdict.VIOLATION,
            "WAL archiving is off (archive_mode=off): no point-in-time recovery is possible "
            "past the newest base backup",
            "Set archive_mode=on and an archive_command (pgbackrest archive-push, barman-wal-"
            "archive), restart the server, then take a full backup.",
        )
        return
    if not (status.has_command or status.has_library):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"archive_mode={status.archive_mode} but neither archive_command nor archive_library "
            f"is set: {status.waiting} WAL segments wait in pg_wal and nothing archives them",
            "Set archive_command (or archive_library) and reload; pg_wal grows until then.",
        )
    assessment.metrics["archiveFailures"] = failures
    if status.failing:
        _judge_failing(status, assessment)
    _judge_archive_age(status, target, assessment, age)


def _at(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "?"


def _judge_failing(status: ArchiverStatus, assessment: Assessment) -> None:
    since = (
        f"; last success {status.last_archived_wal} at {_at(status.last_archived_time)}"
        if status.last_archived_time
        else "; no segment ever archived since the statistics reset"
    )
    wal = printable(status.last_failed_wal or "?")
    assessment.add_finding(
        Verdict.VIOLATION,
        f"archive_command is failing: last attempt for {wal} "
        f"failed at {_at(status.last_failed_time)} ({status.failed_count} "
        f"failures since the statistics reset){since}; {status.waiting} segments waiting",
        "Read the archiver's error in the server log, fix the archive target (space, "
        "credentials, pgbackrest/barman config); the archiver retries by itself.",
    )


def _judge_archive_age(
    status: ArchiverStatus, target: ArchivingTarget, assessment: Assessment, age: float | None
) -> None:
    """The recovery point's age matters only while segments wait to be archived."""
    if status.waiting == 0:
        last = f"{format_duration(age)} ago" if age is not None else "never since the reset"
        assessment.add_finding(
            Verdict.PASS, f"nothing waiting to be archived; last segment archived {last}"
        )
        assessment.metrics["archiveMaxAge"] = 0.0
        if target.archive_max_age is not None:
            assessment.thresholds["archiveMaxAge"] = target.archive_max_age.to_json()
        return
    if age is None and status.oldest_waiting is not None:
        age = max(0.0, (status.now - status.oldest_waiting).total_seconds())
    assessment.measure(
        target.archive_max_age,
        age,
        subject=f"{status.waiting} WAL segments waiting to be archived",
        action="Fix the archiver (failing or too slow for the write load); until then the "
        "recovery point is this old.",
    )


# ---------------------------------------------------------------------------- replication

LAG_ACTION = "Check the standby's load, disk and network; a standby this far behind "


def judge_replication(
    state: ReplicationState, target: ReplicationTarget, assessment: Assessment
) -> None:
    """One reading of the server's replication (a primary's or a standby's own view)."""
    assessment.details["replication"] = state.to_json()
    assessment.details["database"] = target.database
    if state.in_recovery:
        _judge_standby(state, target, assessment)
    else:
        _judge_primary(state, target, assessment)


def replay_lag(standby: Standby) -> float | None:
    """The view's replay lag; NULL once an idle standby has replayed everything counts as 0."""
    if standby.replay_lag is not None:
        return standby.replay_lag
    return 0.0 if standby.replay_lag_bytes == 0 else None


def _judge_primary(
    state: ReplicationState, target: ReplicationTarget, assessment: Assessment
) -> None:
    if not state.privileged and state.standbys:
        assessment.could_not_measure(
            "the monitoring role may not read pg_stat_replication's lag columns",
            "GRANT pg_monitor TO the monitoring role.",
        )
        return
    streaming = [s for s in state.standbys if s.state == "streaming"]
    for s in state.standbys:
        if s.state != "streaming":
            assessment.add_finding(
                Verdict.DEGRADED,
                f"standby {s.name} ({s.address or 'local'}) is {s.state}, not streaming",
                "Expected briefly after a standby starts; if it stays, check its log.",
            )
    _judge_expected(state, target, assessment, streaming)
    _judge_synchronous(state, streaming, assessment)
    assessment.measure_each(
        target.replay_lag,
        [(f"standby {s.name}", replay_lag(s)) for s in state.standbys],
        action=LAG_ACTION + "loses that much on failover.",
    )
    assessment.measure_each(
        target.replay_lag_bytes,
        [(f"standby {s.name}", s.replay_lag_bytes) for s in state.standbys],
        action=LAG_ACTION + "replays that much WAL before a failover completes.",
    )
    _judge_slots(state.slots, target, assessment)
    assessment.details["dbMetrics"] = {
        "standbys": len(streaming),
        "replayLag": assessment.metrics.get("replayLag"),
        "replayLagBytes": assessment.metrics.get("replayLagBytes"),
        "slotRetained": assessment.metrics.get("slotRetained"),
        "inactiveSlots": sum(1 for s in state.slots if not s.active),
    }


def _judge_expected(
    state: ReplicationState,
    target: ReplicationTarget,
    assessment: Assessment,
    streaming: list[Standby],
) -> None:
    assessment.metrics["standbys"] = len(streaming)
    names = {s.name for s in streaming}
    for missing in (n for n in target.standby_names if n not in names):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"expected standby {missing} is not streaming from this primary",
            "Start the standby (or rebuild it with pg_basebackup / pgbackrest restore) and "
            "check primary_conninfo; without it there is no failover target.",
        )
    expected = target.standbys
    if not target.standby_names and expected is not None and len(streaming) < expected:
        shown = ", ".join(sorted(names)) or "none"
        assessment.add_finding(
            Verdict.VIOLATION,
            f"{len(streaming)} of {expected} expected standbys streaming ({shown})",
            "Start the missing standby and check primary_conninfo; without it there is no "
            "failover target.",
        )


def _judge_synchronous(
    state: ReplicationState, streaming: list[Standby], assessment: Assessment
) -> None:
    sync_names = state.synchronous_standby_names.strip()
    if sync_names and not any(s.sync_state in ("sync", "quorum") for s in streaming):
        assessment.add_finding(
            Verdict.VIOLATION,
            f"synchronous_standby_names is {printable(sync_names, 100)!r} but no standby is "
            "synchronous: every commit waits",
            "Bring a synchronous standby back, or clear synchronous_standby_names and reload.",
        )


def _judge_slots(slots: list[Slot], target: ReplicationTarget, assessment: Assessment) -> None:
    for s in slots:
        if s.wal_status == "lost":
            assessment.add_finding(
                Verdict.VIOLATION,
                f"replication slot {s.name} is lost: the WAL its consumer needs was removed",
                f"Rebuild the consumer of {s.name} and drop the slot "
                "(SELECT pg_drop_replication_slot(...)).",
            )
        elif not s.active and not s.temporary:
            held = f", holding {format_size(s.retained)} of WAL" if s.retained else ""
            assessment.add_finding(
                Verdict.DEGRADED,
                f"replication slot {s.name} ({s.type}) is inactive{held}: WAL stays on the "
                "primary until its consumer returns or the slot is dropped",
                f"Start the consumer of {s.name}, or drop the slot if it is gone for good.",
            )
    assessment.measure_each(
        target.slot_retained,
        [(f"replication slot {s.name}" + ("" if s.active else " (inactive)"), s.retained)
         for s in slots],
        action="Bring the slot's consumer back or drop the slot before pg_wal fills the disk "
        "(max_slot_wal_keep_size caps it).",
    )  # fmt: skip


def _judge_standby(
    state: ReplicationState, target: ReplicationTarget, assessment: Assessment
) -> None:
    r = state.receiver
    assert r is not None  # a standby's reading always has its receiver row
    if target.standbys:
        assessment.add_finding(
            Verdict.PASS, "a standby: its expected standbys are judged on the primary"
        )
    if r.status is None:
        assessment.add_finding(
            Verdict.VIOLATION,
            "standby without a WAL receiver: it is not streaming from a primary (only replaying "
            "archived WAL, or the primary is unreachable)",
            "Check primary_conninfo and the primary's reachability in this server's log.",
        )
    elif r.status != "streaming":
        assessment.add_finding(
            Verdict.DEGRADED,
            f"WAL receiver is {r.status}, not streaming",
            "Check the connection to the primary in this server's log.",
        )
    if r.paused:
        assessment.add_finding(
            Verdict.DEGRADED,
            "WAL replay is paused (pg_wal_replay_pause): the standby falls behind",
            "Resume it with SELECT pg_wal_replay_resume() unless paused on purpose.",
        )
    assessment.measure(
        target.replay_lag,
        r.replay_delay,
        subject="this standby",
        action="Check the standby's load and disk; on failover it is this far behind.",
    )
    assessment.measure(
        target.replay_lag_bytes,
        r.unreplayed_bytes,
        subject="this standby, received but not replayed",
        action="Check the standby's load and disk (replay is single-threaded).",
    )
    assessment.details["dbMetrics"] = {
        "walReceiver": r.status,
        "replayLag": r.replay_delay,
        "replayLagBytes": r.unreplayed_bytes,
    }
