"""Write a run folder so that a crash leaves nothing half-written and no earlier run is touched."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_maintcheck.redact import Redactor

if TYPE_CHECKING:
    from pytest_maintcheck.chain import Signer
    from pytest_maintcheck.config import HistorySettings

_INDENT_BELOW = 256 * 1024
# records name hosts, accounts and findings: readable by the account that ran the checks only,
# unless the operator widens it (--maintcheck-file-mode)
FILE_MODE = 0o600
LOG = "maintenance-log.json"


def dir_mode(file_mode: int) -> int:
    """A folder's mode for a file mode: x wherever r (0600 -> 0700, 0640 -> 0750)."""
    return file_mode | ((file_mode & 0o444) >> 2)


def parse_file_mode(text: object) -> int:
    """An octal mode like 0600 or 640; the owner keeps rw, nobody else may write."""
    raw = str(text).strip()
    if not re.fullmatch(r"0?[0-7]{3}|0o[0-7]{3}", raw):
        raise ValueError(f"expected an octal file mode like 0600 or 0640, got {raw!r}")
    mode = int(raw.removeprefix("0o"), 8)
    if mode & 0o600 != 0o600:
        raise ValueError(f"{raw}: the owner must be able to read and write (0600 at least)")
    if mode & 0o022:
        raise ValueError(f"{raw}: records must not be writable by group or others")
    return mode


def write_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Write beside the target with ``mode``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # not the umask: one documented mode for every file of a run
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
    report_dir: Path,
    staging: Path,
    run_id: str,
    records: dict[str, Any],
    redact: Redactor,
    mode: int = FILE_MODE,
    signer: Signer | None = None,
    *,
    index: Mapping[str, dict[str, Any]] | None = None,
    history: HistorySettings | None = None,
) -> Path:
    """Records into the staging folder beside pytest-html's page, then one rename into place.

    Every result was redacted where it was made; the records are walked once more before
    they are serialized (masking a serialized text would miss a secret JSON escaped, and
    could break the JSON). Every file gets ``mode``, the folder its ``dir_mode``. The log is
    sealed last (``chain.seal``): the hashes of the other files, the previous run's log hash,
    and ``signer``'s signature. ``index``: the history
    store's line for each run (see report.index.write_index); ``history``: the store the
    index's charts read.
    """
    staging.mkdir(parents=True, exist_ok=True)
    os.chmod(staging, dir_mode(mode))
    html = staging / "report.html"
    if html.exists():
        page = html.read_text(encoding="utf-8")
        masked = redact.mask_opaque(page)  # only secrets no escaping could have changed
        if masked != page:
            write_atomic(html, masked, mode)
        os.chmod(html, mode)
    for name, content in records.items():
        if name != LOG:  # the log is written last: it holds the hashes of the others
            write_atomic(staging / name, _serialized(redact.walk(content)), mode)
    final = report_dir / run_id
    from pytest_maintcheck.chain import seal
    from pytest_maintcheck.report.index import history_lock, write_index

    with history_lock(report_dir):  # one run at a time takes the next place in the chain
        if LOG in records:
            written = json.loads(_serialized(redact.walk(records[LOG])))  # as verify will read it
            log = seal(written, staging, report_dir, signer)
            write_atomic(staging / LOG, _serialized(log), mode)
        os.rename(staging, final)  # atomic on one filesystem; run ids never repeat
        write_index(report_dir, mode, index, settings=history)
    return final


def _serialized(content: Any) -> str:
    text = json.dumps(content, ensure_ascii=False, default=str)
    if len(text) < _INDENT_BELOW:
        # indented for people; a large record stays compact (json's C encoder is 10x faster)
        text = json.dumps(content, indent=2, ensure_ascii=False, default=str)
    return text + "\n"


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
