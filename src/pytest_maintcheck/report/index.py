"""The history of runs and ``reports/index.html``: every run on one page, newest first.

``reports/history.jsonl`` holds one summary line per finished run, appended after the run
folder is in place; the index is rebuilt from it, so its cost does not grow with the size of
earlier runs. Lines that do not parse (a crash mid-append) are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
from html import escape
from pathlib import Path
from typing import Any

from pytest_maintcheck.report.files import FILE_MODE, run_folders, write_atomic

HISTORY = "history.jsonl"
_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    ".violation,.error{color:#cf222e}.degraded{color:#9a6700}.pass{color:#1a7f37}"
)
_COLUMNS = ("pass", "degraded", "violation", "error", "skipped", "waived")


def summary(run: Path, log: dict[str, Any]) -> dict[str, Any]:
    """One history line, from a run's MaintenanceLog."""
    return {
        "runId": run.name,
        "startedAt": log.get("performed", {}).get("at", ""),
        "duration": log.get("performed", {}).get("duration"),
        "system": log.get("system", ""),
        "environment": log.get("environment", ""),
        "suites": log.get("suites", []),
        "status": log.get("status", ""),
        "counts": log.get("counts", {}),
        "hasReport": (run / "report.html").is_file(),
    }


def record_history(
    report_dir: Path, run: Path, records: dict[str, Any], mode: int = FILE_MODE
) -> None:
    """Append this run's line; a history that does not exist yet is seeded from the folders."""
    path = report_dir / HISTORY
    if not path.exists():
        earlier = [_read_log(folder) for folder in run_folders(report_dir) if folder != run]
        seed = "".join(
            json.dumps(summary(folder, log)) + "\n"
            for folder, log in zip(run_folders(report_dir), earlier, strict=False)
            if log is not None
        )
        write_atomic(path, seed, mode)
    line = json.dumps(summary(run, records["maintenance-log.json"])) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        with contextlib.suppress(PermissionError):  # another account's history keeps its mode
            os.fchmod(handle.fileno(), mode)  # a history from an older run may have another mode
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _read_log(run: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((run / "maintenance-log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def read_history(report_dir: Path) -> list[dict[str, Any]]:
    out = []
    try:
        lines = (report_dir / HISTORY).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and (report_dir / str(entry.get("runId", ""))).is_dir():
            out.append(entry)
    return out


def write_index(report_dir: Path, mode: int = FILE_MODE) -> Path:
    """Rebuild the index page from the history, newest run first."""
    rows = []
    for s in sorted(read_history(report_dir), key=lambda e: str(e["runId"]), reverse=True):
        name = escape(str(s["runId"]))
        link = f'<a href="{name}/report.html">{name}</a>' if s.get("hasReport") else name
        tally = s.get("counts", {})
        counts = "".join(f'<td class="{c}">{int(tally.get(c, 0)) or ""}</td>' for c in _COLUMNS)
        rows.append(
            f"<tr><td>{link}</td><td>{escape(str(s.get('startedAt', '')))}</td>"
            f"<td>{escape(str(s.get('system', '')))} {escape(str(s.get('environment', '')))}</td>"
            f"<td>{escape(', '.join(map(str, s.get('suites', []))))}</td>"
            f"<td>{escape(str(s.get('status', '')))}</td>{counts}</tr>"
        )
    header = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Maintenance runs</title>"
        f"<style>{_STYLE}</style></head><body><h1>Maintenance runs</h1>"
        "<table><tr><th>Run</th><th>Started (UTC)</th><th>System</th><th>Suites</th>"
        f"<th>Log status</th>{header}</tr>{''.join(rows)}</table></body></html>\n"
    )
    path = report_dir / "index.html"
    write_atomic(path, page, mode)
    return path
