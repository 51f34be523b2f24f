"""What pgBackRest and Barman report, in one shape, and how it is judged.

A catalog is the backup sets of one stanza (pgBackRest) or server (Barman), oldest first, and
the WAL archive beside them, and the WAL segment arithmetic the judges use (they are in
pytest_maintcheck.judges.physical). A tool that cannot be run or answers nonsense raises
ToolError, a MeasurementError: the check reports "could not measure".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_maintcheck.errors import Cause, MeasurementError, cause_of_os_error
from pytest_maintcheck.redact import printable

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


class ToolError(MeasurementError):
    """pgbackrest/barman could not be run or answered nonsense; the message is safe to print."""

    @property
    def action(self) -> str:
        """The tool ran and failed or hung: run it by hand (not found: the generic action)."""
        if self.cause is Cause.TIMED_OUT:
            return (
                "Run the same pgbackrest or barman command by hand as this user to see where "
                "it waits (repository host, network, a lock), or raise the backup's timeout; "
                "then re-run the checks."
            )
        if self.cause is Cause.FAILED:
            return (
                "Run the same pgbackrest or barman command by hand as this user (same config, "
                "stanza or server) and fix what it reports; then re-run the checks."
            )
        return super().action


@dataclass(frozen=True)
class BackupSet:
    label: str
    type: str  # full | diff | incr (pgBackRest); full for Barman
    started: datetime
    stopped: datetime
    size: int | None = None  # the database as restored
    stored: int | None = None  # what the set takes in the repository
    wal_start: str | None = None  # the first WAL segment a restore of it needs
    wal_stop: str | None = None
    error: bool = False  # pgBackRest: page checksum errors found while copying

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "type": self.type,
            "started": self.started.isoformat(),
            "stopped": self.stopped.isoformat(),
            "size": self.size,
            "stored": self.stored,
            "walStart": self.wal_start,
            "walStop": self.wal_stop,
            "error": self.error,
        }


@dataclass
class Catalog:
    """One stanza's (or Barman server's) backup sets, oldest first, and its WAL archive."""

    tool: str
    name: str
    backups: list[BackupSet] = field(default_factory=list)
    status_ok: bool = True
    status: str = "ok"
    pg_version: str | None = None
    archive_min: str | None = None
    archive_max: str | None = None
    archive_id: str | None = None  # pgBackRest: e.g. 15-1
    repo_key: int = 1
    tablespaces: list[str] = field(default_factory=list)  # of the newest set (Barman)

    @property
    def newest(self) -> BackupSet | None:
        return self.backups[-1] if self.backups else None

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "name": self.name,
            "status": self.status,
            "postgresVersion": self.pg_version,
            "archiveMin": self.archive_min,
            "archiveMax": self.archive_max,
            "backups": len(self.backups),
            "newest": self.newest.to_json() if self.newest else None,
        }


# ---------------------------------------------------------------------------- running a tool


def run_tool(
    argv: Sequence[str],
    timeout: float,
    env: dict[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
) -> str:
    """Run a read-only listing command, bounded; its stdout, or ToolError with its stderr."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a timeout stops it and whatever it started
        )
    except OSError as exc:
        raise ToolError(
            f"cannot run {argv[0]}: {exc.strerror or exc}", cause=cause_of_os_error(exc)
        ) from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        raise ToolError(
            f"{' '.join([argv[0], *(a for a in argv[1:] if not a.startswith('-'))])} did not "
            f"finish within {timeout:g}s and was stopped",
            cause=Cause.TIMED_OUT,
        ) from None
    finally:
        stop_group(proc)
    if proc.returncode not in ok_codes:
        raise ToolError(f"{os.path.basename(argv[0])} exited {proc.returncode}: {tool_error(err)}")
    return out.decode("utf-8", "replace")


def tool_error(stderr: bytes | str) -> str:
    """The tool's last error line, printable and short."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "error" in ln.lower()]
    return printable((errors or lines or ["no error message"])[-1], 300)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """TERM the process group, a bounded wait, then KILL; a no-op once it exited."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------------------- WAL segments


def segment_number(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int]:
    """(timeline, segment number) of a WAL file name like 000000010000000A000000FF."""
    match = _SEGMENT.match(name[:24])
    if not match:
        raise ValueError(f"not a WAL segment name: {name!r}")
    per_log = 0x1_0000_0000 // segment_size
    timeline, log, seg = (int(g, 16) for g in match.groups())
    return timeline, log * per_log + seg


def segment_name(timeline: int, number: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per_log = 0x1_0000_0000 // segment_size
    return f"{timeline:08X}{number // per_log:08X}{number % per_log:08X}"


def is_segment(name: str) -> bool:
    return bool(_SEGMENT.match(name[:24])) and (len(name) == 24 or name[24] in "-.")


def is_whole_segment(name: str) -> bool:
    """A complete segment (pgBackRest adds -<sha1>[.gz]), not a .partial one or a .backup
    label file (000000010000000000000004.00000028.backup)."""
    return is_segment(name) and (len(name) == 24 or name[24] == "-")


def wal_gaps(
    archived: Iterable[str],
    start: str,
    until: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> list[str]:
    """Segments from ``start`` to ``until`` (inclusive) that no timeline has in the archive.

    A segment number present on any timeline counts: after a promotion the new timeline
    starts in the middle of the old one's last segment.
    """
    have = {segment_number(name, segment_size)[1] for name in archived if is_whole_segment(name)}
    timeline, first = segment_number(start, segment_size)
    last_timeline, last = segment_number(until, segment_size)
    return [
        segment_name(max(timeline, last_timeline), n, segment_size)
        for n in range(first, last + 1)
        if n not in have
    ]
