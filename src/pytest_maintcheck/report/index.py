"""``reports/index.html``: every run on one page, newest first, each linking to its report."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from pytest_maintcheck.report.files import run_folders, write_atomic

_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    ".violation,.error{color:#cf222e}.degraded{color:#9a6700}.pass{color:#1a7f37}"
)
_COLUMNS = ("pass", "degraded", "violation", "error", "skipped", "waived")


def _summary(run: Path) -> dict[str, Any] | None:
    try:
        results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        log = json.loads((run / "maintenance-log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a folder that is not a finished run is not listed
    suites = sorted({c.get("suite", "") for c in results.get("checks", [])})
    return {
        "run": run.name,
        "startedAt": results.get("startedAt", ""),
        "system": results.get("system", ""),
        "environment": results.get("environment", ""),
        "suites": ", ".join(suites),
        "status": log.get("status", ""),
        "counts": results.get("counts", {}),
        "hasReport": (run / "report.html").is_file(),
    }


def write_index(report_dir: Path) -> Path:
    """Rebuild the index from the run folders themselves (they are the history)."""
    rows = []
    for run in reversed(run_folders(report_dir)):
        s = _summary(run)
        if s is None:
            continue
        name = escape(s["run"])
        link = f'<a href="{name}/report.html">{name}</a>' if s["hasReport"] else name
        counts = "".join(
            f'<td class="{c}">{int(s["counts"].get(c, 0)) or ""}</td>' for c in _COLUMNS
        )
        rows.append(
            f"<tr><td>{link}</td><td>{escape(s['startedAt'])}</td>"
            f"<td>{escape(s['system'])} {escape(s['environment'])}</td>"
            f"<td>{escape(s['suites'])}</td><td>{escape(s['status'])}</td>{counts}</tr>"
        )
    header = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Maintenance runs</title>"
        f"<style>{_STYLE}</style></head><body><h1>Maintenance runs</h1>"
        "<table><tr><th>Run</th><th>Started (UTC)</th><th>System</th><th>Suites</th>"
        f"<th>Log status</th>{header}</tr>{''.join(rows)}</table></body></html>\n"
    )
    path = report_dir / "index.html"
    write_atomic(path, page)
    return path
