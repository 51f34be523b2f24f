"""pytest-html hooks: the reviewer's sections above pytest-html's per-check table.

pytest-html puts these strings into the page unescaped, so everything that came from a config
or a probed system is escaped here (report.page.text).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

import pytest

from pytest_maintcheck.report import page, run_view

if TYPE_CHECKING:
    from pytest_maintcheck.result import CheckResult
    from pytest_maintcheck.run import RunState
_COLOURS = {
    "pass": "#1a7f37",
    "degraded": "#9a6700",
    "violation": "#cf222e",
    "error": "#cf222e",
    "skipped": "#57606a",
}


_EMPTY_CELLS = ('<td class="col-verdict"></td>', '<td class="col-severity"></td>')
_HEADER_CELLS = (
    '<th class="sortable" data-column-type="verdict">Verdict</th>',
    "<th>Severity</th>",
)


def _teardown_output(report: Any) -> bool:
    return report.when == "teardown" and any("teardown" in head for head, _ in report.sections)


class HtmlHooks:
    """Registered only when pytest-html is loaded (its hooks exist only then)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_html_report_title(self, report: Any) -> None:
        config = self.state.config
        if config is not None:
            report.title = run_view.title(config.system, config.environment, self.state.run_id)

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[1:1] = _HEADER_CELLS

    def withdraw_columns(self, report_data: Any) -> None:
        """The run selected no check: the project's own page keeps only its own columns.

        pytest-html asks for the header when the session starts, before anything is collected.
        """
        header = report_data.table_header
        report_data.table_header = [c for c in header if c not in _HEADER_CELLS]

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        if report.passed and report.when != "call" and not _teardown_output(report):
            # pytest-html shows no row for a passing setup or teardown (it only adds a teardown's
            # captured output to the call's row): without cells it skips building one
            cells.clear()
            return
        result = getattr(report, "maintcheck", None)
        if result and result.get("notConfigured"):
            cells.clear()  # its section is named once in the summary, not once per check
            return
        if not result:  # a passing teardown with output, or a test that is not a check
            cells[1:1] = _EMPTY_CELLS
            return
        verdict = str(result.get("verdict", ""))
        shown = verdict + (" (waived)" if result.get("waived") else "")
        colour = _COLOURS.get(verdict, "#57606a")
        cells.insert(
            1,
            f'<td class="col-verdict {escape(verdict)}" style="color:{colour};font-weight:bold">'
            f"{escape(shown)}</td>",
        )
        cells.insert(2, f'<td class="col-severity">{escape(str(result.get("severity", "")))}</td>')

    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        """A skipped check says why in a sentence; xdist's worker line is not a finding."""
        if report.skipped:
            reason = _skip_reason(report)
            data[:] = [escape(f"Skipped: {reason}") if reason else "Skipped."]
            return
        data[:] = [_WORKER_LINE.sub("", entry) for entry in data]

    @pytest.hookimpl(tryfirst=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: Any
    ) -> None:
        results = sorted(self.state.results.values(), key=lambda r: r.nodeid)
        if not results:
            return
        _environment_only_as_asked(session.config)
        style = f"<style>{page.STYLE}{page.PYTEST_HTML_STYLE}</style>"
        body = "".join(run_view.sections(self._view(results)))
        prefix.append(f'{style}<div class="mc">{body}</div>')

    def _view(self, results: list[CheckResult]) -> run_view.RunView:
        from pytest_maintcheck.records import incident_records, iso, performed_by
        from pytest_maintcheck.report.series import FolderHistory, previous_run
        from pytest_maintcheck.run import _previous_incidents

        state = self.state
        config = state.config
        now = datetime.now(UTC)
        system = config.system if config else ""
        environment = config.environment if config else ""
        drafts: list[dict[str, Any]] = []
        if config is not None:
            earlier, _ = _previous_incidents(state.report_dir, system, environment)
            drafts = incident_records(config, results, iso(now), earlier)
        return run_view.RunView(
            run_id=state.run_id,
            system=system,
            environment=environment,
            suites=sorted({r.suite for r in results}),
            operator=performed_by(),
            started=state.started_at,
            duration=(now - state.started_at).total_seconds(),
            results=results,
            incidents=drafts,
            previous=previous_run(
                FolderHistory(state.report_dir), system, environment, state.started_at
            ),
            records_dir=str(state.planned_run_dir),
            change=state.change.record() if state.change is not None else None,
        )


# "[gw1] linux -- Python 3.11.2 /usr/bin/python3": pytest's line naming an xdist worker
_WORKER_LINE = re.compile(r"^\[gw\d+\] .* -- Python [^\n]*\n?", re.MULTILINE)


def _environment_only_as_asked(config: Any) -> None:
    """pytest-html's environment box shows what pytest-metadata gathered (Python, platform,
    plugins): kept only for keys the operator gave (--metadata, --metadata-from-json[-file]).

    Set on pytest-html's page data, which it renders after this hook: the box is empty (and
    hidden by our style) otherwise.
    """
    asked = {str(k) for k, _ in config.getoption("metadata", None) or []}
    if config.getoption("metadata_from_json_file", None) or (
        config.getoption("metadata_from_json", None) or "{}"
    ).strip() not in ("", "{}"):
        return  # the operator asked for an environment box of their own: leave it whole
    for plugin in config.pluginmanager.get_plugins():
        report = getattr(plugin, "_report", None)
        if type(plugin).__module__.startswith("pytest_html.") and report is not None:
            shown = report.data.get("environment") or {}
            report.set_data("environment", {k: v for k, v in shown.items() if k in asked})


def _skip_reason(report: Any) -> str:
    """The reason of a skip, without pytest's (file, line, 'Skipped: ...') tuple around it."""
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    if not reason and longrepr is not None:
        reason = str(longrepr)
    reason = reason.removeprefix("Skipped: ").strip()
    return reason[:1].upper() + reason[1:] if reason else ""
