"""``reports/index.html``: every run of this report folder on one page, newest first.

Each run's line comes from the history store (one query for all of them); a run the store
does not hold (it was locked or unreachable when the run ended) is read from its own
MaintenanceLog, so the index never misses a run folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from html import escape
from pathlib import Path
from typing import Any

from pytest_maintcheck.report.files import FILE_MODE, run_folders, write_atomic

LOCK_TIMEOUT = (
    60.0  # seconds; another run holds it only while it seals its log and rebuilds the index
)
_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    ".violation,.error{color:#cf222e}.degraded{color:#9a6700}.pass{color:#1a7f37}"
)
_COLUMNS = ("pass", "degraded", "violation", "error", "skipped", "waived")


def summary(run: Path, log: dict[str, Any]) -> dict[str, Any]:
    """One index line, from a run's MaintenanceLog."""
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


class HistoryLocked(OSError):
    """Another run held the history lock past LOCK_TIMEOUT."""


@contextmanager
def history_lock(report_dir: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """One run at a time appends to the history and rebuilds the index (an flock, bounded).

    The lock is on the report folder itself: no lock file to leave behind.
    """
    fd = os.open(report_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HistoryLocked(
                        f"{report_dir}: another run held its history lock over {timeout:.0f}s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _read_log(run: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((run / "maintenance-log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def read_history(
    report_dir: Path, known: Mapping[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One line per run folder: the store's line (``known``) or its MaintenanceLog's."""
    out = []
    for folder in run_folders(report_dir):
        line = (known or {}).get(folder.name)
        if line is None:
            log = _read_log(folder)
            if log is None:
                continue
            line = summary(folder, log)
        out.append({**line, "hasReport": (folder / "report.html").is_file()})
    return out


def write_index(
    report_dir: Path, mode: int = FILE_MODE, known: Mapping[str, dict[str, Any]] | None = None
) -> Path:
    """Rebuild the index page, newest run first; ``known``: the store's line of each run."""
    rows = []
    for s in sorted(read_history(report_dir, known), key=lambda e: str(e["runId"]), reverse=True):
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
