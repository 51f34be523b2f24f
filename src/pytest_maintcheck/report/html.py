"""pytest-html hooks: a verdict column and a summary of verdicts and findings.

pytest-html puts these strings into the page unescaped, so everything that came from a config
or a probed system is escaped here.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import pytest

from pytest_maintcheck.records import counts, not_configured, severity_of

if TYPE_CHECKING:
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
            where = f" ({config.environment})" if config.environment else ""
            report.title = f"Maintenance run {self.state.run_id}: {config.system}{where}"

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
            f'<td class="col-verdict" style="color:{colour};font-weight:bold">{escape(shown)}</td>',
        )
        cells.insert(2, f'<td class="col-severity">{escape(str(result.get("severity", "")))}</td>')

    @pytest.hookimpl(tryfirst=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: Any
    ) -> None:
        results = sorted(self.state.results.values(), key=lambda r: r["nodeid"])
        if not results:
            return
        tally = counts(results)
        parts = [
            f'<span style="color:{_COLOURS.get(k, "#57606a")}">{v} {escape(k)}</span>'
            for k, v in tally.items()
            if v
        ]
        prefix.append(
            "<h2>Maintenance verdicts</h2><p>" + ", ".join(parts) + "</p>"
            f"<p>Records: <code>{escape(str(self.state.planned_run_dir))}</code></p>"
        )
        absent = not_configured(results)
        if absent:
            prefix.append(
                "<h2>Not configured</h2><p>Nothing to check (the section is absent from the "
                "config): " + ", ".join(f"<code>{escape(s)}</code>" for s in absent) + "</p>"
            )
        rows = []
        for r in results:
            for f in r["findings"]:
                waived = " (waived)" if r.get("waived") else ""
                rows.append(
                    "<tr>"
                    f"<td>{escape(f['verdict'] + waived)}</td>"
                    f"<td>{escape(severity_of(f, r))}</td>"
                    f"<td>{escape(r['name'])}</td><td>{escape(f['description'])}</td>"
                    f"<td>{escape(f['action'])}</td></tr>"
                )
        if rows:
            prefix.append(
                "<h2>Findings</h2><table><tr><th>Verdict</th><th>Severity</th><th>Check</th>"
                "<th>Finding</th><th>Action</th></tr>" + "".join(rows) + "</table>"
            )
        prefix.extend(self._compliance(results))

    def _compliance(self, results: list[dict[str, Any]]) -> list[str]:
        from pytest_maintcheck.records import compliance_records

        rows = []
        for c in compliance_records(results):
            clauses = "<br>".join(escape(x) for x in c["requirements"])
            rows.append(
                f"<tr><td>{escape(c['category'])}</td><td>{escape(c['status'])}</td>"
                f"<td>{len(c['findings'])}</td><td>{clauses}</td></tr>"
            )
        if not rows:
            return []
        return [
            "<h2>Compliance</h2><table><tr><th>Category</th><th>Status</th><th>Findings</th>"
            "<th>Requirements evidenced</th></tr>" + "".join(rows) + "</table>"
        ]
