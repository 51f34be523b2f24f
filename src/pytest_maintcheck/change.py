"""Change management: the deploy gate before and after a change (issue 17).

A run belongs to a change when it is given ``--maintcheck-change ID``. Before the deploy the
gate asks for a verified rollback point (a backup of each named database, younger than
``maxAge``, whose restore test passed); after it, ``--maintcheck-baseline`` compares the run
with the last run before the change: regressions, improvements and metric shifts. Plain
Python: no pytest, no file written here (the plugin and the records module do that).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_maintcheck.redact import printable
from pytest_maintcheck.units import format_duration

if TYPE_CHECKING:
    from pytest_maintcheck.config import Backup, Config
    from pytest_maintcheck.history.store import StoredCheck, StoredRun
    from pytest_maintcheck.probes.health import ServiceResult
    from pytest_maintcheck.result import CheckResult
    from pytest_maintcheck.verdict import Assessment

GIT_TIMEOUT = 10.0  # seconds for each git command reading the config's revision
VERSION_LIMIT = 120  # characters of a version string kept
RESTORE_NOW = "pytest -m weekly -k backup_restore"  # or: maintcheck run -m weekly -k backup_restore
# verdicts from good to bad; a check moving right is a regression, left an improvement
_RANK = {"pass": 0, "degraded": 1, "violation": 2, "error": 2}
# metrics compared with the baseline even when no threshold is crossed: (label, unit, floor);
# a change smaller than the floor is jitter (a 2 ms p95 that became 4 ms is no shift)
SHIFT_METRICS: dict[str, tuple[str, str, float]] = {
    "responseTime": ("p95 response time", "ms", 50.0),
    "errorRate": ("error rate", "fraction", 0.01),
    "slowQuery": ("slow-query mean", "seconds", 0.01),
}


# ---------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class ChangeRequest:
    """What the operator said about this run: the ticket, what is deployed, the baseline."""

    change_id: str | None
    version: str | None
    baseline: str | None  # "auto", a run id, or None (no impact assessment)

    @property
    def belongs_to_change(self) -> bool:
        return self.change_id is not None


def parse_request(
    change_id: object, version: object, baseline: object, maintenance_type: str
) -> ChangeRequest:
    """The three options, checked; ValueError (a usage error) names the fault."""
    cid = _text_option("--maintcheck-change", change_id)
    ver = _text_option("--maintcheck-version", version)
    base = _text_option("--maintcheck-baseline", baseline)
    if cid is None and (ver is not None or base is not None):
        given = "--maintcheck-version" if ver is not None else "--maintcheck-baseline"
        raise ValueError(f"{given} needs --maintcheck-change ID (the change it belongs to)")
    if cid is not None and maintenance_type == "routine":
        raise ValueError(
            "a run that belongs to a change is --maintcheck-type update (or emergency), not routine"
        )
    return ChangeRequest(cid, ver, base)


def _text_option(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text or len(text) > 200 or not text.isprintable():
        raise ValueError(f"{name}: expected printable text of 1-200 characters")
    return text


# ---------------------------------------------------------------------------- config revision


def config_revision(path: Path) -> str:
    """``git:<commit>`` of the config when a repository tracks it (``+modified`` and the file's
    SHA-256 when it differs from that commit), else ``sha256:<hex>`` of the file."""
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    commit = _git(path, "log", "-1", "--format=%H", "--", path.name)
    if not commit:
        return digest
    changed = _git(path, "status", "--porcelain", "--", path.name)
    return f"git:{commit}" + (f"+modified ({digest})" if changed else "")


def _git(path: Path, *args: str) -> str:
    """One git command in the config's folder; empty when git, a repository or time is lacking."""
    try:
        done = subprocess.run(
            ["git", "-C", str(path.parent), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


# ---------------------------------------------------------------------------- versions


def read_version(body: bytes, pointer: str) -> tuple[str | None, str | None]:
    """(version, None) from a JSON health response at ``pointer``, or (None, why not)."""
    from pytest_maintcheck.probes.metrics import ProbeError, resolve_pointer

    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None, "the health response is not JSON"
    try:
        found = resolve_pointer(document, pointer)
    except ProbeError as exc:
        return None, str(exc)
    if isinstance(found, bool) or not isinstance(found, str | int | float) or found == "":
        return None, f"the value at {pointer} is not a version (a string or number)"
    return printable(str(found), VERSION_LIMIT), None


def record_version(assessment: Assessment, pointer: str, result: ServiceResult) -> None:
    """The running version in the check's details; one that cannot be read is a warning."""
    from pytest_maintcheck.verdict import Verdict

    assessment.details["version"] = result.version
    if result.version is None and result.reachable:
        why = "; ".join(sorted(set(result.version_problems))[:2]) or "no answer had a body"
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{result.service}: running version not readable at versionPointer {pointer}: {why}",
            "Expose the version in the health response, or correct versionPointer.",
        )


# ---------------------------------------------------------------------------- rollback point


@dataclass(frozen=True)
class RestoredBackup:
    """A restore test that passed, and the backup it restored."""

    backup: str  # the backups entry
    file: str  # the dump restored
    taken: datetime
    restored_at: datetime
    where: str  # "this run" or "run <id>"

    def to_json(self) -> dict[str, str]:
        return {
            "backup": self.backup,
            "file": self.file,
            "taken": _iso(self.taken),
            "restoreTestedAt": _iso(self.restored_at),
            "evidence": self.where,
        }


def restorable_backups(config: Config, database: str) -> list[Backup]:
    """The backups entries whose restore test can prove a way back for ``database``."""
    return [
        b
        for b in config.backups
        if b.kind == "pg_dump" and b.restore_test is not None and b.database == database
    ]


def restores_in_results(results: Iterable[CheckResult]) -> list[RestoredBackup]:
    """Passing restore tests of this run (its results, on the controller)."""
    out = []
    for r in results:
        if r.check != "backup_restore" or r.verdict != "pass":
            continue
        newest = r.details.get("newest") or {}
        found = _restored(r.target, newest, r.finished_at, "this run")
        if found is not None:
            out.append(found)
    return out


def restores_in_store(checks: Iterable[StoredCheck]) -> list[RestoredBackup]:
    """Passing restore tests the history store holds (each with the backup it restored)."""
    out = []
    for c in checks:
        if c.check == "backup_restore" and c.verdict == "pass":
            restored = {"name": c.evidence.get("backup"), "taken": c.evidence.get("taken")}
            found = _restored(c.target, restored, c.at, f"the restore test at {c.at}")
            if found is not None:
                out.append(found)
    return out


def _restored(
    backup: object, newest: Mapping[str, Any], at: object, where: str
) -> RestoredBackup | None:
    taken, restored = _time(newest.get("taken")), _time(at)
    if not backup or not newest.get("name") or taken is None or restored is None:
        return None
    return RestoredBackup(str(backup), str(newest["name"]), taken, restored, where)


def rollback_point(
    candidates: Iterable[RestoredBackup], backups: Sequence[str], max_age: float, now: datetime
) -> tuple[RestoredBackup | None, RestoredBackup | None]:
    """(the newest verified backup of ``backups`` younger than max_age, the newest verified
    one at all): the second says why the first is missing."""
    verified = sorted(
        (c for c in candidates if c.backup in backups), key=lambda c: c.taken, reverse=True
    )
    newest = verified[0] if verified else None
    fresh = next((c for c in verified if (now - c.taken).total_seconds() <= max_age), None)
    return fresh, newest


def judge_rollback_point(
    assessment: Assessment,
    database: str,
    backups: Sequence[str],
    max_age: float,
    now: datetime,
    found: tuple[RestoredBackup | None, RestoredBackup | None],
    store_problem: str | None,
    looked_back: float | None = None,
) -> None:
    """Pass naming the rollback point, or a violation saying what to do before deploying."""
    from pytest_maintcheck.verdict import Threshold, Verdict

    fresh, newest = found
    assessment.details.update(database=database, backups=list(backups))
    action = (
        f"Do not deploy without a verified way back: run the restore test now ({RESTORE_NOW}, "
        "which restores the newest dump into a scratch database), then run the gate again."
    )
    if fresh is not None:
        assessment.details["rollbackPoint"] = fresh.to_json()
        age = max((now - fresh.taken).total_seconds(), 0.0)
        assessment.measure(
            Threshold("maxAge", fail=max_age),
            age,
            subject=f"rollback point of {database}: {fresh.file}",
            action=action,
        )
        assessment.add_finding(
            Verdict.PASS,
            f"rollback point of {database}: {fresh.backup} {fresh.file} (taken "
            f"{_iso(fresh.taken)}, {format_duration(age)} ago), restore test passed in "
            f"{fresh.where}",
        )
        return
    if not backups:
        assessment.add_finding(
            Verdict.VIOLATION,
            f"no verified rollback point of {database}: no pg_dump backup with a restoreTest "
            "has it as its database",
            "Add a backups entry of kind pg_dump with database: "
            f"{database} and a restoreTest, then run the restore test.",
        )
        return
    if newest is not None:
        why = (
            f"the newest backup whose restore test passed, {newest.file} ({newest.backup}), was "
            f"taken {format_duration((now - newest.taken).total_seconds())} ago, older than "
            f"maxAge {format_duration(max_age)}"
        )
    else:
        why = (
            f"no restore test of {', '.join(backups)} passed in the last "
            f"{format_duration(looked_back or max_age)}"
        )
    if store_problem:
        why += f" (the history store could not be read: {store_problem})"
    assessment.add_finding(
        Verdict.VIOLATION, f"no verified rollback point of {database}: {why}", action
    )


# ---------------------------------------------------------------------------- baseline


def choose_baseline(
    runs: Iterable[StoredRun], change_id: str | None, suites: Iterable[str]
) -> StoredRun | None:
    """The last run before the change: the newest earlier run (newest first given) sharing a
    suite with this one, leaving out the runs of this same change made after its deploy
    (those that compared themselves with a baseline). The change's own pre-deploy gate counts."""
    wanted = set(suites)
    for run in runs:
        change = run.change or {}
        if change_id is not None and change.get("id") == change_id and change.get("baseline"):
            continue
        if wanted and run.suites and not wanted.intersection(run.suites):
            continue
        return run
    return None


# ---------------------------------------------------------------------------- impact


@dataclass(frozen=True)
class Movement:
    """One check that moved between the baseline and this run: its verdict, or a metric."""

    kind: str  # verdict | shift
    check: str
    target: str
    name: str
    severity: str
    before: str
    now: str
    summary: str
    metric: str | None = None
    factor: float | None = None
    versions: tuple[str, str] | None = None  # (before, now) for a service that reports it

    def line(self) -> str:
        since = f" (version {self.versions[0]} -> {self.versions[1]})" if self.versions else ""
        if self.kind == "shift":
            return f"{self.name}: {self.summary}{since}"
        what = f": {self.summary}" if self.summary else ""
        return f"{self.name}: {self.before} -> {self.now}{what}{since}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "check": self.check,
            "target": self.target,
            "name": self.name,
            "severity": self.severity,
            "before": self.before,
            "now": self.now,
            "description": self.line(),
        }
        if self.metric is not None:
            out.update(metric=self.metric, factor=self.factor)
        if self.versions is not None:
            out["versions"] = {"before": self.versions[0], "now": self.versions[1]}
        return out


@dataclass
class Impact:
    regressions: list[Movement] = field(default_factory=list)
    improvements: list[Movement] = field(default_factory=list)


def assess_impact(
    baseline: StoredRun, results: Iterable[CheckResult], shift_factor: float
) -> Impact:
    """Checks of this run against the same checks (key and target) of the baseline run."""
    before = {(c.check, c.target): c for c in baseline.checks}
    impact = Impact()
    for r in sorted(results, key=lambda r: r.nodeid):
        now_verdict = r.verdict.value
        ident = (r.check, r.target or r.name)
        earlier = before.get(ident)
        if earlier is None or now_verdict not in _RANK or earlier.verdict not in _RANK:
            continue
        versions = _versions(earlier.version, r.details.get("version"))
        moved = _RANK[now_verdict] - _RANK[earlier.verdict]
        if moved:
            entry = Movement(
                "verdict", ident[0], ident[1], r.name, r.severity,
                earlier.verdict, now_verdict, _first_finding(r) if moved > 0 else "", None,
                None, versions,
            )  # fmt: skip
            (impact.regressions if moved > 0 else impact.improvements).append(entry)
            continue  # its verdict says it; a shift of the same check would say it twice
        for shift in _shifts(earlier, r, shift_factor, versions):
            worse = float(shift.now) > float(shift.before)  # every shift metric: higher is worse
            (impact.regressions if worse else impact.improvements).append(shift)
    impact.regressions.sort(key=_worst_first)
    return impact


def _shifts(
    earlier: StoredCheck,
    result: CheckResult,
    factor: float,
    versions: tuple[str, str] | None,
) -> Iterable[Movement]:
    metrics = result.metrics
    for metric, (label, unit, floor) in SHIFT_METRICS.items():
        was, now = earlier.measurements.get(metric), metrics.get(metric)
        if was is None or not isinstance(now, int | float) or isinstance(now, bool):
            continue
        if abs(now - was) < floor:
            continue
        low, high = sorted((float(was), float(now)))
        ratio = high / low if low > 0 else float("inf")
        if ratio < factor:
            continue
        way = "rose" if now > was else "fell"
        times = "from none" if low == 0 else f"x{ratio:.1f}"
        yield Movement(
            "shift", earlier.check, earlier.target, result.name,
            result.severity, str(was), str(now),
            f"{label} {way} {_shown(was, unit)} -> {_shown(now, unit)} ({times}; shift factor "
            f"{factor:g}, no threshold needs to be crossed)",
            metric, None if ratio == float("inf") else round(ratio, 2), versions,
        )  # fmt: skip


def _shown(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms"
    return f"{value:.1%}"


def _versions(before: str, now: object) -> tuple[str, str] | None:
    if before and now and str(now) != before:
        return before, str(now)
    return None


def _first_finding(result: CheckResult) -> str:
    first = next((f for f in result.findings if f.get("verdict") != "pass"), None)
    if first is not None:
        return printable(str(first.get("description", "")), 300)
    message = result.message
    return printable(message.splitlines()[0], 300) if message else ""


def _worst_first(m: Movement) -> tuple[int, int, str]:
    from pytest_maintcheck.catalogue import SEVERITIES

    severity = SEVERITIES.index(m.severity) if m.severity in SEVERITIES else 0
    return (0 if m.kind == "verdict" else 1, -severity, m.name)


# ---------------------------------------------------------------------------- helpers


def gate_outcome(results: Iterable[CheckResult], fail_on: str) -> str:
    """``refused`` when the gate's exit status is non-zero for the checks, else ``passed``."""
    for r in results:
        quiet = r.quiet
        if r.verdict == "error" or (r.verdict == "violation" and not quiet):
            return "refused"
        if r.verdict == "degraded" and not quiet and fail_on in ("warning", "degraded"):
            return "refused"
    return "passed"


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    from datetime import UTC

    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def window_since(now: datetime, seconds: float) -> str:
    return _iso(now - timedelta(seconds=seconds))
