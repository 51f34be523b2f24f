"""Write a run folder so that a crash leaves nothing half-written and no earlier run is touched."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_maintcheck.redact import Redactor

_INDENT_BELOW = 256 * 1024


def write_atomic(path: Path, text: str) -> None:
    """Write beside the target, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: say which file, leave no partial one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_run(
    report_dir: Path, staging: Path, run_id: str, records: dict[str, Any], redact: Redactor
) -> Path:
    """Records into the staging folder beside pytest-html's page, then one rename into place.

    Every message was redacted where it was made; masking the known secrets once more over
    each whole file is the safety net for anything that slipped past (str.replace, so cheap).
    """
    staging.mkdir(parents=True, exist_ok=True)
    html = staging / "report.html"
    if html.exists():
        page = html.read_text(encoding="utf-8")
        if redact.leaks(page):
            write_atomic(html, redact.mask_known(page))
    for name, content in records.items():
        text = json.dumps(content, ensure_ascii=False, default=str)
        if len(text) < _INDENT_BELOW:
            # indented for people; a large record stays compact (json's C encoder is 10x faster)
            text = json.dumps(content, indent=2, ensure_ascii=False, default=str)
        write_atomic(staging / name, redact.mask_known(text + "\n"))
    final = report_dir / run_id
    os.rename(staging, final)  # atomic on one filesystem; run ids never repeat
    from pytest_maintcheck.report.index import history_lock, record_history, write_index

    with history_lock(report_dir):
        record_history(report_dir, final, records)
        write_index(report_dir)
    return final


def run_folders(report_dir: Path) -> list[Path]:
    """Finished runs, oldest first (run ids sort by time)."""
    if not report_dir.is_dir():
        return []
    return sorted(p for p in report_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def latest_run_file(report_dir: Path, name: str) -> Any:
    """The named record of the newest finished run, or None."""
    for folder in reversed(run_folders(report_dir)):
        path = folder / name
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None
