"""``reports/index.html``: every run per system and environment, with filters and trend charts.

The runs table lists this folder's run folders; the charts draw the runs of the last WINDOW
read through series.RunHistory (write_index gives the history store: every runner's runs and
the demo's seeded weeks, with the run folders only for runs the store lacks). Charts:
availability per service, p95 per service, storage and database growth with the projection
and the capacity line, verdict counts per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_maintcheck.report import charts, series
from pytest_maintcheck.report.page import standalone, system_label, table, text
from pytest_maintcheck.report.series import FolderHistory, Run, RunHistory
from pytest_maintcheck.units import format_size

WINDOW = timedelta(days=30)
COLUMNS = ("pass", "degraded", "violation", "error", "skipped", "waived")

# the filters: show the groups of the chosen system and environment (values compared as text)
_FILTER_SCRIPT = """
(function(){
  var sys=document.getElementById('filter-system');
  var env=document.getElementById('filter-environment');
  function apply(){
    document.querySelectorAll('section.group').forEach(function(g){
      g.hidden=!((!sys.value||g.dataset.system===sys.value)&&
                 (!env.value||g.dataset.environment===env.value));
    });
  }
  sys.addEventListener('change',apply);env.addEventListener('change',apply);apply();
})();
"""


def index_page(
    entries: Sequence[dict[str, Any]],
    report_dir: Path,
    now: datetime,
    history: RunHistory | None = None,
) -> str:
    history = history or FolderHistory(report_dir)
    recent = history.runs(since=now - WINDOW)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        key = (str(e.get("system", "")), str(e.get("environment", "")))
        groups.setdefault(key, []).append(e)
    body = [_filters(sorted(groups))]
    problem = getattr(history, "problem", None)
    if problem:
        body.append(f'<p class="note">Charts from this folder\'s runs only: {text(problem)}</p>')
    for key in sorted(groups):
        runs = [r for r in recent if (r.system, r.environment) == key]
        body.append(_group(key, groups[key], runs))
    if not groups:
        body.append('<p class="empty">No finished run yet.</p>')
    return standalone("Maintenance runs", "".join(body), _FILTER_SCRIPT)


def _filters(keys: Sequence[tuple[str, str]]) -> str:
    def select(ident: str, label: str, values: set[str]) -> str:
        options = "".join(f'<option value="{text(v)}">{text(v)}</option>' for v in sorted(values))
        return (
            f'<label>{label} <select id="{ident}"><option value="">all</option>{options}'
            "</select></label>"
        )

    return (
        '<div class="filters noprint">'
        + select("filter-system", "System", {s for s, _ in keys})
        + select("filter-environment", "Environment", {e for _, e in keys})
        + "</div>"
    )


def _group(key: tuple[str, str], entries: list[dict[str, Any]], runs: list[Run]) -> str:
    system, environment = key
    heading = text(system_label(system, environment))
    return (
        f'<section class="group" data-system="{text(system)}" '
        f'data-environment="{text(environment)}"><h2>{heading}</h2>'
        + trend_charts(runs)
        + "<h3>Runs</h3>"
        + runs_table(entries)
        + "</section>"
    )


def runs_table(entries: list[dict[str, Any]]) -> str:
    rows = []
    for s in sorted(entries, key=lambda e: str(e["runId"]), reverse=True):
        name = text(s["runId"])
        href = quote(str(s["runId"]), safe="")
        link = f'<a href="{href}/report.html">{name}</a>' if s.get("hasReport") else name
        if s.get("seeded"):
            link += ' <span class="muted">(demo history)</span>'
        tally = s.get("counts", {})
        counts = [f'<span class="{c}">{int(tally.get(c, 0)) or ""}</span>' for c in COLUMNS]
        rows.append(
            (
                link,
                text(s.get("startedAt", "")),
                text(", ".join(map(str, s.get("suites", [])))),
                text(s.get("status", "")),
                *counts,
            )
        )
    return table(
        ("Run", "Started (UTC)", "Suites", "Log status", *COLUMNS), rows, table_id="runs-table"
    )


def trend_charts(runs: list[Run]) -> str:
    """The charts for one system and environment; a note when there is nothing to draw."""
    if len(runs) < 2:
        return '<p class="empty">Trends need two runs in the last 30 days.</p>'
    figures = []
    daily = series.daily_availability(runs)
    if daily:
        targets = [a.target for a in series.availability(runs) if a.target is not None]
        figures.append(
            charts.figure(
                "availability",
                charts.availability(daily, min(targets) if targets else None),
                _availability_caption(runs),
            )
        )
    p95 = series.metric_series(runs, "health", "responseTime")
    if p95:
        changes = series.version_changes(runs, "health")
        figures.append(charts.figure("p95", charts.p95(p95, changes), _versions_caption(changes)))
    for target, points in series.metric_series(runs, "health", "usage").items():
        capacity = series.threshold_of(runs, "health", target, "usage") or 1.0
        figures.append(_growth("storage", f"Storage used: {target}", target, points, capacity,
                               lambda v: f"{v:.1%}"))  # fmt: skip
    for target, points in series.metric_series(runs, "database_size", "size").items():
        limit = series.threshold_of(runs, "database_size", target, "size")
        figures.append(_growth("database", f"Database size: {target}", target, points, limit,
                               format_size))  # fmt: skip
    figures.append(charts.figure("verdicts", charts.verdict_counts(runs)))
    return '<div class="charts">' + "".join(figures) + "</div>"


def _versions_caption(changes: Sequence[series.VersionChange]) -> str:
    """The version changes the p95 chart marks, in words (the chart shows the newest few)."""
    if not changes:
        return ""
    said = [f"{c.target} {c.before} -> {c.now} on {c.at:%Y-%m-%d %H:%M}" for c in changes]
    return "Version changes (dashed lines): " + "; ".join(said)


def _availability_caption(runs: list[Run]) -> str:
    parts = []
    for a in series.availability(runs):
        goal = f" (target {a.target:.2%})" if a.target is not None else ""
        parts.append(f"{a.service} {a.ratio:.2%}{goal}")
    return "Over the last 30 days: " + "; ".join(parts)


def _growth(
    kind: str,
    title: str,
    name: str,
    points: list[series.Point],
    capacity: float | None,
    formatter: Any,
) -> str:
    projection = series.project(points, capacity)
    svg = charts.growth(title, name, points, projection, formatter)
    return charts.figure(kind, svg, projection_sentence(name, projection, formatter))


def projection_sentence(name: str, projection: series.Projection | None, formatter: Any) -> str:
    if projection is None:
        return f"{name}: too few measurements to project."
    rate = (
        f"{name} grows {formatter(abs(projection.per_day))} a day"
        if projection.per_day > 0
        else (f"{name} is not growing")
    )
    if projection.capacity is None:
        return f"{rate}; no capacity limit is configured."
    if projection.reaches_at is None or projection.reaches_at.year > projection.last[0].year + 10:
        return (
            f"{rate}; it does not reach capacity ({formatter(projection.capacity)}) at this rate."
        )
    return (
        f"{rate}; at this rate it reaches capacity ({formatter(projection.capacity)}) "
        f"on {projection.reaches_at:%Y-%m-%d}."
    )
