"""One run's change: its request, the config revision, the baseline and what moved since.

Built at configure time by the change hooks, assessed once when the session finishes (before
report.html and the records are written), then read by the terminal summary, the
MaintenanceLog (``change``) and report.html. Reads the history store; writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_maintcheck.change import (
    ChangeRequest,
    Impact,
    assess_impact,
    choose_baseline,
    gate_outcome,
    judge_rollback_point,
    restorable_backups,
    restores_in_results,
    restores_in_store,
    rollback_point,
    window_since,
)
from pytest_maintcheck.redact import printable

if TYPE_CHECKING:
    from pytest_maintcheck.config import Config
    from pytest_maintcheck.history.store import StoredRun
    from pytest_maintcheck.result import CheckResult
    from pytest_maintcheck.verdict import Assessment


@dataclass
class ChangeRun:
    request: ChangeRequest
    maintenance_type: str
    config_revision: str
    baseline: StoredRun | None = None
    baseline_problem: str | None = None
    impact: Impact | None = None
    outcome: str = ""
    rollback_points: dict[str, Any] = field(default_factory=dict)
    assessed: bool = False

    # -- after the checks ------------------------------------------------------------------

    def assess(
        self,
        config: Config,
        report_dir: Path,
        results: Iterable[CheckResult],
        *,
        started: datetime,
        fail_on: str,
    ) -> None:
        """Once per run: the gate's outcome, the rollback points found, and with a baseline
        the impact assessment (a store that cannot be read is said, never a crash)."""
        if self.assessed:
            return
        self.assessed = True
        checks = list(results)
        self.outcome = gate_outcome(checks, fail_on)
        for r in checks:
            point = r.details.get("rollbackPoint")
            if r.check == "rollback_point" and r.verdict == "pass" and point:
                self.rollback_points[str(r.target)] = point
        if self.request.baseline is None:
            return
        suites = {r.suite for r in checks if r.verdict != "skipped"}
        self.baseline, self.baseline_problem = find_baseline(
            config, report_dir, self.request, started, suites
        )
        if self.baseline is not None:
            factor = config.change_management.shift_factor if config.change_management else 1.5
            self.impact = assess_impact(self.baseline, checks, factor)

    # -- what it says ----------------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        """MaintenanceLog.change."""
        impact = self.impact or Impact()
        baseline: dict[str, Any] | None = None
        if self.baseline is not None:
            baseline = {"runId": self.baseline.run_id, "startedAt": self.baseline.started_at}
            if self.baseline.change:
                baseline["change"] = self.baseline.change.get("id")
                baseline["version"] = self.baseline.change.get("version")
        out: dict[str, Any] = {
            "id": self.request.change_id,
            "version": self.request.version,
            "configRevision": self.config_revision,
            "baseline": baseline,
            "baselineRequested": self.request.baseline,
            "regressions": [m.to_json() for m in impact.regressions],
            "improvements": [m.to_json() for m in impact.improvements],
            "outcome": self.outcome,
            "rollbackPoints": self.rollback_points,
        }
        if self.baseline_problem:
            out["baselineProblem"] = self.baseline_problem
        return out

    def advice(self) -> str:
        what = self.request.version or self.request.change_id or "this change"
        return f"consider rolling back {what}"

    def annotate(self, records: dict[str, Any]) -> None:
        """The change into the MaintenanceLog, its regressions first among the findings."""
        log = records["maintenance-log.json"]
        log["change"] = self.record()
        details = log["details"]
        impact = self.impact or Impact()
        regressions = [f"[{m.severity}] regression since {self._since()}: {m.line()}"
                       for m in impact.regressions]  # fmt: skip
        details["findings"][:0] = regressions
        details["followUp"][:0] = [f"{m.name}: {self.advice()}" for m in impact.regressions]

    def _since(self) -> str:
        return self.baseline.run_id if self.baseline is not None else "the baseline"

    def heading(self) -> str:
        who = self.request.change_id or "update run"
        version = f" ({self.request.version})" if self.request.version else ""
        return f"maintcheck change {who}{version}: gate {self.outcome or 'not assessed'}"

    def summary_lines(self) -> list[str]:
        """For the terminal: regressions first, then improvements, then the facts."""
        lines = []
        impact = self.impact or Impact()
        for m in impact.regressions:
            tag = "REGRESSION" if m.kind == "verdict" else "SHIFT"
            lines.append(f"{tag} [{m.severity}] {m.line()} -> {self.advice()}")
        lines.extend(f"improved: {m.line()}" for m in impact.improvements)
        if self.request.baseline is not None:
            if self.baseline is not None:
                lines.append(
                    f"baseline: run {self.baseline.run_id} ({self.baseline.started_at}); "
                    f"{len(impact.regressions)} regression(s), "
                    f"{len(impact.improvements)} improvement(s)"
                )
            else:
                lines.append(f"baseline: none ({self.baseline_problem})")
        for database, point in sorted(self.rollback_points.items()):
            lines.append(
                f"rollback point of {database}: {point.get('backup')} {point.get('file')} "
                f"(taken {point.get('taken')})"
            )
        lines.append(f"config revision: {self.config_revision}")
        return lines


def find_baseline(
    config: Config,
    report_dir: Path,
    request: ChangeRequest,
    started: datetime,
    suites: set[str],
) -> tuple[StoredRun | None, str | None]:
    """The baseline run with its checks from the history store, or why there is none."""
    from pytest_maintcheck.history import iso, using
    from pytest_maintcheck.history.store import HistoryUnavailable

    try:
        with using(config.history, report_dir) as store:
            if request.baseline not in (None, "auto"):
                run = store.run(str(request.baseline))
                if run is None:
                    return None, f"run {request.baseline} is not in the history store"
                return run, None
            chosen = choose_baseline(
                store.runs_before(config.system, config.environment, iso(started)),
                request.change_id,
                suites,
            )
            if chosen is None:
                return None, (
                    f"no earlier run of {config.system or 'this system'} in the history store "
                    "to compare with"
                )
            return store.run(chosen.run_id), None
    except HistoryUnavailable as exc:
        return None, f"the history store could not be read: {printable(str(exc), 300)}"


def check_named_baseline(config: Config, report_dir: Path, run_id: str) -> str | None:
    """Before any check runs: a named baseline must be a run of this system in the store."""
    from pytest_maintcheck.history import using
    from pytest_maintcheck.history.store import HistoryUnavailable

    try:
        with using(config.history, report_dir) as store:
            run = store.run(run_id)
    except HistoryUnavailable as exc:
        return f"--maintcheck-baseline {run_id}: the history store could not be read: {exc}"
    if run is None:
        return (
            f"--maintcheck-baseline {run_id}: no such run in the history store; give a run id "
            "from reports/ (or `maintcheck changes`), or auto"
        )
    if (run.system, run.environment) != (config.system, config.environment):
        return (
            f"--maintcheck-baseline {run_id}: that run is of {run.system} ({run.environment}), "
            f"not {config.system} ({config.environment})"
        )
    return None


@dataclass
class RollbackEvidence:
    """What the rollback_point check asks: this run's restore tests, then the store's."""

    config: Config
    report_dir: Path
    results: Iterable[CheckResult]  # this run's, on the controller (empty on a worker)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def judge(self, assessment: Assessment, database: str) -> None:
        settings = self.config.change_management
        assert settings is not None
        assert settings.rollback_point is not None
        max_age = settings.rollback_point.max_age
        backups = [b.name for b in restorable_backups(self.config, database)]
        candidates = restores_in_results(self.results)
        from pytest_maintcheck.history.store import HistoryUnavailable

        problem = None
        looked_back = max(max_age, self.config.history.window)
        try:
            candidates.extend(self._stored(looked_back))
        except HistoryUnavailable as exc:
            problem = printable(str(exc), 300)
        found = rollback_point(candidates, backups, max_age, self.now)
        judge_rollback_point(
            assessment, database, backups, max_age, self.now, found, problem, looked_back
        )

    def _stored(self, seconds: float) -> list[Any]:
        from pytest_maintcheck.history import using

        with using(self.config.history, self.report_dir) as store:
            checks = store.checks_since(
                self.config.system,
                self.config.environment,
                "backup_restore",
                window_since(self.now, seconds),
            )
        return restores_in_store(checks)
