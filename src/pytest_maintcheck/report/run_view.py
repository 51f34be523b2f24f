"""The reviewer's part of report.html, above pytest-html's per-check table.

Header, verdict tiles, what needs attention (violations then warnings, critical to low), open
incidents, waivers, the compliance matrix, changes since the previous run of the same system,
sections not configured. Pure data in, HTML out: every value is escaped by page.text().
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pytest_maintcheck.records import compliance_records, counts, not_configured, severity_of
from pytest_maintcheck.report import page
from pytest_maintcheck.report.change_view import change_section
from pytest_maintcheck.report.page import badge, section, table, text, verdict_badge
from pytest_maintcheck.report.series import Run, changes
from pytest_maintcheck.result import CheckResult
from pytest_maintcheck.units import format_duration

TILES = ("pass", "degraded", "violation", "error", "skipped", "waived")


@dataclass(frozen=True)
class RunView:
    run_id: str
    system: str
    environment: str
    suites: Sequence[str]
    operator: str
    started: datetime
    duration: float | None
    results: Sequence[CheckResult]
    incidents: Sequence[Mapping[str, Any]]
    previous: Run | None
    records_dir: str
    change: Mapping[str, Any] | None = None  # MaintenanceLog.change of a change run


def title(system: str, environment: str, run_id: str) -> str:
    """The page title: the environment once, even when the system's name already says it."""
    return f"Maintenance run {run_id}: {page.system_label(system, environment)}"


def sections(view: RunView) -> list[str]:
    """Every part, in the order a reviewer reads them; the per-check table follows."""
    results = [r for r in view.results if not r.not_configured]
    parts = [
        header(view),
        *([change_section(view.change)] if view.change is not None else []),
        tiles(view.results),
        needs_attention(results),
        incidents(view.incidents),
        waivers(results),
        compliance(results),
        changes_since(view.previous, results),
    ]
    absent = not_configured(view.results)
    if absent:
        parts.append(
            section(
                "not-configured",
                "Not configured",
                "<p>Nothing to check (the section is absent from the config): "
                + ", ".join(f"<code>{text(s)}</code>" for s in absent)
                + "</p>",
            )
        )
    parts.append('<h2 id="all-checks">All checks</h2>')
    return parts


def header(view: RunView) -> str:
    duration = format_duration(view.duration) if view.duration is not None else "running"
    started = view.started.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        '<section id="run-header">'
        + page.facts(
            [
                ("System", text(view.system)),
                ("Environment", text(view.environment or "-")),
                ("Suites", text(", ".join(view.suites) or "-")),
                ("Operator", text(view.operator)),
                ("Started", text(started)),
                ("Duration", text(duration)),
                ("Run id", f"<code>{text(view.run_id)}</code>"),
                ("Records", f"<code>{text(view.records_dir)}</code>"),
            ]
        )
        + "</section>"
    )


def tiles(results: Sequence[CheckResult]) -> str:
    tally = counts(results)
    cells = "".join(
        f'<div class="tile {name}" data-verdict="{name}"><b>{int(tally.get(name, 0))}</b>'
        f"{text(name)}</div>"
        for name in TILES
    )
    return section("verdicts", "Maintenance verdicts", f'<div class="tiles">{cells}</div>')


def attention_rows(
    results: Sequence[CheckResult],
) -> list[tuple[str, str, Mapping[str, Any], CheckResult]]:
    """(verdict, severity, finding, check) of every warning and violation, worst first."""
    rows: list[tuple[str, str, Mapping[str, Any], CheckResult]] = []
    for r in results:
        if r.verdict in ("pass", "skipped") and not r.findings:
            continue
        findings = r.findings or (
            {"verdict": r.verdict.value, "description": r.message, "action": ""},
        )
        for f in findings:
            verdict = str(f.get("verdict", r.verdict.value))
            if verdict not in ("violation", "degraded", "error"):
                continue
            rows.append((verdict, severity_of(f, r.severity), f, r))
    rows.sort(key=lambda x: (*page.sort_key_for_finding(x[0], x[1]), x[3].name))
    return rows


def needs_attention(results: Sequence[CheckResult]) -> str:
    rows, classes = [], []
    for verdict, severity, finding, r in attention_rows(results):
        rows.append(
            (
                verdict_badge(verdict, r.waived),
                badge(severity),
                f'<span title="{text(r.name)}">{text(r.title)}</span>',
                text(r.target or "-"),
                text(finding.get("description", "")),
                text(finding.get("action", "")),
            )
        )
        classes.append("waived" if r.waived else verdict)
    body = table(
        ("Verdict", "Severity", "Check", "Target", "What was measured, against what", "Action"),
        rows,
        row_classes=classes,
        empty="Nothing needs attention: every check passed.",
        table_id="attention-table",
    )
    return section(
        "needs-attention",
        "Needs attention",
        body,
        "Violations first, then warnings; critical to low.",
    )


def incidents(drafts: Sequence[Mapping[str, Any]]) -> str:
    open_ones = [i for i in drafts if not (i.get("timeline") or {}).get("resolved")]
    resolved = [i for i in drafts if (i.get("timeline") or {}).get("resolved")]
    blocks = [_incident(i) for i in open_ones]
    body = "".join(blocks) or '<p class="empty">No open incident.</p>'
    if resolved:
        body += "<h3>Resolved by this run</h3>" + table(
            ("Incident", "Detected", "Resolved"),
            [
                (
                    text(i.get("title") or i.get("check")),
                    text(i["timeline"].get("detected", "")),
                    text(i["timeline"].get("resolved", "")),
                )
                for i in resolved
            ],
        )
    return section("incidents", "Open incidents", body)


def _incident(incident: Mapping[str, Any]) -> str:
    timeline = incident.get("timeline") or {}
    steps = "".join(
        f'<li>{text(s.get("action", ""))} <span class="muted">owner {text(s.get("owner", ""))}'
        f", {text(s.get('status', ''))}</span></li>"
        for s in incident.get("steps", [])
        if isinstance(s, dict)
    )
    when = ", ".join(
        f"{k} {text(timeline.get(k) or '-')}" for k in ("detected", "responded", "resolved")
    )
    return (
        f'<div class="incident"><h3>{badge(incident.get("severity", ""))} '
        f"{text(incident.get('title') or incident.get('check', ''))}</h3>"
        f"<p>{text(incident.get('description', ''))}</p>"
        f'<p class="muted">type {text(incident.get("type", ""))}; {when}</p>'
        f'<ol class="steps">{steps}</ol></div>'
    )


def waivers(results: Sequence[CheckResult]) -> str:
    rows = []
    for r in results:
        w = r.waiver
        if not isinstance(w, dict):
            continue
        state = badge("expired", "violation") if w.get("expired") else badge("in force", "waived")
        rows.append(
            (
                f"<code>{text(r.name)}</code>",
                verdict_badge(r.verdict.value, r.waived),
                text(w.get("justification", "")),
                text(w.get("expires", "")),
                state,
            )
        )
    body = table(
        ("Check", "Verdict", "Justification", "Expires", "Waiver"),
        rows,
        empty="No waiver applied to this run.",
    )
    return section("waivers", "Waivers", body)


def compliance(results: Sequence[CheckResult]) -> str:
    rows = []
    for c in compliance_records(results):
        clauses = "<br>".join(text(x) for x in c["requirements"])
        evidence = "<br>".join(
            f"{verdict_badge(ch['verdict'], ch['waived'])} <code>{text(_test_name(ch))}</code>"
            for ch in c["checks"]
        )
        rows.append((text(c["category"]), badge(c["status"]), clauses, evidence))
    body = table(
        ("Category", "Status", "Clauses (HIPAA, NIST SP 800-53)", "Evidence: checks"),
        rows,
        empty="No check of a compliance category ran.",
        table_id="compliance-table",
    )
    return section("compliance", "Compliance", body)


def changes_since(previous: Run | None, results: Sequence[CheckResult]) -> str:
    if previous is None:
        body = '<p class="empty">No earlier run of this system and environment to compare.</p>'
        return section("changes", "Changes since the previous run", body)
    found = changes(previous.checks, results)
    parts = []
    for key, heading in (
        ("new", "New problems"),
        ("fixed", "Fixed"),
        ("still", "Still failing"),
    ):
        rows = [
            (
                f"<code>{text(c.name)}</code>",
                text(c.before),
                verdict_badge(c.now),
                badge(c.severity),
                text(c.summary),
            )
            for c in found[key]
        ]
        parts.append(
            f'<div id="changes-{key}"><h3>{heading} ({len(rows)})</h3>'
            + table(("Check", "Before", "Now", "Severity", "Finding"), rows, empty="none")
            + "</div>"
        )
    note = f"Compared with run {previous.run_id} ({previous.started_at:%Y-%m-%d %H:%M} UTC)."
    return section("changes", "Changes since the previous run", "".join(parts), note)


def _test_name(check: Mapping[str, Any]) -> str:
    return str(check["nodeid"]).split("::")[-1]
