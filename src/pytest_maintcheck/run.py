"""One run's state: options, the loaded config, the results gathered, the run folder.

Lives in ``config.stash``; plain Python, so the plugin module stays a list of hooks.
"""

from __future__ import annotations

import os
import secrets as _secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.catalogue import CheckSpec
from pytest_maintcheck.config import Config, Waiver, load_config, secret_values
from pytest_maintcheck.redact import Redactor, printable
from pytest_maintcheck.verdict import Assessment

CONFIG_NAME = "maintcheck.yaml"


def new_run_id(now: datetime) -> str:
    """UTC time then a short random suffix: sortable, and unique across a fleet."""
    millis = f"{now.microsecond // 1000:03d}"  # runs in the same second still sort by time
    return now.strftime("%Y%m%dT%H%M%S.") + millis + "Z-" + _secrets.token_hex(3)


@dataclass
class RunState:
    rootdir: Path
    config_path: Path | None
    default_config_path: Path
    report_dir: Path
    fail_on: str = "violation"
    apply: bool = False
    maintenance_type: str = "routine"
    is_worker: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    run_id: str = ""
    config: Config | None = None
    redact: Redactor = field(default_factory=Redactor)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashed: list[str] = field(default_factory=list)
    missing_config: bool = False
    owns_html: bool = False
    selected: int = 0
    run_dir: Path | None = None
    today: date = field(default_factory=date.today)

    @classmethod
    def from_options(cls, rootdir: Path, option: Callable[[str], Any], is_worker: bool) -> RunState:
        default = rootdir / CONFIG_NAME
        given = option("maintcheck_config")
        config_path = Path(given) if given else (default if default.is_file() else None)
        if config_path is not None and not config_path.is_absolute():
            config_path = Path.cwd() / config_path
        report_dir = Path(option("maintcheck_report_dir") or "reports")
        if not report_dir.is_absolute():
            report_dir = rootdir / report_dir
        state = cls(
            rootdir=rootdir,
            config_path=config_path,
            default_config_path=default,
            report_dir=report_dir,
            fail_on=option("maintcheck_fail_on") or "violation",
            apply=bool(option("maintcheck_apply")),
            maintenance_type=option("maintcheck_type") or "routine",
            is_worker=is_worker,
        )
        state.run_id = new_run_id(state.started_at)
        return state

    # -- config ----------------------------------------------------------------------------

    def load(self) -> None:
        assert self.config_path is not None
        self.config = load_config(self.config_path)
        self.redact = Redactor([*self.config.secrets, *secret_values(os.environ)])

    def scrub_report(self, report: Any) -> None:
        """A traceback that would print a secret is replaced by its redacted text."""
        if report.longrepr is None or isinstance(report.longrepr, tuple):
            return
        text = str(report.longrepr)
        if self.redact.leaks(text) or self.redact(text) != text:
            report.longrepr = self.redact(text)
        for i, (key, value) in enumerate(report.sections):
            if self.redact.leaks(value):
                report.sections[i] = (key, self.redact(value))

    def waiver_for(self, item: Any) -> Waiver | None:
        if self.config is None:
            return None
        return next((w for w in self.config.waivers if w.matches(item.name, item.nodeid)), None)

    def waiver_active(self, waiver: Waiver) -> bool:
        return waiver.expires >= self.today

    # -- results ---------------------------------------------------------------------------

    def add_result(self, result: dict[str, Any]) -> None:
        """Merge setup/call/teardown results of one check: the worst one stands."""
        nodeid = result["nodeid"]
        earlier = self.results.get(nodeid)
        if earlier is None or _rank(result) >= _rank(earlier):
            if (
                earlier is not None
                and earlier.get("phase") == "call"
                and result.get("phase") == "teardown"
            ):
                merged = dict(earlier)
                merged["verdict"] = "error"
                merged["message"] = earlier["message"] + "\n" + result["message"]
                self.results[nodeid] = merged
                return
            self.results[nodeid] = result

    def exit_status(self, current: int) -> int:
        """--maintcheck-fail-on=warning: an unwaived degraded check fails the run."""
        if current == 0 and self.fail_on == "warning":
            for r in self.results.values():
                if r["verdict"] == "degraded" and not r.get("waived"):
                    return 1
        return current

    def summary_lines(self) -> Iterator[str]:
        """One line per check that needs attention: its worst finding, at that finding's level.

        Checks that could not measure for the same reason (one target down) share one line
        naming the cause and the checks, so the cause is read once, not once per check.
        """
        from pytest_maintcheck.records import severity_of

        unmeasured: dict[tuple[str, str], list[dict[str, Any]]] = {}
        rest: list[dict[str, Any]] = []
        for r in sorted(self.results.values(), key=lambda r: r["nodeid"]):
            if r["verdict"] in ("pass", "skipped"):
                continue
            why = _only_unmeasured(r)
            if why is None:
                rest.append(r)
            else:
                who = why["target"] or r["target"] or r["name"]
                unmeasured.setdefault((who, why["reason"]), []).append(r)
        for (target, reason), group in unmeasured.items():
            names = [r["name"].split("[")[0] for r in group]
            shown = ", ".join(names[:SUMMARY_NAMES]) + (
                f" (+{len(names) - SUMMARY_NAMES} more)" if len(names) > SUMMARY_NAMES else ""
            )
            severity = max((r["severity"] for r in group), key=_severity_rank)
            count = f"{len(group)} check{'s' if len(group) > 1 else ''}"
            action = group[0]["findings"][0]["action"]
            yield (
                f"VIOLATION [{severity}] {target}: {reason} — {count} could not measure: "
                f"{shown} -> {action}"
            )
        for r in rest:
            tag = r["verdict"].upper() + (" (waived)" if r.get("waived") else "")
            first = r["findings"][0] if r["findings"] else None
            severity = severity_of(first, r) if first else r["severity"]
            text = f"{first['description']} -> {first['action']}" if first else r["message"]
            more = f" (+{len(r['findings']) - 1} more)" if len(r["findings"]) > 1 else ""
            yield f"{tag} [{severity}] {r['name']}: {text.splitlines()[0] if text else ''}{more}"

    # -- files -----------------------------------------------------------------------------

    @property
    def staging_dir(self) -> Path:
        return self.report_dir / f".staging-{self.run_id}"

    @property
    def planned_run_dir(self) -> Path:
        return self.report_dir / self.run_id

    def discard_staging(self) -> None:
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        _remove_if_empty(self.report_dir)

    def finish(self, session_interrupted: bool) -> None:
        """Write the records and move the run folder into place, or leave nothing at all."""
        if not self.results or self.config is None:
            self.discard_staging()
            return
        from pytest_maintcheck.records import build_records
        from pytest_maintcheck.report.files import publish_run

        finished = datetime.now(UTC)
        records = build_records(
            self.config,
            list(self.results.values()),
            run_id=self.run_id,
            started=self.started_at,
            finished=finished,
            maintenance_type=self.maintenance_type,
            interrupted=session_interrupted,
            selected=self.selected,
            crashed=self.crashed,
            previous_incidents=_previous_incidents(self.report_dir),
        )
        self.run_dir = publish_run(
            self.report_dir, self.staging_dir, self.run_id, records, self.redact
        )


SUMMARY_NAMES = 12  # checks named on one grouped summary line


def _only_unmeasured(result: dict[str, Any]) -> dict[str, Any] | None:
    """Why an unwaived check could not measure, when that is all it found."""
    findings = result["findings"]
    if result.get("waived") or not findings:
        return None
    causes = [f.get("couldNotMeasure") for f in findings]
    if not all(causes):
        return None
    first: dict[str, Any] = causes[0]
    return first


def _severity_rank(severity: str) -> int:
    from pytest_maintcheck.catalogue import SEVERITIES

    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def _rank(result: dict[str, Any]) -> int:
    return {"skipped": 0, "pass": 1, "degraded": 2, "violation": 3, "error": 4}.get(
        result["verdict"], 0
    )


def _remove_if_empty(folder: Path) -> None:
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass


def _previous_incidents(report_dir: Path) -> list[dict[str, Any]]:
    from pytest_maintcheck.report.files import latest_run_file

    loaded = latest_run_file(report_dir, "incidents.json")
    return loaded if isinstance(loaded, list) else []


def result_for_report(
    item: Any,
    report: Any,
    *,
    spec: CheckSpec,
    assessed: Assessment | None,
    raised_by_verdict: bool,
    state: RunState,
) -> dict[str, Any]:
    """The plain-JSON result of one check phase, as the controller will record it."""
    params = getattr(item, "callspec", None)
    target_obj = next(iter(params.params.values()), None) if params else None
    severity = getattr(target_obj, "severity", None) or spec.severity
    waiver = state.waiver_for(item)
    verdict, message = _verdict_of(report, assessed, raised_by_verdict)
    result: dict[str, Any] = {
        "nodeid": item.nodeid,
        "name": item.name,
        "check": spec.key,
        "title": spec.title,
        "suite": spec.suite,
        "target": params.id if params else None,
        "verdict": verdict,
        "severity": severity,
        "category": spec.category.name,
        "requirements": list(spec.category.requirements),
        "incidentType": spec.incident_type,
        "metrics": dict(assessed.metrics) if assessed else {},
        "thresholds": dict(assessed.thresholds) if assessed else {},
        "findings": [
            {**f.to_json(), "description": state.redact(f.description)} for f in assessed.findings
        ]
        if assessed
        else [],
        "details": assessed.details if assessed else {},
        "message": state.redact(message),
        "duration": round(float(report.duration), 4),
        "phase": report.when,
        "finishedAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "waived": bool(waiver and state.waiver_active(waiver)),
        "waiver": (
            {
                "check": waiver.check,
                "justification": printable(waiver.justification, 300),
                "expires": waiver.expires.isoformat(),
                "expired": not state.waiver_active(waiver),
            }
            if waiver
            else None
        ),
    }
    if verdict == "error" and not result["findings"]:
        result["findings"] = [
            {
                "verdict": "violation",
                "description": result["message"].splitlines()[0]
                if result["message"]
                else "check errored",
                "action": "Fix the check or its access to the target, then re-run it.",
            }
        ]
    return result


def _verdict_of(
    report: Any, assessed: Assessment | None, raised_by_verdict: bool
) -> tuple[str, str]:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "skipped", str(reason).removeprefix("Skipped: ")
    if report.failed and not raised_by_verdict:
        text = str(report.longrepr) if report.longrepr else "check failed"
        lines = [ln for ln in text.splitlines() if ln.startswith("E ")] or text.splitlines()[-1:]
        what = (
            "could not measure (the check itself failed)"
            if report.when == "call"
            else f"{report.when} failed"
        )
        return "error", f"{what}: " + printable(" ".join(ln[1:].strip() for ln in lines[:3]), 400)
    if assessed is None:
        return "error", "the check recorded no assessment"
    return str(assessed.verdict), assessed.message()
