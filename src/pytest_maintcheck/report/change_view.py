"""The "Change" section of report.html: at the top of a run that belongs to a change.

Regressions first (with the advice to consider rolling back), then improvements, then the
facts an auditor asks for: version, config revision, baseline, rollback points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_maintcheck.report import page
from pytest_maintcheck.report.page import badge, section, table, text


def change_section(change: Mapping[str, Any]) -> str:
    version = change.get("version") or change.get("id") or "this change"
    regressions = list(change.get("regressions") or [])
    improvements = list(change.get("improvements") or [])
    baseline = change.get("baseline") or {}
    facts = page.facts(
        [
            ("Change", text(change.get("id") or "-")),
            ("Version", text(change.get("version") or "-")),
            ("Gate", badge(change.get("outcome") or "unknown", _gate_colour(change))),
            ("Config revision", f"<code>{text(change.get('configRevision'))}</code>"),
            ("Baseline", _baseline(change, baseline)),
            ("Rollback points", _points(change.get("rollbackPoints") or {})),
        ]
    )
    moved = table(
        ("", "Check", "Before", "Now", "What moved"),
        [_row(m, "regression") for m in regressions] + [_row(m, "improved") for m in improvements],
        row_classes=["violation"] * len(regressions) + [""] * len(improvements),
        empty="nothing moved against the baseline"
        if baseline
        else "no impact assessment (no baseline)",
        table_id="change-movements",
    )
    advice = (
        f"<p><b>{len(regressions)} regression(s): consider rolling back {text(version)}.</b></p>"
        if regressions
        else ""
    )
    return section(
        "change",
        f"Change {change.get('id') or ''}".strip(),
        facts + advice + moved,
        "What this deploy changed: checks that passed before and fail or degrade now, metric "
        "shifts beyond the shift factor, and what improved, against the baseline run.",
    )


def _gate_colour(change: Mapping[str, Any]) -> str:
    return "pass" if change.get("outcome") == "passed" else "violation"


def _baseline(change: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    if baseline:
        return f"<code>{text(baseline.get('runId'))}</code> ({text(baseline.get('startedAt'))})"
    problem = change.get("baselineProblem")
    return text(problem) if problem else text("not requested (--maintcheck-baseline)")


def _points(points: Mapping[str, Any]) -> str:
    if not points:
        return text("-")
    return "<br>".join(
        f"{text(db)}: {text(p.get('backup'))} <code>{text(p.get('file'))}</code> "
        f"taken {text(p.get('taken'))}"
        for db, p in sorted(points.items())
        if isinstance(p, Mapping)
    )


def _row(movement: Mapping[str, Any], label: str) -> list[str]:
    kind = "shift" if movement.get("kind") == "shift" else label
    return [
        badge(kind, "violation" if label == "regression" else "pass"),
        text(movement.get("name")),
        text(movement.get("before")),
        text(movement.get("now")),
        text(movement.get("description")),
    ]


def change_log_section(entries: Sequence[Mapping[str, Any]]) -> str:
    """The monthly review's change log: each update run, its gate and its regressions."""
    rows = [
        [
            text(e.get("at")),
            text(e.get("change") or "-"),
            text(e.get("version") or "-"),
            text(e.get("by")),
            badge(
                e.get("outcome") or "unknown",
                "pass" if e.get("outcome") == "passed" else "violation",
            ),
            "<br>".join(text(r) for r in e.get("regressions") or []) or text("none"),
        ]
        for e in entries
    ]
    return section(
        "change-log",
        "Change log",
        table(
            ("When", "Change", "Version", "By", "Gate", "Regressions"),
            rows,
            empty="no update run this month",
            table_id="change-log-table",
        ),
        "Runs given --maintcheck-change or --maintcheck-type update (maintcheck changes).",
    )
