"""pytest hooks only: options, markers, target parametrization, verdicts, records at the end.

Everything a hook needs lives in ``config.stash[STATE]``; measuring, judging and writing
files are done by the library modules this one calls.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_maintcheck.catalogue import SUITES, CheckSpec, spec_for
from pytest_maintcheck.config import Config, ConfigError, HealthCheck
from pytest_maintcheck.redact import RedactingFilter, printable
from pytest_maintcheck.run import RunState, result_for_report
from pytest_maintcheck.targets import TARGETS
from pytest_maintcheck.verdict import Assessment, Verdict

STATE = pytest.StashKey[RunState]()
ASSESSMENT = pytest.StashKey[Assessment]()
RAISED = pytest.StashKey[bool]()
SPEC = pytest.StashKey[CheckSpec | None]()
LOG_FILTER = pytest.StashKey[logging.Filter]()

OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("config", "maintenance config file (default: maintcheck.yaml in the rootdir)", {}),
    ("report-dir", "where run folders go (default: reports)", {}),
    (
        "fail-on",
        "which outcome makes the exit status non-zero (default: violation)",
        {"choices": ("violation", "warning")},
    ),
    (
        "type",
        "MaintenanceLog.type (default: routine)",
        {"choices": ("routine", "emergency", "update")},
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


# ---------------------------------------------------------------------------- configure


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the maintenance config once, before any check runs; a bad config is a usage error."""
    for suite in SUITES:
        config.addinivalue_line("markers", f"{suite}: a {suite} maintenance check")
    config.addinivalue_line(
        "markers", "maintcheck(key): the catalogue entry of a maintenance check"
    )
    try:
        state = RunState.from_options(
            rootdir=Path(config.rootpath),
            option=lambda name: _option(config, name),
            is_worker=hasattr(config, "workerinput"),
        )
    except ValueError as exc:
        raise pytest.UsageError(f"maintcheck: --maintcheck-file-mode: {exc}") from None
    config.stash[STATE] = state
    if state.config_path is not None:
        try:
            state.load()
        except ConfigError as exc:
            raise pytest.UsageError(f"maintcheck config error: {exc}") from None
        if not state.is_worker and not config.getoption("htmlpath", None):
            # pytest-html writes into the run's staging folder; we move it into place at the end
            config.option.htmlpath = str(state.staging_dir / "report.html")
            config.option.self_contained_html = True
            state.owns_html = True
    config.pluginmanager.register(ResultCollector(state), "maintcheck-results")
    config.pluginmanager.register(AssessmentFixture(), "maintcheck-assessment")
    if config.pluginmanager.hasplugin("html"):
        from pytest_maintcheck.report.html import HtmlHooks

        config.pluginmanager.register(HtmlHooks(state), "maintcheck-html")


class ResultCollector:
    """Gathers results where records are written: the controller under xdist."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A report made for a crashed xdist worker has no result: it is read with a default."""
        result = getattr(report, "maintcheck", None)
        if isinstance(result, dict):
            self.state.add_result(result)
        elif str(report.when) == "???" and report.failed:  # xdist's report for a crashed worker
            self.state.crashed.append(report.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Log records are redacted before pytest shows, captures or writes them (live logging,
    captured logs in reports and JUnit, --log-file): httpx logs every URL it requests."""
    state = session.config.stash[STATE]
    redacting = RedactingFilter(lambda text: state.redact(text))
    logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    for name in ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler"):
        handler = getattr(logging_plugin, name, None)
        if isinstance(handler, logging.Handler):
            handler.addFilter(redacting)
    logging.getLogger("httpx").addFilter(redacting)  # for handlers that are not pytest's
    session.config.stash[LOG_FILTER] = redacting


@pytest.hookimpl
def pytest_unconfigure(config: pytest.Config) -> None:
    redacting = config.stash.get(LOG_FILTER, None)
    if redacting is not None:
        logging.getLogger("httpx").removeFilter(redacting)


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, None)
    if value is None:
        value = config.getini(name)
    return value


# ---------------------------------------------------------------------------- collection


@pytest.hookimpl  # parametrizes only the target fixtures, whoever else runs
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A check asking for a target fixture runs once per configured target, id = its name."""
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
                [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="not-configured")],
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
        spec = spec_for(marker.args[0])
        if item.get_closest_marker(spec.suite) is None:
            item.add_marker(suite_marks[spec.suite])
    if state.config is None and any(i.get_closest_marker("maintcheck") for i in items):
        raise pytest.UsageError(
            f"maintcheck: no config found; create {state.default_config_path} "
            "or pass --maintcheck-config PATH"
        )


@pytest.hookimpl(trylast=True)  # after deselection: counts what will really run
def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that selected no maintenance check stays silent: no report folder, no HTML."""
    state = session.config.stash[STATE]
    state.selected = sum(1 for i in session.items if _check_spec(i) is not None)
    if (
        state.owns_html
        and not state.selected
        and not state.is_worker
        and not _xdist_controller(session.config)
    ):
        for plugin in session.config.pluginmanager.get_plugins():
            if type(plugin).__module__.startswith("pytest_html.") and hasattr(
                plugin, "_report_path"
            ):
                session.config.pluginmanager.unregister(plugin)
        state.discard_staging()


def _check_spec(item: pytest.Item) -> CheckSpec | None:
    """The catalogue entry of a maintenance check (None for other tests), looked up once.

    Several hooks of every phase need it and a marker lookup walks the node chain; first
    called when collection finished, once every plugin has added its markers.
    """
    if SPEC not in item.stash:
        marker = item.get_closest_marker("maintcheck")
        item.stash[SPEC] = spec_for(marker.args[0]) if marker is not None else None
    return item.stash[SPEC]


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
def health_fleet(request: pytest.FixtureRequest, maintcheck_config: Config) -> Any:
    """Every selected service (daily health or weekly load balance) probed at once, concurrently."""
    from pytest_maintcheck.probes.health import probe_fleet_sync

    selected: dict[str, HealthCheck] = {}
    for item in request.session.items:
        params = getattr(item, "callspec", None)
        for target in params.params.values() if params else ():
            if isinstance(target, HealthCheck):
                selected[target.service] = target
    return probe_fleet_sync(maintcheck_config, list(selected.values()))


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


# ---------------------------------------------------------------------------- running


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """After the check body: apply its waiver, and fail it with its message on a violation."""
    result = yield
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
    if assessed.verdict is Verdict.VIOLATION and not waived:
        pyfuncitem.stash[RAISED] = True
        pytest.fail(state.redact(assessed.message()), pytrace=False)
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
        return report  # a clean setup or teardown says nothing about the check
    spec = _check_spec(item)
    if spec is None:
        return report
    report.maintcheck = result_for_report(  # type: ignore[attr-defined]
        item,
        report,
        spec=spec,
        assessed=assessed,
        raised_by_verdict=raised_by_verdict,
        state=state,
    )
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """Degraded and waived are categories of their own, beside passed (as xfail is)."""
    result = getattr(report, "maintcheck", None)
    if not result or report.when != "call" or not report.passed:
        return None
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
    try:
        return (yield)
    finally:
        if not state.is_worker:
            broken = session.exitstatus in (
                pytest.ExitCode.INTERRUPTED,
                pytest.ExitCode.INTERNAL_ERROR,
            )
            state.finish(session_interrupted=broken)
            if state.run_dir is not None and state.owns_html:
                _point_html_at(session.config, state.run_dir / "report.html")


def _point_html_at(config: pytest.Config, final: Path) -> None:
    """pytest-html's closing line should name where its page lives after the move."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "_report_path"):
            plugin._report_path = final


@pytest.hookimpl(trylast=True)  # after pytest's own summary sections
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A section for degraded, waived and violated checks, and where the records are."""
    state = config.stash[STATE]
    if state.is_worker or not state.results:
        return
    lines = list(state.summary_lines())
    if lines:
        terminalreporter.write_sep("=", "maintcheck findings", yellow=True)
        for line in lines:
            terminalreporter.write_line(line)
    terminalreporter.write_sep("-", f"maintcheck records: {state.planned_run_dir}")
