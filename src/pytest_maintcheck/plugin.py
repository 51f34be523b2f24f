"""pytest hooks only: options, markers, target parametrization, verdicts, records at the end.

Everything a hook needs lives in ``config.stash[STATE]``; measuring, judging and writing
files are done by the library modules this one calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pytest_maintcheck import suite_fixtures
from pytest_maintcheck.catalogue import SUITES, CheckSpec
from pytest_maintcheck.config import Config, ConfigError
from pytest_maintcheck.errors import MeasurementError
from pytest_maintcheck.redact import RedactingFilter, printable
from pytest_maintcheck.result import CheckResult
from pytest_maintcheck.run import ReportDirError, RunState, result_for_report
from pytest_maintcheck.site import spec_of
from pytest_maintcheck.targets import NOT_CONFIGURED_ID, TARGETS
from pytest_maintcheck.verdict import Assessment, Verdict

STATE = pytest.StashKey[RunState]()
ASSESSMENT = pytest.StashKey[Assessment]()
RAISED = pytest.StashKey[bool]()
SPEC = pytest.StashKey[CheckSpec | None]()
SIGTERM_BEFORE = pytest.StashKey[Any]()
VERDICT = pytest.StashKey[tuple[str, str]]()  # (verdict, severity) of the check's latest report

OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("config", "maintenance config file (default: maintcheck.yaml in the rootdir)", {}),
    ("report-dir", "where run folders go (default: reports)", {}),
    (
        "fail-on",
        "which outcome makes the exit status non-zero (default: violation)",
        {"choices": ("violation", "warning", "degraded")},  # degraded: the verdict's own name
    ),
    (
        "type",
        "MaintenanceLog.type (default: routine)",
        {"choices": ("routine", "emergency", "update")},
    ),
    ("change", "the change (ticket) this run belongs to; implies --maintcheck-type update", {}),
    ("version", "the version the change deploys (needs --maintcheck-change)", {}),
    (
        "baseline",
        "compare with the last run before the change (auto) or a run id (needs "
        "--maintcheck-change)",
        {},
    ),
    (
        "file-mode",
        "mode of every file a run writes, octal (default: 0600; folders get x where r: 0700)",
        {},
    ),
)


# ---------------------------------------------------------------------------- options


@pytest.hookimpl  # order does not matter for options
def pytest_addoption(parser: pytest.Parser) -> None:
    """Each --maintcheck-X option is also settable as maintcheck_X in the ini file."""
    group = parser.getgroup("maintcheck", "maintenance checks (pytest-maintcheck)")
    for name, help_text, extra in OPTIONS:
        dest = "maintcheck_" + name.replace("-", "_")
        group.addoption(f"--maintcheck-{name}", dest=dest, default=None, help=help_text, **extra)
        parser.addini(dest, help_text, default=None)
    group.addoption(
        "--maintcheck-apply",
        action="store_true",
        dest="maintcheck_apply",
        default=None,
        help="allow corrective maintenance (VACUUM, ANALYZE, REINDEX CONCURRENTLY)",
    )
    parser.addini("maintcheck_apply", "allow corrective maintenance", type="bool", default=False)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Our options written with a space (not ``=``) must not move pytest's rootdir."""
    from pytest_maintcheck.rootdir import repair

    repair(early_config, args)


# ---------------------------------------------------------------------------- configure


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the maintenance config once, before any check runs; a bad config is a usage error."""
    for suite in SUITES:
        config.addinivalue_line("markers", f"{suite}: a {suite} maintenance check")
    config.addinivalue_line(
        "markers", "maintcheck(key): the catalogue entry of a maintenance check"
    )
    workerinput = getattr(config, "workerinput", None)
    try:
        state = RunState.from_options(
            rootdir=Path(config.rootpath),
            option=lambda name: _option(config, name),
            is_worker=workerinput is not None,
        )
    except ValueError as exc:
        raise pytest.UsageError(f"maintcheck: --maintcheck-file-mode: {exc}") from None
    if workerinput is not None and workerinput.get("maintcheck_run_id"):
        state.run_id = workerinput["maintcheck_run_id"]  # one run, whatever the number of workers
        state.shared_dir = Path(workerinput["maintcheck_shared_dir"])
    config.stash[STATE] = state
    config.pluginmanager.register(AssessmentFixture(), "maintcheck-assessment")
    config.pluginmanager.register(suite_fixtures, "maintcheck-suite-fixtures")  # measurements
    if state.config_path is None or _shows_only(config):
        return  # without a config (or for --help/--markers) the plugin stays out of the way
    try:
        state.load()
    except ConfigError as exc:
        raise pytest.UsageError(f"maintcheck config error: {exc}") from None
    from pytest_maintcheck.site_hooks import SiteChecks  # the site's own checks

    config.pluginmanager.register(SiteChecks(state), "maintcheck-site-checks")
    state.records = _executes_checks(config)
    from pytest_maintcheck.change_hooks import ChangeHooks, change_run_for  # issue 17

    state.change = change_run_for(state, lambda name: _option(config, name))
    config.pluginmanager.register(ChangeHooks(state, state.change), "maintcheck-change")
    if not state.records:
        return  # --collect-only, --setup-plan, --setup-only, --fixtures: no check body runs
    if not state.is_worker:
        try:
            state.check_report_dir_access()
        except ReportDirError as exc:
            raise pytest.UsageError(f"maintcheck: {exc}") from None
    _stop_on_sigterm(config)
    if not state.is_worker and not config.getoption("htmlpath", None):
        # pytest-html writes into the run's staging folder; we move it into place at the end
        state.report_dir_existed = state.report_dir.is_dir()
        config.option.htmlpath = str(state.staging_dir / "report.html")
        config.option.self_contained_html = True
        state.owns_html = True
    config.pluginmanager.register(LogRedaction(state), "maintcheck-log-redaction")
    config.pluginmanager.register(ResultCollector(state), "maintcheck-results")
    if not state.is_worker:
        from pytest_maintcheck.ops_hooks import RunLockHooks  # one run per suite and config

        config.pluginmanager.register(RunLockHooks(state), "maintcheck-run-lock")
    if config.pluginmanager.hasplugin("html"):
        from pytest_maintcheck.report.html import HtmlHooks

        config.pluginmanager.register(HtmlHooks(state), "maintcheck-html")
    if config.pluginmanager.hasplugin("timeout") and not state.is_worker:
        config.pluginmanager.register(ThreadTimeoutRecords(state), "maintcheck-timeout")


def _shows_only(config: pytest.Config) -> bool:
    """--help and --markers configure pytest but never collect: no config is read for them."""
    return bool(config.option.help or getattr(config.option, "markers", False))


def _executes_checks(config: pytest.Config) -> bool:
    """False for runs that execute no check body; they write no record and link no report."""
    option = config.option
    return not any(
        getattr(option, name, False)
        for name in (
            "collectonly",
            "setupplan",
            "setuponly",
            "showfixtures",
            "show_fixtures_per_test",
        )
    )


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook, on the controller
def pytest_configure_node(node: Any) -> None:
    """Workers share the controller's run id and a private folder to probe the fleet once."""
    state = node.config.stash[STATE]
    if state.config is None or not state.records:
        return
    node.workerinput["maintcheck_run_id"] = state.run_id
    node.workerinput["maintcheck_shared_dir"] = str(state.ensure_shared_dir())


@pytest.hookimpl(tryfirst=True)  # before pytest-html's sessionstart, which may write its page
def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest-html made the staging folder when configured; it comes back only for records.

    On a terminal, long work (the fleet probe, a restore) shows what runs and for how long.
    """
    state = session.config.stash[STATE]
    if state.owns_html and not session.config.getini("generate_report_on_test"):
        state.discard_staging()
    if state.config is not None and state.records:
        _show_progress(session.config)


@pytest.hookimpl  # order does not matter: the run is over
def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the workers' shared folder; give SIGTERM back its handler from before the run."""
    state = config.stash.get(STATE, None)
    if state is not None:
        state.remove_shared_dir()
    before = config.stash.get(SIGTERM_BEFORE, None)
    if before is not None:
        signal.signal(signal.SIGTERM, before)
        del config.stash[SIGTERM_BEFORE]


def _stop_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (cron, systemd, CI) stops the run the way Ctrl-C does: records of what finished.

    A second SIGTERM while the run cleans up ends the process at once (the default action).
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt("SIGTERM")

    with contextlib.suppress(ValueError):  # not the main thread: leave the host's handler alone
        config.stash[SIGTERM_BEFORE] = signal.signal(signal.SIGTERM, interrupt)


def _show_progress(config: pytest.Config) -> None:
    """A status line for long work, only when the output is a terminal."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if hasattr(config, "workerinput") or reporter is None:
        return
    try:
        if not sys.stdout.isatty():
            return  # cron, CI, a pipe: output stays exactly as it was
        fd = os.dup(sys.stdout.fileno())  # still the terminal while capture redirects fd 1
    except (AttributeError, OSError, ValueError):
        return
    from pytest_maintcheck import progress

    writer = reporter._tw
    progress.set_sink(
        progress.TerminalLine(fd, lambda: writer.fullwidth - writer.width_of_current_line)
    )

    def stop() -> None:
        progress.set_sink(None)
        os.close(fd)

    config.add_cleanup(stop)


class LogRedaction:
    """Log records are redacted before pytest shows, captures or writes them (live logging,
    captured logs in reports and JUnit, --log-file): httpx logs every URL it requests."""

    def __init__(self, state: RunState) -> None:
        self.filter = RedactingFilter(lambda text: state.redact(text))

    @pytest.hookimpl(tryfirst=True)  # before any check logs
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Filter pytest's own log handlers and the httpx logger."""
        logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
        for name in ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler"):
            handler = getattr(logging_plugin, name, None)
            if isinstance(handler, logging.Handler):
                handler.addFilter(self.filter)
        logging.getLogger("httpx").addFilter(self.filter)  # for handlers that are not pytest's

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The httpx logger outlives the run (pytester runs in-process)."""
        logging.getLogger("httpx").removeFilter(self.filter)


class ResultCollector:
    """Gathers results where records are written: the controller under xdist."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A report made for a crashed xdist worker has no result: it is read with a default."""
        if report.outcome == "rerun":  # type: ignore[comparison-overlap]  # pytest-rerunfailures
            self.state.discard_attempt(report.nodeid)
            return
        pending = getattr(report, "maintcheck_pending", None)
        if isinstance(pending, dict):
            self.state.pending[report.nodeid] = CheckResult.from_json(pending)
        elif report.when == "teardown":
            self.state.pending.pop(report.nodeid, None)  # the check ended
        result = getattr(report, "maintcheck", None)
        if isinstance(result, dict):
            self.state.add_result(CheckResult.from_json(result))
        elif str(report.when) == "???" and report.failed:  # xdist's report for a crashed worker
            self.state.worker_crashed(report.nodeid, str(report.longrepr))


class ThreadTimeoutRecords:
    """pytest-timeout's thread method ends the process with os._exit, skipping every hook.

    For a check, its timer first records the check as timed out and writes the run's records
    (MaintenanceLog status ``failed``; no report.html, pytest-html never gets to write it),
    then hands over to pytest-timeout. Under xdist the worker dies and the controller
    records the check from its pending result instead.
    """

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        if settings.method != "thread" or _check_spec(item) is None:
            return None  # pytest-timeout's own timer
        import threading

        import pytest_timeout  # type: ignore[import-untyped]

        def expire() -> None:
            if not settings.disable_debugger_detection and pytest_timeout.is_debugging():
                return
            try:
                self._record_timeout(item, float(settings.timeout))
            finally:
                pytest_timeout.timeout_timer(item, settings)

        timer = threading.Timer(settings.timeout, expire)
        timer.name = f"maintcheck timeout {item.nodeid}"
        timer.daemon = True

        def cancel() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel  # type: ignore[attr-defined]  # pytest-timeout calls it
        timer.start()
        return True

    def _record_timeout(self, item: pytest.Item, seconds: float) -> None:
        spec = _check_spec(item)
        assert spec is not None
        report = pytest.TestReport(
            item.nodeid,
            item.location,
            {},
            "failed",
            f"E   Failed: Timeout (>{seconds:g}s) from pytest-timeout; "
            "the thread method stopped the whole run here",
            "call",
            [],
            seconds,
        )
        self.state.add_result(
            result_for_report(
                item, report, spec=spec, assessed=None, raised_by_verdict=False, state=self.state
            )
        )
        self.state.finish(session_interrupted=True)
        if self.state.run_dir is not None:
            item.config.get_terminal_writer().line(f"maintcheck records: {self.state.run_dir}")


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, None)
    if value is None:
        value = config.getini(name)
    return value


# ---------------------------------------------------------------------------- collection


@pytest.hookimpl  # parametrizes only the target fixtures, whoever else runs
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A check asking for a target fixture runs once per configured target, id = its name.

    Only @pytest.mark.maintcheck checks: a project's own ``backup`` or ``policy`` fixture, or
    its own parametrize over ``dependency``, is none of the plugin's business.
    """
    if metafunc.definition.get_closest_marker("maintcheck") is None:
        return
    for name, kind in TARGETS.items():
        if name not in metafunc.fixturenames:
            continue
        state = metafunc.config.stash[STATE]
        config = state.config
        if config is None:
            state.missing_config = True
            metafunc.parametrize(name, [pytest.param(None, id="no-config")])
            continue
        targets = list(kind.targets(config))
        if not targets:
            reason = f"nothing to check: no {kind.section} in {config.path.name}"
            metafunc.parametrize(
                name,
                [pytest.param(None, marks=pytest.mark.skip(reason=reason), id=NOT_CONFIGURED_ID)],
            )
            continue
        metafunc.parametrize(name, targets, ids=[kind.ident(t) for t in targets])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Checks get their suite marker from the catalogue, so ``-m daily`` always selects them."""
    state = config.stash[STATE]
    suite_marks = {suite: getattr(pytest.mark, suite) for suite in SUITES}  # shared, not per check
    for item in items:
        marker = item.get_closest_marker("maintcheck")
        if marker is None:
            continue
        spec = spec_of(marker.args[0])  # a bundled key or a site check's declaration
        if item.get_closest_marker(spec.suite) is None:
            item.add_marker(suite_marks[spec.suite])
    if state.config is not None and state.config.waivers and not state.is_worker:
        state.notices.extend(_waiver_problems(state.config, items))
    if state.config is None and any(i.get_closest_marker("maintcheck") for i in items):
        raise pytest.UsageError(
            f"maintcheck: no config found; create {state.default_config_path} "
            "or pass --maintcheck-config PATH"
        )


@pytest.hookimpl(trylast=True)  # after deselection: counts what will really run
def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that selected no maintenance check stays silent: no report folder, no HTML."""
    state = session.config.stash[STATE]
    if state.config is None:
        return  # no config: nothing selected is a check (a check without one is a usage error)
    state.selected = sum(1 for i in session.items if _check_spec(i) is not None)
    if state.selected or state.is_worker or _xdist_controller(session.config):
        return
    html = _html_report(session.config)
    if state.owns_html and html is not None:
        session.config.pluginmanager.unregister(html)
        state.discard_staging()
    hooks = session.config.pluginmanager.get_plugin("maintcheck-html")
    if hooks is not None:  # the project's own --html page keeps the columns it had
        session.config.pluginmanager.unregister(hooks)
        if html is not None and not state.owns_html:
            hooks.withdraw_columns(html._report)


def _waiver_problems(config: Config, items: list[pytest.Item]) -> list[str]:
    """Waivers naming no check of the bundled suite or of this run, or no configured target."""
    from pytest_maintcheck.sandbox.demo import suite_path
    from pytest_maintcheck.validate import check_names, waiver_problems

    names = check_names([suite_path()])
    names.update(getattr(i, "originalname", i.name) for i in items)
    return waiver_problems(config, names)


def _check_spec(item: pytest.Item) -> CheckSpec | None:
    """The catalogue entry of a maintenance check (None for other tests), looked up once.

    Several hooks of every phase need it and a marker lookup walks the node chain; first
    called when collection finished, once every plugin has added its markers.
    """
    if SPEC not in item.stash:
        marker = item.get_closest_marker("maintcheck")
        item.stash[SPEC] = spec_of(marker.args[0]) if marker is not None else None
    return item.stash[SPEC]


def _html_report(config: pytest.Config) -> Any:
    """pytest-html's report plugin (it has no public handle), or None."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "_report_path"):
            return plugin
    return None


def _xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def maintcheck_config(request: pytest.FixtureRequest) -> Config:
    """The validated config of this run."""
    config = request.config.stash[STATE].config
    assert config is not None  # collection already refused a run without one
    return config


@pytest.fixture(scope="session")
def maintcheck_apply(request: pytest.FixtureRequest) -> bool:
    """True when the operator allowed corrective maintenance (--maintcheck-apply)."""
    return request.config.stash[STATE].apply


class AssessmentFixture:
    """The ``assessment`` fixture, made for the item being run.

    It does not ask for ``request``: pytest builds a new FixtureDef, inspecting a signature,
    each time ``request`` is resolved (three times per check, some 20 µs).
    """

    def __init__(self) -> None:
        self.running: pytest.Item | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: set before any fixture is made
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        """A function-scoped fixture is made only while its item runs."""
        previous, self.running = self.running, item
        try:
            return (yield)
        finally:
            self.running = previous

    @pytest.fixture
    def assessment(self) -> Assessment:
        """Where a check records what it measured; the plugin turns it into the verdict."""
        item = self.running
        spec = _check_spec(item) if item is not None else None
        if item is None or spec is None:
            raise pytest.UsageError("the assessment fixture is for @pytest.mark.maintcheck checks")
        made = Assessment(default_action=spec.action)
        item.stash[ASSESSMENT] = made
        return made


@pytest.fixture(scope="session")
def health_fleet(request: pytest.FixtureRequest) -> Any:
    """Every selected service (daily health or weekly load balance) probed at once, concurrently.

    Normally probed before the first check starts (see pytest_runtestloop), so no check's
    timeout (pytest-timeout) covers the whole fleet's probing.
    """
    state = request.config.stash[STATE]
    if state.fleet is None:
        _probe_fleet(request.session)
    return state.fleet


@pytest.hookimpl(tryfirst=True)  # before the first check: outside every check's own timer
def pytest_runtestloop(session: pytest.Session) -> None:
    """Refuse a report folder we cannot write into, then probe the fleet, before any check."""
    state = session.config.stash[STATE]
    if state.config is None or not state.records:
        return
    if not state.is_worker and (state.selected or _xdist_controller(session.config)):
        try:  # a run with nothing to write leaves even the folder's mtime alone
            state.check_report_dir()
        except ReportDirError as exc:
            raise pytest.UsageError(f"maintcheck: {exc}") from None
    if not state.selected:
        return
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        return  # pytest stops the run for its collection errors next
    if any("health_fleet" in getattr(i, "fixturenames", ()) for i in session.items):
        _probe_fleet(session)


def _probe_fleet(session: pytest.Session) -> None:
    """Once per run: under xdist the first worker probes and the others read its results."""
    state = session.config.stash[STATE]
    if state.config is None or not state.records:
        state.fleet = {}  # --setup-only runs fixtures but must not reach production services
        return
    from pytest_maintcheck.fleet import probe_once, selected_services

    checks = selected_services(i for i in session.items if _check_spec(i) is not None)
    state.fleet = probe_once(state.config, checks, state.shared_dir)


@pytest.fixture(scope="session")
def health_history(request: pytest.FixtureRequest) -> Any:
    """Earlier health checks of this system and environment over the history window."""
    from pytest_maintcheck.history.window import read_window

    return read_window(request.config.stash[STATE], ("health",), ("samples", "errorRate"))


@pytest.fixture(scope="session")
def capacity_history(request: pytest.FixtureRequest) -> Any:
    """What the capacity review projects and compares, over the history window."""
    from pytest_maintcheck.history.window import CAPACITY_CHECKS, CAPACITY_METRICS, read_window

    return read_window(request.config.stash[STATE], CAPACITY_CHECKS, CAPACITY_METRICS)


@pytest.fixture(scope="session")
def host_history(request: pytest.FixtureRequest) -> Any:
    """Every host_resources measurement over the history window (one usage per mount)."""
    from pytest_maintcheck.history.capacity import HOST_CHECK
    from pytest_maintcheck.history.window import read_window

    return read_window(request.config.stash[STATE], (HOST_CHECK,))


# ---------------------------------------------------------------------------- running


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """After the check body: a probe error that escaped it becomes a could-not-measure
    finding, its waiver is applied, and a violation fails it with its message."""
    try:
        result = yield
    except MeasurementError as exc:
        assessed = pyfuncitem.stash.get(ASSESSMENT, None)
        if assessed is None:
            raise
        params = getattr(pyfuncitem, "callspec", None)
        assessed.unreached(exc.about(params.id) if params else exc)
        result = None
    assessed = pyfuncitem.stash.get(ASSESSMENT, None)
    if assessed is None:
        return result
    state = pyfuncitem.config.stash[STATE]
    waiver = state.waiver_for(pyfuncitem)
    if waiver is not None and not state.waiver_active(waiver):
        assessed.add_finding(
            Verdict.DEGRADED,
            f"waiver for {waiver.check} expired on {waiver.expires.isoformat()} "
            f"({printable(waiver.justification, 120)})",
            "Fix the cause or renew the waiver with a new justification and expiry.",
        )
    waived = waiver is not None and state.waiver_active(waiver)
    planned = state.maintenance_for(pyfuncitem) is not None  # like a waiver: shown, not failed
    if assessed.verdict is Verdict.VIOLATION and not waived and not planned:
        pyfuncitem.stash[RAISED] = True
        pytest.fail(state.redact(assessed.message()), pytrace=False)
    if assessed.verdict is Verdict.DEGRADED and not waived and state.fail_on == "warning":
        # it fails the gate, so it is a failure for pytest, JUnit XML and CI alike
        pyfuncitem.stash[RAISED] = True
        pytest.fail(
            state.redact(f"DEGRADED (--maintcheck-fail-on=warning): {assessed.message()}"),
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Put the check's result on its report as plain JSON, so it crosses xdist's wire."""
    report = yield
    assessed = item.stash.get(ASSESSMENT, None)
    raised_by_verdict = item.stash.get(RAISED, False)
    if report.when == "teardown" and assessed is not None:
        # the item's last report: items live all session, and thousands of assessments kept
        # with them make every garbage collection slower
        del item.stash[ASSESSMENT]
    state = item.config.stash[STATE]
    if report.sections or not report.passed:
        # captured output and logs reach the terminal, JUnit and the page from every report
        state.scrub_report(report)
    if report.passed and report.when != "call":
        if report.when == "setup" and state.is_worker:
            _mark_pending(item, report)
        if report.when == "teardown":
            _carry_verdict(item, report)
        return report  # a clean setup or teardown says nothing about the check
    spec = _check_spec(item)
    if spec is None:
        return report
    result = result_for_report(
        item,
        report,
        spec=spec,
        assessed=assessed,
        raised_by_verdict=raised_by_verdict,
        state=state,
    )
    report.maintcheck = result.to_json()  # type: ignore[attr-defined]  # plain JSON for xdist
    item.stash[VERDICT] = (result.verdict.value, result.severity)
    if report.when == "teardown":
        _carry_verdict(item, report)
    return report


def _mark_pending(item: pytest.Item, report: pytest.TestReport) -> None:
    """Under xdist, what the controller records if this worker dies before the check ends."""
    spec = _check_spec(item)
    if spec is None:
        return
    state = item.config.stash[STATE]
    report.maintcheck_pending = result_for_report(  # type: ignore[attr-defined]
        item, report, spec=spec, assessed=None, raised_by_verdict=False, state=state
    ).to_json()


def _carry_verdict(item: pytest.Item, report: pytest.TestReport) -> None:
    """JUnit XML takes a testcase's properties from its teardown report: verdict and severity."""
    verdict = item.stash.get(VERDICT, None)
    if verdict is not None:
        report.user_properties.extend([("verdict", verdict[0]), ("severity", verdict[1])])


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """Degraded and waived are categories of their own, beside passed (as xfail is)."""
    result = getattr(report, "maintcheck", None)
    if not result or report.when != "call":
        return None
    if report.failed and result.get("verdict") == "degraded":  # failed by --fail-on=warning
        return "failed", "D", ("DEGRADED", {"red": True})
    if not report.passed:
        return None
    if result.get("inMaintenance") and result.get("verdict") in ("violation", "degraded"):
        return "in maintenance", "m", ("IN MAINTENANCE", {"yellow": True})
    if result.get("waived") and result.get("verdict") == "violation":
        return "waived", "w", ("WAIVED", {"yellow": True})
    if result.get("verdict") == "degraded":
        return "degraded", "D", ("DEGRADED", {"yellow": True})
    return None


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """Exit status for --maintcheck-fail-on, then the run folder once pytest-html has written."""
    state = session.config.stash[STATE]
    if not state.is_worker and state.results:
        session.exitstatus = state.exit_status(int(session.exitstatus))
    if state.owns_html:
        state.staging_dir.mkdir(parents=True, exist_ok=True)  # pytest-html writes its page next
    try:
        return (yield)
    except OSError as exc:  # pytest-html could not write its page (a full disk)
        if state.is_worker or not state.owns_html:
            raise
        state.page_not_written(exc)
        _drop_html_plugin(session.config)
        return None
    finally:
        if not state.is_worker:
            broken = session.exitstatus in (
                pytest.ExitCode.INTERRUPTED,
                pytest.ExitCode.INTERNAL_ERROR,
            )
            state.finish(session_interrupted=broken)
            if state.run_dir is not None and state.owns_html and not state.not_written:
                _point_html_at(session.config, state.run_dir / "report.html")
            if state.not_written:  # the run's evidence is incomplete: not a check's verdict
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def _drop_html_plugin(config: pytest.Config) -> None:
    """pytest-html's closing line would name a page that was not written."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "_report_path"):
            config.pluginmanager.unregister(plugin)


def _point_html_at(config: pytest.Config, final: Path) -> None:
    """pytest-html's closing line should name where its page lives after the move."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "_report_path"):
            plugin._report_path = final


@pytest.hookimpl(trylast=True)  # after pytest's own summary sections
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A section for degraded, waived and violated checks, and where the records are."""
    state = config.stash[STATE]
    if state.is_worker:
        return
    for notice in state.notices:
        terminalreporter.write_line(f"maintcheck: {notice}", yellow=True)
    if not state.results:
        return
    lines = list(state.summary_lines())
    if lines:
        terminalreporter.write_sep("=", "maintcheck findings", yellow=True)
        for line in lines:
            terminalreporter.write_line(printable(state.redact(line), 4000))
        # said here too: a terminal plugin owning the status line (pytest-sugar) counts
        # degraded checks as passed
        terminalreporter.write_line(state.tally_line())
    for what in state.not_written:
        terminalreporter.write_line(f"maintcheck: could not write {what}", red=True)
    if state.not_written and state.run_dir is None:
        terminalreporter.write_sep("-", "maintcheck records: not written", red=True)
        return
    if state.not_written:
        terminalreporter.write_sep("-", f"maintcheck records: {state.run_dir} (without that file)")
        return
    if state.run_dir is not None:
        terminalreporter.write_sep("-", f"maintcheck records: {state.run_dir}")
