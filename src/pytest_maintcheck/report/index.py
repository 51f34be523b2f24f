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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_maintcheck.report.files import FILE_MODE, run_folders, write_atomic

if TYPE_CHECKING:
    from pytest_maintcheck.config import HistorySettings

LOCK_TIMEOUT = (
    60.0  # seconds; another run holds it only while it seals its log and rebuilds the index
)


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
        **({"seeded": True} if log.get("seeded") else {}),
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
    report_dir: Path,
    mode: int = FILE_MODE,
    known: Mapping[str, dict[str, Any]] | None = None,
    now: datetime | None = None,
    settings: HistorySettings | None = None,
) -> Path:
    """Rebuild the index page: runs per system and environment, newest first, with trends
    drawn from the history store (``settings``; None: SQLite in the report folder);
    ``known``: the history store's line of each run."""
    from pytest_maintcheck.config import HistorySettings
    from pytest_maintcheck.report.series import StoreHistory
    from pytest_maintcheck.report.trends import index_page

    entries = read_history(report_dir, known)
    systems = {(str(e.get("system", "")), str(e.get("environment", ""))) for e in entries}
    history = StoreHistory(settings or HistorySettings(), report_dir, systems=systems, mode=mode)
    page = index_page(entries, report_dir, now or datetime.now(UTC), history)
    path = report_dir / "index.html"
    write_atomic(path, page, mode)
    return path
