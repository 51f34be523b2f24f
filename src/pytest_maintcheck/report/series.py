"""What the index charts and the monthly review read about earlier runs: one small interface.

``RunHistory.runs(since, until)`` gives finished runs with their checks (results.json) and
incidents. :class:`StoreHistory` reads them from the history store (every runner's runs, the
imported and the demo's seeded ones) and from the run folders only for what the store lacks;
:class:`FolderHistory` reads the run folders alone. Everything else here is plain functions over
``list[Run]``: metric series, availability, growth projections, changes between two runs.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_maintcheck.report.files import run_folders

if TYPE_CHECKING:
    from pytest_maintcheck.config import HistorySettings
    from pytest_maintcheck.history.store import StoredRun
    from pytest_maintcheck.result import CheckResult

PROBLEM = ("violation", "error", "degraded")
DOWN = ("violation", "error")


@dataclass(frozen=True)
class Run:
    """One finished run: its MaintenanceLog summary, its checks and its incident drafts."""

    run_id: str
    started_at: datetime
    system: str
    environment: str
    suites: tuple[str, ...] = ()
    status: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    operator: str = ""
    duration: float | None = None
    checks: tuple[Mapping[str, Any], ...] = ()
    incidents: tuple[Mapping[str, Any], ...] = ()
    has_report: bool = False
    seeded: bool = False  # made up by `maintcheck demo` to draw trends, not measured

    def check(self, key: str, target: str | None) -> Mapping[str, Any] | None:
        return next((c for c in self.checks if identity(c) == (key, target)), None)


class RunHistory(Protocol):
    """Where earlier runs come from (run folders now; the history store can offer the same)."""

    def runs(self, since: datetime | None = None, until: datetime | None = None) -> list[Run]:
        """Runs that started in [since, until), oldest first."""
        ...


def identity(check: Mapping[str, Any]) -> tuple[str, str | None]:
    """A check across runs: its catalogue key and target, never the nodeid alone."""
    target = check.get("target")
    return str(check.get("check", "")), None if target is None else str(target)


def parse_time(text: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def read_run(folder: Path) -> Run | None:
    """A run folder as a Run; None when its MaintenanceLog is missing or broken."""
    log = _read_json(folder / "maintenance-log.json")
    if not isinstance(log, dict):
        return None
    given = log.get("performed")
    performed: dict[str, Any] = given if isinstance(given, dict) else {}
    started = parse_time(performed.get("at", ""))
    if started is None:
        return None
    results = _read_json(folder / "results.json")
    checks = results.get("checks", []) if isinstance(results, dict) else []
    incidents = _read_json(folder / "incidents.json")
    duration = performed.get("duration")
    return Run(
        run_id=folder.name,
        started_at=started,
        system=str(log.get("system", "")),
        environment=str(log.get("environment", "")),
        suites=tuple(str(s) for s in log.get("suites", []) or []),
        status=str(log.get("status", "")),
        counts={k: int(v) for k, v in (log.get("counts") or {}).items() if isinstance(v, int)},
        operator=str(performed.get("by", "")),
        duration=float(duration) if isinstance(duration, int | float) else None,
        checks=tuple(c for c in checks if isinstance(c, dict)),
        incidents=tuple(i for i in incidents or [] if isinstance(i, dict)),
        has_report=(folder / "report.html").is_file(),
        seeded=bool(log.get("seeded")),
    )


class FolderHistory:
    """Runs read from the run folders of a report folder (results.json, incidents.json)."""

    def __init__(self, report_dir: Path) -> None:
        self.report_dir = report_dir

    def runs(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        skip: Collection[str] = (),
    ) -> list[Run]:
        """``skip``: run ids not to read (the store already gave them)."""
        out = []
        for folder in run_folders(self.report_dir):
            if since is not None and folder.name < since.strftime("%Y%m%dT"):
                continue  # run ids start with their UTC start: skip old folders unread
            if folder.name in skip:
                continue
            run = read_run(folder)
            if run is None:
                continue
            if (since is None or run.started_at >= since) and (
                until is None or run.started_at < until
            ):
                out.append(run)
        return sorted(out, key=lambda r: (r.started_at, r.run_id))


class StoreHistory:
    """Runs from the history store, and from the run folders only for runs it lacks.

    ``details``: a run that has its folder here is read from it (findings, details, incidents:
    what the monthly review shows and the store does not keep); the charts need only what the
    store holds. ``systems`` limits the store's runs to these (system, environment) pairs (a
    PostgreSQL store holds every site's). A store that cannot be read leaves the run folders,
    and ``problem`` says why.
    """

    def __init__(
        self,
        settings: HistorySettings,
        report_dir: Path,
        *,
        systems: Collection[tuple[str, str]] | None = None,
        details: bool = False,
        mode: int = 0o600,
    ) -> None:
        self.settings, self.report_dir, self.mode = settings, report_dir, mode
        self.systems, self.details = systems, details
        self.problem: str | None = None

    def runs(self, since: datetime | None = None, until: datetime | None = None) -> list[Run]:
        stored = self._stored(since, until)
        if self.details:
            stored = [r for r in stored if not (self.report_dir / r.run_id).is_dir()]
        folders = FolderHistory(self.report_dir).runs(since, until, {r.run_id for r in stored})
        return sorted([*stored, *folders], key=lambda r: (r.started_at, r.run_id))

    def _stored(self, since: datetime | None, until: datetime | None) -> list[Run]:
        from pytest_maintcheck.history import STORE_NAME, HistoryUnavailable, iso, using

        if not self.settings.dsn and not (self.report_dir / STORE_NAME).is_file():
            return []  # no store here yet: reading must not create one
        try:
            with using(self.settings, self.report_dir, self.mode) as store:
                found = store.runs_between(
                    iso(since.astimezone(UTC)) if since else "",
                    iso(until.astimezone(UTC)) if until else None,
                    self.systems,
                )
        except HistoryUnavailable as exc:
            self.problem = str(exc)
            return []
        return [run for s in found if (run := self._run_of(s)) is not None]

    def _run_of(self, stored: StoredRun) -> Run | None:
        started = parse_time(stored.started_at)
        if started is None:
            return None
        checks = tuple(
            {
                "check": c.check, "target": c.target, "verdict": c.verdict,
                "severity": c.severity, "nodeid": c.nodeid, "thresholds": dict(c.thresholds),
                "metrics": dict(c.measurements), "at": c.at,
                **({"inMaintenance": True} if c.in_maintenance else {}),
                **({"details": {"version": c.version}} if c.version else {}),
            }
            for c in stored.checks
        )  # fmt: skip
        counts = dict(stored.counts)
        if not counts:  # a seeded or imported run: its counts from its checks
            for c in stored.checks:
                counts[c.verdict] = counts.get(c.verdict, 0) + 1
        return Run(
            run_id=stored.run_id,
            started_at=started,
            system=stored.system,
            environment=stored.environment,
            suites=stored.suites,
            status=stored.status,
            counts=counts,
            duration=stored.duration,
            checks=checks,
            has_report=(self.report_dir / stored.run_id / "report.html").is_file(),
            seeded=stored.source == "demo-seed",
        )


def previous_run(
    history: RunHistory, system: str, environment: str, before: datetime
) -> Run | None:
    """The newest earlier run of the same system and environment."""
    same = [
        r for r in history.runs(until=before) if r.system == system and r.environment == environment
    ]
    return same[-1] if same else None


# ---------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Change:
    name: str
    before: str
    now: str
    severity: str
    summary: str


def changes(
    before: Iterable[Mapping[str, Any]], now: Iterable[CheckResult]
) -> dict[str, list[Change]]:
    """New problems, fixed and still failing, by check identity (key and target): this run's
    results against an earlier run's checks as results.json holds them."""
    old = {identity(c): c for c in before}
    out: dict[str, list[Change]] = {"new": [], "fixed": [], "still": []}
    for check in now:
        verdict = check.verdict.value
        earlier = old.get((check.check, check.target))
        was = str(earlier.get("verdict", "")) if earlier else "not in that run"
        entry = Change(
            name=check.name,
            before=was,
            now=verdict,
            severity=check.severity,
            summary=_first_line(check),
        )
        if verdict in PROBLEM:
            out["still" if was in PROBLEM else "new"].append(entry)
        elif verdict == "pass" and was in PROBLEM:
            out["fixed"].append(entry)
    return out


def _first_line(check: CheckResult) -> str:
    findings = check.findings
    if findings and isinstance(findings[0], dict):
        return str(findings[0].get("description", ""))
    return check.message.splitlines()[0] if check.message else ""


# ---------------------------------------------------------------------------- series


Point = tuple[datetime, float]


def metric_series(runs: Iterable[Run], check: str, metric: str) -> dict[str, list[Point]]:
    """One metric of one check, per target, over the runs (runs without it are left out)."""
    out: dict[str, list[Point]] = {}
    for run in runs:
        for c in run.checks:
            value = (c.get("metrics") or {}).get(metric)
            if c.get("check") != check or not isinstance(value, int | float):
                continue
            if isinstance(value, bool):
                continue
            out.setdefault(str(c.get("target")), []).append((run.started_at, float(value)))
    return out


@dataclass(frozen=True)
class VersionChange:
    """The first run of a target that read a version other than its previous run's."""

    at: datetime
    target: str
    before: str
    now: str


def version_changes(runs: Iterable[Run], check: str) -> list[VersionChange]:
    """Where each target's running version changed, oldest first (runs that read no version
    are passed over)."""
    running: dict[str, str] = {}
    out = []
    for run in runs:
        for c in run.checks:
            version = (c.get("details") or {}).get("version")
            if c.get("check") != check or not isinstance(version, str) or not version:
                continue
            target = str(c.get("target"))
            before = running.get(target)
            if before is not None and before != version:
                out.append(VersionChange(run.started_at, target, before, version))
            running[target] = version
    return out


def threshold_of(runs: Iterable[Run], check: str, target: str, metric: str) -> float | None:
    """The fail level the newest run judged a metric against (None when it had none)."""
    level = None
    for run in runs:
        for c in run.checks:
            if c.get("check") == check and str(c.get("target")) == target:
                found = (c.get("thresholds") or {}).get(metric) or {}
                if isinstance(found.get("fail"), int | float):
                    level = float(found["fail"])
    return level


@dataclass(frozen=True)
class Availability:
    service: str
    up: int
    total: int
    target: float | None

    @property
    def ratio(self) -> float:
        return self.up / self.total if self.total else 0.0


def _counts_for_availability(check: Mapping[str, Any]) -> bool:
    """A health check that ran, outside planned maintenance (issue 12: left out)."""
    return (
        check.get("check") == "health"
        and check.get("verdict") != "skipped"
        and not check.get("inMaintenance")
    )


def availability(runs: Iterable[Run]) -> list[Availability]:
    """Per service: health checks that found it up (pass or warning) of all that ran."""
    up: dict[str, int] = {}
    total: dict[str, int] = {}
    target: dict[str, float | None] = {}
    for run in runs:
        for c in run.checks:
            if not _counts_for_availability(c):
                continue
            name = str(c.get("target"))
            total[name] = total.get(name, 0) + 1
            up[name] = up.get(name, 0) + (c.get("verdict") not in DOWN)
            level = ((c.get("thresholds") or {}).get("availability") or {}).get("fail")
            if isinstance(level, int | float):
                target[name] = float(level)
            target.setdefault(name, None)
    return [Availability(s, up[s], total[s], target[s]) for s in sorted(total)]


def daily_availability(runs: Iterable[Run]) -> dict[str, list[Point]]:
    """Per service and UTC day, the share of health checks that found it up."""
    days: dict[str, dict[datetime, list[bool]]] = {}
    for run in runs:
        day = run.started_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for c in run.checks:
            if not _counts_for_availability(c):
                continue
            days.setdefault(str(c.get("target")), {}).setdefault(day, []).append(
                c.get("verdict") not in DOWN
            )
    return {
        service: [(d, sum(v) / len(v)) for d, v in sorted(by_day.items())]
        for service, by_day in sorted(days.items())
    }


@dataclass(frozen=True)
class Projection:
    """A straight line through the points: growth per day, and when it reaches capacity."""

    per_day: float
    last: Point
    capacity: float | None
    reaches_at: datetime | None

    def at(self, moment: datetime) -> float:
        return self.last[1] + self.per_day * (moment - self.last[0]).total_seconds() / 86400


def project(points: list[Point], capacity: float | None) -> Projection | None:
    """Least squares over the points; None unless they span a day (minutes say nothing of a
    daily growth)."""
    if len(points) < 2 or points[-1][0] - points[0][0] < timedelta(days=1):
        return None
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 86400 for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    fitted_last = mean_y + slope * (xs[-1] - mean_x)
    last = (points[-1][0], fitted_last)
    reaches = None
    if capacity is not None and slope > 0 and fitted_last < capacity:
        reaches = last[0] + timedelta(days=(capacity - fitted_last) / slope)
    elif capacity is not None and fitted_last >= capacity:
        reaches = last[0]
    return Projection(slope, last, capacity, reaches)
