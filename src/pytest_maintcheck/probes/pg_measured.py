"""One weekly check's database: its shared snapshot, and with --maintcheck-apply the repair
and the snapshot measured after it.

The snapshot is read when a check first asks for it, so a database that cannot be reached
raises ProbeError (a MeasurementError) in the check's body: the plugin reports that check as
"could not measure", naming the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_repair
from pytest_maintcheck.probes.pg_maintenance import Snapshot, SnapshotCache
from pytest_maintcheck.probes.postgres import ProbeError
from pytest_maintcheck.verdict import Assessment, Verdict

# what a check would repair, from the snapshot before the repair
RepairPlan = Callable[[Snapshot, DatabaseMaintenanceTarget], Sequence[pg_repair.Repair]]


class MeasuredDatabase:
    """The snapshot of one check's database, and the way to repair it and measure again."""

    def __init__(
        self,
        target: DatabaseMaintenanceTarget,
        database: Database,
        cache: SnapshotCache,
        assessment: Assessment,
        apply: bool,
    ) -> None:
        self.target, self.database = target, database
        self.cache, self.assessment, self.apply = cache, assessment, apply
        assessment.details.update(
            database=target.database, tasks={"vacuum": False, "analyze": False, "reindex": False}
        )
        self._snap: Snapshot | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The database's snapshot of this run; ProbeError when it could not be read."""
        if self._snap is None:
            try:
                self._snap = self._record(self.cache.get(self.target, self.database))
            except ProbeError as exc:
                raise exc.about(self.target.database) from None
        return self._snap

    def repaired(self, plan: RepairPlan) -> Snapshot:
        """With --maintcheck-apply: run the plan's repairs, then measure again; else the
        snapshot as it is. A refused or failed repair is a violation of the check."""
        snap = self.snapshot
        repairs = plan(snap, self.target)
        if not self.apply or not repairs:
            return snap
        done = pg_repair.apply_repairs(self.target, self.database, repairs, snap.user)
        details = self.assessment.details
        details["tasks"].update(done.tasks)
        details["performed"] = done.performed
        details["repair"] = done.to_json()
        for line in done.refused + done.failed:
            self.assessment.add_finding(Verdict.VIOLATION, f"{self.target.database}: {line}")
        try:
            self._snap = self._record(self.cache.refresh(self.target, self.database))
        except ProbeError as exc:
            raise exc.about(self.target.database) from None
        return self._snap

    def _record(self, snap: Snapshot) -> Snapshot:
        self.assessment.details["dbMetrics"] = snap.db_metrics()
        return snap
