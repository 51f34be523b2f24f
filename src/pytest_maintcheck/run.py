"""One run's state: options, the loaded config, the results gathered, the run folder.

Lives in ``config.stash``; plain Python, so the plugin module stays a list of hooks.
"""

from __future__ import annotations

import json
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
from pytest_maintcheck.result import CheckResult, Outcome
from pytest_maintcheck.site import is_bundled
from pytest_maintcheck.targets import NOT_CONFIGURED_ID, TARGETS
from pytest_maintcheck.verdict import Assessment
from pytest_maintcheck.windows import MaintenanceWindow

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
    results: dict[str, CheckResult] = field(default_factory=dict)
    crashed: list[str] = field(default_factory=list)
    missing_config: bool = False
    owns_html: bool = False
    selected: int = 0
    run_dir: Path | None = None
    today: date = field(default_factory=date.today)
    file_mode: int = 0o600  # of every file the run writes; folders get x where r
    notices: list[str] = field(default_factory=list)  # for the operator, at the end of the run
    not_written: list[str] = field(default_factory=list)  # files a full disk kept us from writing
    # False for runs that execute no check body (--collect-only, --setup-plan, --setup-only)
    records: bool = True
    # only a report folder this run created is removed again when it writes nothing
    report_dir_existed: bool = True
    # xdist: a private folder the controller shares with its workers (the fleet probed once)
    shared_dir: Path | None = None
    fleet: dict[str, Any] | None = None
    # xdist: each running check's result should its worker die before the check ends
    pending: dict[str, CheckResult] = field(default_factory=dict)
    reruns: dict[str, int] = field(default_factory=dict)
    signer: Any = None  # chain.Signer when signing is configured: signs each run's log
    history_problems: list[str] = field(default_factory=list)  # the store could not be written
    change: Any = None  # change_run.ChangeRun when the run belongs to a change (issue 17)

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
            # a run given --maintcheck-change is an update unless told otherwise (issue 17)
            maintenance_type=option("maintcheck_type")
            or ("update" if option("maintcheck_change") else "routine"),
            is_worker=is_worker,
        )
        given_mode = option("maintcheck_file_mode")
        if given_mode:
            from pytest_maintcheck.report.files import parse_file_mode

            state.file_mode = parse_file_mode(given_mode)  # ValueError: a usage error
        state.run_id = new_run_id(state.started_at)
        return state

    # -- config ----------------------------------------------------------------------------

    def load(self) -> None:
        assert self.config_path is not None
        self.config = load_config(self.config_path)
        self.redact = Redactor(
            [*self.config.secrets, *secret_values(os.environ)],
            public=self.config.public_names | _vocabulary(),
        )
        if self.config.signing is not None and not self.is_worker:
            from pytest_maintcheck.chain import load_signer  # a bad key stops the run here

            self.signer = load_signer(self.config)

    def scrub_report(self, report: Any) -> None:
        """What pytest, JUnit and pytest-html print of a report, redacted: a traceback that
        would show a secret or a URL's credentials becomes its redacted text, and so does
        captured output and logging."""
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            where, line, reason = report.longrepr
            report.longrepr = (where, line, self.redact(str(reason)))
        elif report.longrepr is not None:
            text = str(report.longrepr)
            shown = self.redact(text)
            if shown != text:
                report.longrepr = shown
        report.sections[:] = [(key, self.redact(value)) for key, value in report.sections]

    def waiver_for(self, item: Any) -> Waiver | None:
        if self.config is None:
            return None
        return next((w for w in self.config.waivers if w.matches(item.name, item.nodeid)), None)

    def waiver_active(self, waiver: Waiver) -> bool:
        return waiver.expires >= self.today

    def maintenance_for(self, item: Any) -> MaintenanceWindow | None:
        """The planned maintenance window this check's target is in now, if any."""
        params = getattr(item, "callspec", None)
        if self.config is None or not self.config.maintenance_windows or params is None:
            return None
        from pytest_maintcheck.windows import target_names, window_for

        names = target_names(params.params, params.id)
        return window_for(self.config.maintenance_windows, names, datetime.now(UTC))

    # -- results ---------------------------------------------------------------------------

    def discard_attempt(self, nodeid: str) -> None:
        """pytest-rerunfailures runs the check again: only its final attempt is recorded."""
        self.results.pop(nodeid, None)
        self.reruns[nodeid] = self.reruns.get(nodeid, 0) + 1

    def worker_crashed(self, nodeid: str, why: str) -> None:
        """An xdist worker died in this check: an error for the check, never a silent gap."""
        self.crashed.append(nodeid)
        pending = self.pending.pop(nodeid, None)
        if pending is None:
            return  # died before the check's setup ended: only listed as crashed
        message = f"the worker running it crashed, no verdict ({printable(why, 200)})"
        self.add_result(
            pending.but(
                verdict=Outcome.ERROR,
                message=message,
                phase="call",
                findings=(
                    {
                        "verdict": "violation",
                        "description": message,
                        "action": f"Re-run it alone (pytest '{nodeid}') and fix the crash.",
                    },
                ),
            )
        )

    def add_result(self, result: CheckResult) -> None:
        """Merge setup/call/teardown results of one check: the worst one stands."""
        nodeid = result.nodeid
        if nodeid in self.reruns:
            result = result.but(reruns=self.reruns[nodeid])
        earlier = self.results.get(nodeid)
        if earlier is None or result.verdict.rank >= earlier.verdict.rank:
            if earlier is not None and earlier.phase == "call" and result.phase == "teardown":
                self.results[nodeid] = earlier.but(
                    verdict=Outcome.ERROR, message=earlier.message + "\n" + result.message
                )
                return
            self.results[nodeid] = result

    def exit_status(self, current: int) -> int:
        """--maintcheck-fail-on=warning (or degraded): an unwaived degraded check fails the run."""
        if current == 0 and self.fail_on in ("warning", "degraded"):
            for r in self.results.values():
                if r.verdict is Outcome.DEGRADED and not r.quiet:
                    return 1
        return current

    def tally_line(self) -> str:
        """How many checks reached each verdict, e.g. ``maintcheck: 3 pass, 1 degraded``."""
        from pytest_maintcheck.records import counts

        tally = counts(self.results.values())
        return "maintcheck: " + ", ".join(f"{n} {verdict}" for verdict, n in tally.items() if n)

    def summary_lines(self) -> Iterator[str]:
        """One line per check that needs attention: its worst finding, at that finding's level.

        Checks that could not measure for the same reason (one target down) share one line
        naming the cause and the checks, so the cause is read once, not once per check.
        """
        from pytest_maintcheck.records import severity_of

        unmeasured: dict[tuple[str, str], list[CheckResult]] = {}
        rest: list[CheckResult] = []
        for r in sorted(self.results.values(), key=lambda r: r.nodeid):
            if r.verdict in (Outcome.PASS, Outcome.SKIPPED):
                continue
            why = _only_unmeasured(r)
            if why is None:
                rest.append(r)
            else:
                who = why["target"] or r.target or r.name
                unmeasured.setdefault((who, why["reason"]), []).append(r)
        for (target, reason), group in unmeasured.items():
            names = [r.name.split("[")[0] for r in group]
            shown = ", ".join(names[:SUMMARY_NAMES]) + (
                f" (+{len(names) - SUMMARY_NAMES} more)" if len(names) > SUMMARY_NAMES else ""
            )
            severity = max((r.severity for r in group), key=_severity_rank)
            count = f"{len(group)} check{'s' if len(group) > 1 else ''}"
            action = group[0].findings[0]["action"]
            yield (
                f"VIOLATION [{severity}] {target}: {reason} — {count} could not measure: "
                f"{shown} -> {action}"
            )
        for r in rest:
            tag = r.verdict.upper() + (" (waived)" if r.waived else "")
            if r.in_maintenance and r.maintenance_window:
                tag += f" (in maintenance: {r.maintenance_window['name']})"
            first = r.findings[0] if r.findings else None
            severity = severity_of(first, r.severity) if first else r.severity
            text = f"{first['description']} -> {first['action']}" if first else r.message
            more = f" (+{len(r.findings) - 1} more)" if len(r.findings) > 1 else ""
            yield f"{tag} [{severity}] {r.name}: {text.splitlines()[0] if text else ''}{more}"
        for problem in self.history_problems:
            yield f"HISTORY [medium] {problem}"

    # -- files -----------------------------------------------------------------------------

    @property
    def staging_dir(self) -> Path:
        return self.report_dir / f".staging-{self.run_id}"

    @property
    def planned_run_dir(self) -> Path:
        return self.report_dir / self.run_id

    def check_report_dir(self) -> None:
        """Refuse, before any check runs, a report folder this run cannot write into."""
        import tempfile

        existed = self.report_dir.is_dir()
        try:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.report_dir)
            os.close(fd)
            os.unlink(probe)
            if not existed:
                _remove_if_empty(self.report_dir)  # made when the run has something to write
        except OSError as exc:
            raise ReportDirError(
                f"cannot write to the report folder {self.report_dir}: "
                f"{exc.strerror or exc}; pass --maintcheck-report-dir DIR with a writable folder"
            ) from None

    def check_report_dir_access(self) -> None:
        """Before pytest-html makes its folder: refuse a report folder we may not write into.

        Changes nothing (a run that selects no check leaves even the folder's mtime alone);
        the real write test comes when checks are about to run.
        """
        folder = self.report_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK | os.X_OK):  # EROFS too, also for root
            try:
                os.stat(folder)
                reason = "Read-only file system" if _read_only(folder) else "Permission denied"
            except OSError as exc:
                reason = exc.strerror or str(exc)
            raise ReportDirError(
                f"cannot write to the report folder {self.report_dir}: {reason}; "
                "pass --maintcheck-report-dir DIR with a writable folder"
            )

    def page_not_written(self, exc: OSError) -> None:
        """pytest-html could not write its page: drop the partial file, keep the records."""
        page = self.staging_dir / "report.html"
        page.unlink(missing_ok=True)
        self.not_written.append(self._what_failed(exc, page))

    def discard_staging(self) -> None:
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        if not self.report_dir_existed:  # a project's own empty reports/ folder stays
            _remove_if_empty(self.report_dir)

    def ensure_shared_dir(self) -> Path:
        """The controller's private folder for its workers (mode 0700, outside the reports)."""
        if self.shared_dir is None:
            import tempfile

            self.shared_dir = Path(tempfile.mkdtemp(prefix=f"maintcheck-{self.run_id}-"))
        return self.shared_dir

    def remove_shared_dir(self) -> None:
        if self.shared_dir is not None and not self.is_worker:
            shutil.rmtree(self.shared_dir, ignore_errors=True)

    def finish(self, session_interrupted: bool) -> None:
        """Write the records and move the run folder into place, or leave nothing at all."""
        if not self.results or self.config is None or not self.records:
            self.discard_staging()
            return
        from pytest_maintcheck.incident_run import run_incidents
        from pytest_maintcheck.records import build_records
        from pytest_maintcheck.report.files import publish_run

        finished = datetime.now(UTC)
        # incidents are carried, notified and kept under the incident store's lock
        with run_incidents(
            self.report_dir, self.config, finished, self.redact, self.file_mode
        ) as incidents:
            system, environment = self.config.system, self.config.environment
            previous = incidents.previous(
                lambda: _previous_incidents(self.report_dir, system, environment)
            )
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
                previous_incidents=previous,
            )
            if self.change is not None:
                self.change.annotate(records)  # before the history store records the run
            from pytest_maintcheck.history.capacity import review_record

            review = review_record(self.results.values())
            if review is not None:
                records["capacity-review.json"] = review
            postmortems = incidents.settle(records)
            index = self._record_history(records, finished)
            try:
                self._write_postmortems(postmortems)
                self.run_dir = publish_run(
                    self.report_dir,
                    self.staging_dir,
                    self.run_id,
                    records,
                    self.redact,
                    self.file_mode,
                    signer=self.signer,
                    index=index,
                    history=self.config.history,
                )
            except OSError as exc:  # a full disk: no partial file stays, the summary says which
                if self.planned_run_dir.is_dir():
                    self.run_dir = self.planned_run_dir  # in place; only history or index failed
                else:
                    self.discard_staging()
                self.not_written.append(self._what_failed(exc, self.staging_dir))
            incidents.keep(self.file_mode)  # after the records: they matter more on a full disk
        self.notices.extend(incidents.notes)
        if not self.not_written:
            self._write_status_page(finished)
        if self.config.prometheus_textfile is not None:
            from pytest_maintcheck.export.prometheus import export_run

            self.notices.extend(
                export_run(
                    self.config.prometheus_textfile,
                    list(self.results.values()),
                    started=self.started_at,
                    finished=finished,
                    interrupted=session_interrupted,
                )
            )

    def _record_history(self, records: dict[str, Any], finished: datetime) -> Any:
        """The run into the history store before its folder is published: a store that
        cannot be written becomes a finding in this run's MaintenanceLog, never a lost run."""
        from pytest_maintcheck.history.recording import HISTORY_ACTION, host_name, record_run

        assert self.config is not None
        records["results.json"]["host"] = host_name()
        recorded = record_run(
            self.config.history, self.report_dir, records, mode=self.file_mode, now=finished
        )
        details = records["maintenance-log.json"]["details"]
        for problem in recorded.problems:
            details["findings"].append(f"[medium] history store: degraded: {problem}")
            details["followUp"].append(f"history store: {HISTORY_ACTION}")
        self.history_problems = [self.redact(p) for p in recorded.problems]
        return recorded.summaries

    def _write_postmortems(self, drafts: dict[str, str]) -> None:
        """Post-mortem drafts of incidents resolved by this run, beside its records."""
        from pytest_maintcheck.report.files import write_atomic

        for name, text in drafts.items():
            write_atomic(self.staging_dir / name, self.redact(text), self.file_mode)

    def _write_status_page(self, now: datetime) -> None:
        from pytest_maintcheck.report.status import write_status_page

        assert self.config is not None
        if not (self.config.health_checks or self.config.maintenance_windows):
            return  # the page shows services and planned work: without either it says nothing
        try:
            write_status_page(self.report_dir, self.config, now, self.file_mode)
        except OSError as exc:
            self.not_written.append(self._what_failed(exc, self.report_dir / "status.html"))

    def _what_failed(self, exc: OSError, default: Path) -> str:
        """The file as the operator will look for it: in the run folder, not the staging one."""
        where = str(exc.filename) if exc.filename else str(default)
        where = where.replace(str(self.staging_dir), str(self.planned_run_dir))
        return f"{where}: {exc.strerror or exc}"


def _read_only(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


SUMMARY_NAMES = 12  # checks named on one grouped summary line


def _only_unmeasured(result: CheckResult) -> dict[str, Any] | None:
    """Why an unwaived check could not measure, when that is all it found."""
    findings = result.findings
    if result.waived or not findings:
        return None
    causes = [f.get("couldNotMeasure") for f in findings]
    if not all(causes):
        return None
    return causes[0]


def _severity_rank(severity: str) -> int:
    from pytest_maintcheck.catalogue import SEVERITIES

    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def _remove_if_empty(folder: Path) -> None:
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass


class ReportDirError(Exception):
    """The report folder cannot be written; raised before any check runs."""


def _previous_incidents(
    report_dir: Path, system: str, environment: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Open incidents of the newest run of this system and environment that has readable
    ones, and a note per broken input (a demo run's incidents in the same report folder are
    not this system's).

    Earlier runs' files are input: a broken file is reported and the run before it is read
    instead, so an open incident is not dropped; a broken entry is reported and skipped.
    """

    from pytest_maintcheck.report.files import run_folders

    notes: list[str] = []
    for folder in reversed(run_folders(report_dir)):
        path = folder / "incidents.json"
        if not path.is_file() or not _same_system(folder, system, environment):
            continue
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            notes.append(f"{path}: unreadable ({printable(str(exc), 120)}); skipped")
            continue
        if not isinstance(loaded, list):
            notes.append(f"{path}: not a list of incidents; skipped")
            continue
        good = [i for i in loaded if _is_incident(i)]
        if len(good) < len(loaded):
            notes.append(f"{path}: {len(loaded) - len(good)} malformed incident(s) skipped")
        if good or not loaded:
            return good, notes
    return [], notes


def _is_incident(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("check"), str)
        and isinstance(entry.get("timeline", {}), dict)
    )


def _same_system(folder: Path, system: str, environment: str) -> bool:
    """False only for a run whose log names another system or environment; a run without
    a readable log is broken input and is read (and reported) like the others."""

    try:
        log = json.loads((folder / "maintenance-log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return True
    if not isinstance(log, dict):
        return True
    return (log.get("system"), log.get("environment")) == (system, environment)


def result_for_report(
    item: Any,
    report: Any,
    *,
    spec: CheckSpec,
    assessed: Assessment | None,
    raised_by_verdict: bool,
    state: RunState,
) -> CheckResult:
    """The result of one check phase, as the controller will record it."""
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
        # a site check is in no table the controller has: its incident draft needs these
        **({} if is_bundled(spec) else {"action": spec.action, "runbook": list(spec.runbook)}),
        "metrics": dict(assessed.metrics) if assessed else {},
        "thresholds": dict(assessed.thresholds) if assessed else {},
        "findings": [f.to_json() for f in assessed.findings] if assessed else [],
        "details": assessed.details if assessed else {},
        "message": message,
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
    window = state.maintenance_for(item)
    if window is not None:  # still recorded as measured; nobody paged, not in availability
        result["inMaintenance"] = True
        result["maintenanceWindow"] = window.record()
        result["details"] = {**result["details"], "excludedFromAvailability": True}
    section = _absent_section(params) if verdict == "skipped" else None
    if section:
        result["notConfigured"] = section
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
    # every string, details and metrics too, before anything serializes it
    redacted: dict[str, Any] = state.redact.walk(result)
    return CheckResult.from_json(redacted)


def _vocabulary() -> frozenset[str]:
    """Words of our own output (suites, severities, verdicts, check keys): a secret equal to
    one is public anyway, and masking it would rewrite every record."""
    from pytest_maintcheck.catalogue import CHECKS, SEVERITIES, SUITES
    from pytest_maintcheck.verdict import Verdict

    return frozenset([*SUITES, *SEVERITIES, *(v.value for v in Verdict), *CHECKS])


def _absent_section(params: Any) -> str | None:
    """The config section whose absence made this check a placeholder skip, if it was one."""
    if params is None or params.id != NOT_CONFIGURED_ID:
        return None
    return next((TARGETS[name].section for name in params.params if name in TARGETS), None)


def _verdict_of(
    report: Any, assessed: Assessment | None, raised_by_verdict: bool
) -> tuple[str, str]:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "skipped", str(reason).removeprefix("Skipped: ")
    if report.failed and not raised_by_verdict:
        text = str(report.longrepr) if report.longrepr else "check failed"
        # pytest's own tracebacks mark the error lines with "E "; --tb=native and --tb=line do not
        marked = [ln[1:] for ln in text.splitlines() if ln.startswith("E ")]
        lines = marked or [ln for ln in text.splitlines() if ln.strip()][-1:]
        what = (
            "could not measure (the check itself failed)"
            if report.when == "call"
            else f"{report.when} failed"
        )
        return "error", f"{what}: " + printable(" ".join(ln.strip() for ln in lines[:3]), 400)
    if assessed is None:
        return "error", "the check recorded no assessment"
    return str(assessed.verdict), assessed.message()
