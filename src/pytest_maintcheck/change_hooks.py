"""pytest hooks for a run that belongs to a change: the rollback gate and the impact summary.

Registered by the plugin at configure time; the judging lives in ``change.py`` and the
run's change in ``change_run.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_maintcheck.catalogue import SUITES
from pytest_maintcheck.change import config_revision, parse_request
from pytest_maintcheck.change_run import ChangeRun, RollbackEvidence, check_named_baseline
from pytest_maintcheck.redact import printable
from pytest_maintcheck.run import RunState

ROLLBACK_CHECK = "rollback_point"


def change_run_for(state: RunState, option: Callable[[str], Any]) -> ChangeRun | None:
    """The run's change from its options (None for a routine run); bad options: UsageError."""
    try:
        request = parse_request(
            option("maintcheck_change"),
            option("maintcheck_version"),
            option("maintcheck_baseline"),
            state.maintenance_type,
        )
    except ValueError as exc:
        raise pytest.UsageError(f"maintcheck: {exc}") from None
    if not request.belongs_to_change and state.maintenance_type != "update":
        return None
    assert state.config is not None
    if request.baseline not in (None, "auto") and not state.is_worker and state.records:
        problem = check_named_baseline(state.config, state.report_dir, str(request.baseline))
        if problem:
            raise pytest.UsageError(f"maintcheck: {printable(problem, 400)}")
    revision = config_revision(state.config.path)
    return ChangeRun(request, state.maintenance_type, revision)


class ChangeHooks:
    """Selects the rollback gate for change runs only, and says what the change moved."""

    def __init__(self, state: RunState, change: ChangeRun | None) -> None:
        self.state = state
        self.change = change

    @pytest.hookimpl(tryfirst=True)  # before -m deselects: the gate runs in every suite
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """A routine run never sees the rollback gate; a change run has it in every suite,
        after this run's restore tests (so a restore run now counts)."""
        gates = [i for i in items if _is_rollback_gate(i)]
        if not gates:
            return
        if self.change is None:
            items[:] = [i for i in items if not _is_rollback_gate(i)]
            config.hook.pytest_deselected(items=gates)
            return
        for item in gates:
            for suite in SUITES:
                item.add_marker(suite)
        items[:] = [i for i in items if not _is_rollback_gate(i)] + gates

    @pytest.fixture
    def rollback_evidence(self) -> RollbackEvidence:
        """This run's restore tests (on the controller) and the history store's."""
        assert self.state.config is not None
        return RollbackEvidence(
            self.state.config, self.state.report_dir, self.state.results.values()
        )

    @pytest.hookimpl(tryfirst=True)  # before pytest-html writes its page and the records
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Assess the change once every check has reported."""
        if self.change is None or self.state.is_worker or not self.state.results:
            return
        assert self.state.config is not None
        self.change.assess(
            self.state.config,
            self.state.report_dir,
            list(self.state.results.values()),
            started=self.state.started_at,
            fail_on=self.state.fail_on,
        )

    @pytest.hookimpl  # before the plugin's findings section (trylast): regressions come first
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.change is None or self.state.is_worker or not self.change.assessed:
            return
        regressions = bool(self.change.impact and self.change.impact.regressions)
        terminalreporter.write_sep(
            "=", self.change.heading(), red=regressions, green=not regressions
        )
        for line in self.change.summary_lines():
            terminalreporter.write_line(printable(self.state.redact(line), 4000))


def _is_rollback_gate(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("maintcheck")
    return marker is not None and bool(marker.args) and marker.args[0] == ROLLBACK_CHECK
