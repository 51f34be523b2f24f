"""The monthly review: one self-contained HTML document for the monthly compliance audit.

Read from earlier runs only (series.RunHistory: the history store, with each run's folder for
the findings and incidents the store does not keep);
it runs no check. Compliance per category with its evidence, availability per service
against its target, incidents with time to respond and to resolve, capacity projections,
the access review sign-off list, policy review dates, dependency and certificate findings,
waivers in force.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.records import COMPLIANCE_STATUS
from pytest_maintcheck.report import series
from pytest_maintcheck.report.change_view import change_log_section
from pytest_maintcheck.report.files import FILE_MODE, write_atomic
from pytest_maintcheck.report.page import (
    badge,
    facts,
    section,
    standalone,
    table,
    text,
    verdict_badge,
)
from pytest_maintcheck.report.series import Run, RunHistory, identity, parse_time
from pytest_maintcheck.report.trends import projection_sentence
from pytest_maintcheck.units import format_duration, format_size

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_ORDER = {"compliant": 0, "warning": 1, "violation": 2}


class ReviewError(ValueError):
    """A month that is not YYYY-MM."""


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC."""
    match = _MONTH.fullmatch(month.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ReviewError(f"--month {month!r}: expected a month as YYYY-MM, e.g. 2026-11")
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def last_month(today: date) -> str:
    first = today.replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def write_review(
    report_dir: Path,
    month: str,
    *,
    history: RunHistory | None = None,
    settings: HistorySettings | None = None,
    systems: Collection[tuple[str, str]] | None = None,
    output: Path | None = None,
    waivers: Sequence[Mapping[str, Any]] = (),
    now: datetime | None = None,
    mode: int = FILE_MODE,
) -> Path:
    """Write review-YYYY-MM.html (or ``output``) and return its path. Runs come from
    ``history``, else from the history store (``settings``; None: SQLite in the report folder;
    ``systems``: only these (system, environment) pairs) and the run folders."""
    start, end = month_bounds(month)
    history = history or series.StoreHistory(
        settings or HistorySettings(), report_dir, systems=systems, details=True, mode=mode
    )
    runs = history.runs(since=start, until=end)
    from pytest_maintcheck.change_cli import change_log

    html = review_page(
        month,
        runs,
        waivers=waivers,
        now=now or datetime.now(UTC),
        changes=change_log(report_dir, month=month),
    )
    path = output or report_dir / f"review-{month}.html"
    write_atomic(path, html, mode)
    return path


def review_page(
    month: str,
    runs: Sequence[Run],
    *,
    waivers: Sequence[Mapping[str, Any]] = (),
    now: datetime,
    changes: Sequence[Mapping[str, Any]] = (),
) -> str:
    start, end = month_bounds(month)
    real = [r for r in runs if not r.seeded] or list(runs)
    systems = sorted({f"{r.system} ({r.environment})" if r.environment else r.system for r in runs})
    body = [
        facts(
            [
                ("Month", text(f"{start:%B %Y}")),
                ("Systems", text("; ".join(systems) or "none")),
                ("Runs", text(len(runs))),
                ("Generated", text(f"{now:%Y-%m-%d %H:%M} UTC")),
            ]
        )
    ]
    if not runs:
        body.append('<p class="empty">No run in this month: nothing to review.</p>')
    body += [
        compliance(real),
        availability(runs),
        incidents(real),
        capacity(runs),
        access_signoff(real),
        policies(real),
        dependencies_and_certificates(real),
        waivers_in_force(real, waivers, end),
        change_log_section(changes),
        '<section id="signoff"><h2>Sign-off</h2><p>Reviewed by: ____________________ '
        "Role: ____________________ Date: __________ Signature: ____________________</p>"
        "</section>",
    ]
    return standalone(f"Monthly maintenance review {month}", "".join(body))


def _latest(runs: Iterable[Run]) -> dict[tuple[str, str | None], tuple[Run, Mapping[str, Any]]]:
    """Each check's newest result in the month (runs oldest first)."""
    out: dict[tuple[str, str | None], tuple[Run, Mapping[str, Any]]] = {}
    for run in runs:
        for c in run.checks:
            if c.get("verdict") != "skipped":
                out[identity(c)] = (run, c)
    return out


def _status(check: Mapping[str, Any]) -> str:
    status = COMPLIANCE_STATUS.get(str(check.get("verdict")), "violation")
    return "warning" if status == "violation" and check.get("waived") else status


def compliance(runs: Sequence[Run]) -> str:
    categories: dict[str, dict[str, Any]] = {}
    for _, (run, c) in sorted(_latest(runs).items(), key=lambda x: str(x[0])):
        cat = categories.setdefault(
            str(c.get("category")), {"clauses": [], "checks": [], "status": "compliant"}
        )
        for clause in c.get("requirements") or []:
            if clause not in cat["clauses"]:
                cat["clauses"].append(clause)
        status = _status(c)
        if _ORDER[status] > _ORDER[cat["status"]]:
            cat["status"] = status
        cat["checks"].append(
            f"{verdict_badge(str(c.get('verdict')), bool(c.get('waived')))} "
            f"<code>{text(c.get('name'))}</code> <span class='muted'>{run.started_at:%Y-%m-%d}"
            "</span>"
        )
    rows = [
        (
            text(name),
            badge(cat["status"]),
            "<br>".join(text(x) for x in cat["clauses"]),
            "<br>".join(cat["checks"]),
        )
        for name, cat in sorted(categories.items())
    ]
    body = table(
        ("Category", "Status", "Clauses", "Evidence: newest result of each check this month"),
        rows,
        empty="No check of a compliance category ran this month.",
        table_id="review-compliance",
    )
    return section("compliance", "Compliance status per category", body)


def availability(runs: Sequence[Run]) -> str:
    rows = []
    for a in series.availability(runs):
        if a.target is None:
            met = badge("no target", "unknown")
        else:
            met = badge("met", "pass") if a.ratio >= a.target else badge("missed", "violation")
        rows.append(
            (
                text(a.service),
                text(f"{a.ratio:.3%}"),
                text(f"{a.target:.3%}" if a.target is not None else "-"),
                met,
                text(f"{a.up} of {a.total}"),
            )
        )
    body = table(
        ("Service", "Availability", "Target", "Met", "Health checks up"),
        rows,
        empty="No health check ran this month.",
        table_id="review-availability",
    )
    return section(
        "availability",
        "Availability per service",
        body,
        "Share of the month's health checks that found the service up (pass or warning).",
    )


def _between(start: object, end: object) -> str:
    first, last = parse_time(start or ""), parse_time(end or "")
    if first is None or last is None:
        return "-"
    return format_duration(max(0.0, (last - first).total_seconds()))


def incidents(runs: Sequence[Run]) -> str:
    seen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for run in runs:  # the newest state of each incident wins
        for i in run.incidents:
            timeline = i.get("timeline") or {}
            seen[(str(i.get("check")), str(timeline.get("detected", "")))] = i
    rows = []
    for i in sorted(seen.values(), key=lambda x: str((x.get("timeline") or {}).get("detected"))):
        t = i.get("timeline") or {}
        rows.append(
            (
                text(i.get("title") or i.get("check")),
                badge(i.get("severity", "")),
                text(i.get("type", "")),
                text(t.get("detected") or "-"),
                text(_between(t.get("detected"), t.get("responded"))),
                text(_between(t.get("detected"), t.get("resolved"))),
                badge("resolved") if t.get("resolved") else badge("open"),
            )
        )
    body = table(
        ("Incident", "Severity", "Type", "Detected", "Time to respond", "Time to resolve", "State"),
        rows,
        empty="No incident was opened this month.",
        table_id="review-incidents",
    )
    return section("incidents", "Incidents opened and resolved", body)


def capacity(runs: Sequence[Run]) -> str:
    rows = []
    for check, metric, label, formatter in (
        ("health", "usage", "storage used", lambda v: f"{v:.1%}"),
        ("database_size", "size", "database size", format_size),
    ):
        for target, points in series.metric_series(runs, check, metric).items():
            limit = series.threshold_of(runs, check, target, metric)
            projection = series.project(points, limit or (1.0 if metric == "usage" else None))
            rows.append(
                (
                    text(f"{target}: {label}"),
                    text(formatter(points[-1][1])),
                    text(projection_sentence(target, projection, formatter)),
                )
            )
    body = table(
        ("What", "Newest", "Projection"),
        rows,
        empty="No storage or database size was measured this month.",
        table_id="review-capacity",
    )
    return section("capacity", "Capacity projections", body)


def access_signoff(runs: Sequence[Run]) -> str:
    newest = [c for (key, _), (_, c) in _latest(runs).items() if key == "access_review"]
    rows = []
    for c in newest:
        for a in (c.get("details") or {}).get("accounts", []):
            if not isinstance(a, dict):
                continue
            problems = "; ".join(str(f) for f in a.get("findings") or [])
            rows.append(
                (
                    text(a.get("source")),
                    f"<code>{text(a.get('username'))}</code>",
                    text("enabled" if a.get("enabled") else "disabled"),
                    text(a.get("rosterStatus") or "-"),
                    text(", ".join(map(str, a.get("roles") or [])) or "-"),
                    text(_yes_no(a.get("mfa"))),
                    text(a.get("lastLogin") or "-"),
                    text(problems or "-"),
                    '<span class="sign">keep / change / remove</span>',
                    '<span class="sign"></span>',
                )
            )
    body = table(
        (
            "Source",
            "Account",
            "State",
            "Roster",
            "Roles",
            "MFA",
            "Last login",
            "Findings",
            "Decision",
            "Reviewer's initials",
        ),
        rows,
        empty="No access review ran this month.",
        table_id="review-access",
    )
    return section(
        "access-review",
        "Access review sign-off",
        body,
        "Every account the month's newest access review found, for a reviewer to sign.",
    )


def policies(runs: Sequence[Run]) -> str:
    rows = []
    for (key, target), (_, c) in sorted(_latest(runs).items(), key=lambda x: str(x[0])):
        if key != "policies":
            continue
        d = c.get("details") or {}
        rows.append(
            (
                text(target),
                text(d.get("lastReviewed") or "never recorded"),
                text(d.get("nextDue") or "-"),
                verdict_badge(str(c.get("verdict")), bool(c.get("waived"))),
            )
        )
    body = table(
        ("Policy", "Last reviewed", "Next review due", "Verdict"),
        rows,
        empty="No policy review ran this month.",
        table_id="review-policies",
    )
    return section("policies", "Policy review dates", body)


def dependencies_and_certificates(runs: Sequence[Run]) -> str:
    rows = []
    for (key, target), (_, c) in sorted(_latest(runs).items(), key=lambda x: str(x[0])):
        if key not in ("dependencies", "certificate"):
            continue
        found = [f for f in c.get("findings") or [] if isinstance(f, dict)]
        what = "<br>".join(text(f.get("description")) for f in found) or text(c.get("message"))
        action = "<br>".join(text(f.get("action")) for f in found) or "-"
        rows.append(
            (
                text("dependency" if key == "dependencies" else "certificate"),
                text(target),
                verdict_badge(str(c.get("verdict")), bool(c.get("waived"))),
                what,
                action,
            )
        )
    body = table(
        ("Kind", "Target", "Verdict", "Finding", "Action"),
        rows,
        empty="No dependency or certificate check ran this month.",
        table_id="review-security",
    )
    return section("security", "Dependency and certificate findings", body)


def waivers_in_force(
    runs: Sequence[Run], configured: Sequence[Mapping[str, Any]], month_end: datetime
) -> str:
    found: dict[str, Mapping[str, Any]] = {}
    for run in runs:
        for c in run.checks:
            w = c.get("waiver")
            if isinstance(w, dict):
                found[str(w.get("check"))] = w
    for w in configured:
        found.setdefault(str(w.get("check")), w)
    rows = []
    for check, w in sorted(found.items()):
        expires = str(w.get("expires", ""))
        in_force = expires >= f"{month_end - timedelta(days=1):%Y-%m-%d}"
        rows.append(
            (
                f"<code>{text(check)}</code>",
                text(w.get("justification")),
                text(expires),
                badge("in force", "waived") if in_force else badge("expired", "violation"),
            )
        )
    body = table(
        ("Check", "Justification", "Expires", "At month end"),
        rows,
        empty="No waiver was in force this month.",
        table_id="review-waivers",
    )
    return section("waivers", "Waivers in force", body)


def _yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "-"
