"""Trend charts as inline SVG, drawn by pygal (pure Python, SVG out, no browser script needed).

pygal builds the SVG as XML, so every label is escaped by it; labels also go through
printable() first (a control code is not valid XML). Its tooltips script is not loaded
(``js=[]``): the pages make no network request and work opened from disk.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pytest_maintcheck.redact import printable
from pytest_maintcheck.report.page import text
from pytest_maintcheck.report.series import Point, Projection, Run, VersionChange

VERDICT_COLOURS = {
    "pass": "#1a7f37",
    "degraded": "#bf8700",
    "violation": "#cf222e",
    "error": "#82071e",
    "skipped": "#8c959f",
}


def _pygal() -> Any:
    """pygal, imported on first use, leaving the import system as it found it.

    Importing pygal imports the importlib_metadata backport, which puts its own finder on
    sys.meta_path and removes the standard library's ``PathFinder.find_distributions``; pygal
    adds a finder too. A host that unloads modules after a run (pytest's in-process
    pytester) would be left unable to find any package's metadata: all three are undone.
    """
    from importlib.machinery import PathFinder

    before = list(sys.meta_path)
    stdlib_lookup = PathFinder.__dict__.get("find_distributions")
    import pygal  # type: ignore[import-untyped]
    import pygal.style  # type: ignore[import-untyped]

    sys.meta_path[:] = [f for f in sys.meta_path if f in before]
    if stdlib_lookup is not None and "find_distributions" not in PathFinder.__dict__:
        setattr(PathFinder, "find_distributions", stdlib_lookup)  # noqa: B010
    return pygal


def _style(**changes: Any) -> Any:
    pygal = _pygal()
    base = {
        "background": "#ffffff",
        "plot_background": "#ffffff",
        "foreground": "#1f2328",
        "foreground_strong": "#1f2328",
        "foreground_subtle": "#57606a",
        "font_family": "system-ui, Helvetica, Arial, sans-serif",
        "colors": ("#0969da", "#8250df", "#1a7f37", "#bf3989", "#9a6700", "#cf222e", "#1b7c83"),
        "title_font_size": 16,
        "legend_font_size": 12,
        "label_font_size": 11,
        "major_label_font_size": 11,
    }
    return pygal.style.Style(**{**base, **changes})


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _options(title: str, **extra: object) -> dict[str, object]:
    return {
        "title": printable(title, 120),
        "style": _style(),
        "js": [],  # no tooltip script from a CDN: the page works offline
        "disable_xml_declaration": True,
        "width": 860,
        "height": 330,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "truncate_legend": 40,
        "show_dots": True,
        "dots_size": 2.5,
        "x_label_rotation": 0,
        "no_data_text": "no data yet",
        **extra,
    }


def _svg(chart: Any) -> str:
    return _COMMENT.sub("", chart.render(is_unicode=True))


def figure(kind: str, svg: str, caption: str = "") -> str:
    """A chart with its caption (escaped here); ``kind`` names it for tests and styles."""
    note = f"<figcaption class='muted'>{text(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart" data-chart="{text(kind)}">{svg}{note}</figure>'


def _day(moment: datetime) -> str:
    return moment.strftime("%d %b")


def time_lines(
    title: str,
    series: Mapping[str, Sequence[Point]],
    formatter: Callable[[float], str],
    *,
    y_range: tuple[float, float] | None = None,
    extra: Sequence[tuple[str, Sequence[Point], bool]] = (),
) -> str:
    """Lines over time, one per series; ``extra`` adds (label, points, dashed) lines."""
    chart = _pygal().DateTimeLine(
        **_options(
            title,
            x_value_formatter=_day,
            value_formatter=formatter,
            **({"range": y_range} if y_range else {}),
        )
    )
    for name, points in series.items():
        chart.add(printable(name, 60), list(points))
    for label, points, dashed in extra:
        style = {"width": 2, "dasharray": "6, 4"} if dashed else {"width": 2}
        chart.add(printable(label, 60), list(points), stroke_style=style, show_dots=False)
    return _svg(chart)


def availability(daily: Mapping[str, Sequence[Point]], target: float | None) -> str:
    lines: list[tuple[str, Sequence[Point], bool]] = []
    if target is not None and daily:
        moments = [t for points in daily.values() for t, _ in points]
        lines.append(
            (f"target {target:.2%}", [(min(moments), target), (max(moments), target)], True)
        )
    return time_lines(
        "Availability per service (share of health checks up, per day)",
        daily,
        lambda v: f"{v:.1%}",
        y_range=(0.0, 1.0),
        extra=lines,
    )


MARKED_CHANGES = 6  # version changes drawn on the p95 chart (each is a legend entry)


def p95(series: Mapping[str, Sequence[Point]], changes: Sequence[VersionChange] = ()) -> str:
    """p95 per service; each version change a dashed vertical line labelled with it."""
    values = [v for points in series.values() for _, v in points]
    markers: list[tuple[str, Sequence[Point], bool]] = []
    if values:
        low, high = min(values), max(values)
        for c in changes[-MARKED_CHANGES:]:
            label = f"{c.target} -> {c.now}"
            markers.append((label, [(c.at, low), (c.at, high)], True))
    return time_lines(
        "p95 response time per service (ms)", series, lambda v: f"{v:.0f} ms", extra=markers
    )


def growth(
    title: str,
    name: str,
    points: Sequence[Point],
    projection: Projection | None,
    formatter: Callable[[float], str],
    horizon_days: int = 30,
) -> str:
    """Measured values, the fitted line projected ahead, and the capacity line."""
    extra: list[tuple[str, Sequence[Point], bool]] = []
    if projection is not None and points:
        end = projection.last[0] + timedelta(days=horizon_days)
        if projection.reaches_at is not None:
            end = min(end, max(projection.reaches_at, projection.last[0] + timedelta(days=1)))
        extra.append(("projection", [projection.last, (end, projection.at(end))], True))
        top = max(max(v for _, v in points), projection.at(end))
        if projection.capacity is not None and projection.capacity <= 3 * top:
            # a capacity far above the data would flatten it: the caption says it instead
            start = points[0][0]
            level = projection.capacity
            extra.append((f"capacity {formatter(level)}", [(start, level), (end, level)], False))
    return time_lines(title, {name: points}, formatter, extra=extra)


def verdict_counts(runs: Sequence[Run]) -> str:
    chart = _pygal().StackedBar(
        **_options(
            "Verdicts per run",
            x_label_rotation=30,
            show_minor_x_labels=False,
            x_labels_major_every=max(1, len(runs) // 12),
            style=_style(colors=tuple(VERDICT_COLOURS.values())),
        )
    )
    chart.x_labels = [r.started_at.strftime("%d %b %H:%M") for r in runs]
    for verdict in VERDICT_COLOURS:
        chart.add(verdict, [int(r.counts.get(verdict, 0)) for r in runs])
    return _svg(chart)
