"""The history of runs and ``reports/index.html``: every run on one page, newest first.

``reports/history.jsonl`` holds one summary line per finished run, appended after the run
folder is in place; the index is rebuilt from it, so its cost does not grow with the size of
earlier runs. Lines that do not parse (a crash mid-append) are skipped. Concurrent runs append
and rebuild under one lock (``history_lock``), each line whole.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.report.files import FILE_MODE, run_folders, write_atomic

HISTORY = "history.jsonl"
LOCK_TIMEOUT = 60.0  # seconds; another run holds it only while it appends and rebuilds the index


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


def record_history(
    report_dir: Path, run: Path, records: dict[str, Any], mode: int = FILE_MODE
) -> None:
    """Append this run's line; a history that does not exist yet is seeded from the folders.

    Call it under ``history_lock``. A last line cut short by a crash gets its newline first,
    so it cannot swallow this run's line.
    """
    path = report_dir / HISTORY
    if not path.exists():
        earlier = [(f, _read_log(f)) for f in run_folders(report_dir) if f != run]
        seed = "".join(
            json.dumps(summary(folder, log)) + "\n" for folder, log in earlier if log is not None
        )
        write_atomic(path, seed, mode)
    line = json.dumps(summary(run, records["maintenance-log.json"])) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        with contextlib.suppress(PermissionError):  # another account's history keeps its mode
            os.fchmod(fd, mode)  # a history from an older run may have another mode
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        data = line.encode("utf-8")
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            os.fsync(fd)
        except OSError as exc:  # a full disk: cut back to the whole lines that were there
            os.ftruncate(fd, size)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def _read_log(run: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((run / "maintenance-log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def read_history(report_dir: Path) -> list[dict[str, Any]]:
    """The runs of the history, each once (a run seeded by a concurrent one appends again)."""
    out: dict[str, dict[str, Any]] = {}
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
            out[str(entry["runId"])] = entry
    return list(out.values())


def write_index(report_dir: Path, mode: int = FILE_MODE, now: datetime | None = None) -> Path:
    """Rebuild the index page: runs per system and environment, newest first, with trends."""
    from pytest_maintcheck.report.trends import index_page

    page = index_page(read_history(report_dir), report_dir, now or datetime.now(UTC))
    path = report_dir / "index.html"
    write_atomic(path, page, mode)
    return path
