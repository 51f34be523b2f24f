"""Backup files on disk: which exist, how old, whether they match their manifest, their rotation.

Plain functions over a folder; nothing here deletes or writes a file. Timestamps in file names
are read as UTC (``clinical-20250301T020000Z.dump``, ``clinical-2025-03-01_02-00.dump``).
"""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import hashlib
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, cast

from pytest_maintcheck.errors import Cause, MeasurementError, cause_of_os_error
from pytest_maintcheck.redact import printable

_NAME_TIME = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})"
    r"(?:[T_ .-]?(\d{2})[:.-]?(\d{2})(?:[:.-]?(\d{2}))?)?(?!\d)"
)
_MANIFEST_LINE = re.compile(r"^\\?([0-9a-fA-F]{64}) [ *](.+)$")
_CHUNK = 1 << 20


class BackupError(MeasurementError):
    """The backup location could not be read; the message is safe to print."""


@dataclass(frozen=True)
class BackupFile:
    """One backup: its file, size, and when it was taken (from its name, else its mtime)."""

    path: Path
    size: int
    taken: datetime
    time_from: str  # "name" | "mtime"

    @property
    def name(self) -> str:
        return self.path.name

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "taken": self.taken.isoformat(),
            "timeFrom": self.time_from,
        }


def time_in_name(name: str) -> datetime | None:
    """The first plausible date/time written in a file name, as UTC; None if there is none."""
    for match in _NAME_TIME.finditer(name):
        y, mo, d, h, mi, s = (int(p) if p else 0 for p in match.groups())
        try:
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
        except ValueError:
            continue
    return None


def list_backups(location: Path, pattern: str) -> list[BackupFile]:
    """Regular files in ``location`` matching ``pattern``, newest first."""
    shown = printable(location, 200)
    try:
        entries = list(os.scandir(location))
    except FileNotFoundError:
        raise BackupError(
            f"backup location {shown} does not exist", cause=Cause.NOT_FOUND, where=shown
        ) from None
    except NotADirectoryError:
        raise BackupError(
            f"backup location {shown} is not a directory", cause=Cause.NOT_FOUND, where=shown
        ) from None
    except OSError as exc:
        raise BackupError(
            f"cannot read backup location {shown}: {exc.strerror}",
            cause=cause_of_os_error(exc),
            where=shown,
        ) from None
    found = []
    for entry in entries:
        if not fnmatch.fnmatchcase(entry.name, pattern):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue  # vanished while listing (a rotation job running): not ours to judge
        named = time_in_name(entry.name)
        taken = named or datetime.fromtimestamp(st.st_mtime, UTC)
        found.append(BackupFile(Path(entry.path), st.st_size, taken, "name" if named else "mtime"))
    return sorted(found, key=lambda b: (b.taken, b.name), reverse=True)


# ---------------------------------------------------------------------------- integrity


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """A sha256sum-format manifest: file name -> expected digest, and lines it could not read."""

    entries: dict[str, str] = field(default_factory=dict)
    bad_lines: list[int] = field(default_factory=list)


def read_manifest(path: Path) -> Manifest:
    manifest = Manifest()
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            match = _MANIFEST_LINE.match(line)
            if match is None:
                manifest.bad_lines.append(number)
                continue
            manifest.entries[Path(match.group(2)).name] = match.group(1).lower()
    return manifest


@dataclass
class IntegrityResult:
    verified: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)  # a backup the manifest does not name
    missing: list[str] = field(default_factory=list)  # a manifest entry with no file
    unreadable: list[str] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)


def verify_checksums(
    backups: Sequence[BackupFile], manifest: Manifest, pattern: str
) -> IntegrityResult:
    """Hash every backup against the manifest; only manifest entries matching ``pattern`` count."""
    result = IntegrityResult(bad_lines=list(manifest.bad_lines))
    for backup in backups:
        expected = manifest.entries.get(backup.name)
        if expected is None:
            result.unlisted.append(backup.name)
            continue
        try:
            actual = sha256_of(backup.path)
        except OSError as exc:
            result.unreadable.append(f"{backup.name} ({exc.strerror})")
            continue
        (result.verified if actual == expected else result.mismatched).append(backup.name)
    present = {b.name for b in backups}
    result.missing = sorted(
        name
        for name in manifest.entries
        if fnmatch.fnmatchcase(name, pattern) and name not in present
    )
    return result


# ---------------------------------------------------------------------------- size change


def size_change(newest: BackupFile, previous: BackupFile) -> float | None:
    """Relative change of the newest backup's size against the previous one (0.5 = half)."""
    if previous.size == 0:
        return None if newest.size == 0 else 1.0
    return abs(newest.size - previous.size) / previous.size


# ---------------------------------------------------------------------------- archives


@dataclass
class ArchiveResult:
    """A configuration archive read to its end: members listed, compression checksums checked."""

    format: str = ""
    members: int = 0
    content_bytes: int = 0
    error: str | None = None


def _decompressing(f: IO[bytes]) -> tuple[str, IO[bytes]]:
    magic = f.read(6)
    f.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return "tar.gz", cast(IO[bytes], gzip.GzipFile(fileobj=f, mode="rb"))
    if magic.startswith(b"BZh"):
        return "tar.bz2", bz2.BZ2File(f, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz", lzma.LZMAFile(f, "rb")
    return "tar", f


def check_archive(path: Path) -> ArchiveResult:
    """List every member of a tar (plain, gz, bz2, xz) or zip, reading it to the end.

    A tar is read as a stream and then drained, so a cut-off gzip trailer (CRC, length) is
    caught too, not only a cut inside a member.
    """
    result = ArchiveResult()
    try:
        if zipfile.is_zipfile(path):
            result.format = "zip"
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                bad = archive.testzip()
            if bad is not None:
                result.error = f"member {printable(bad, 120)} fails its CRC"
            result.members = len(infos)
            result.content_bytes = sum(i.file_size for i in infos)
            return result
        with path.open("rb") as raw:
            result.format, stream = _decompressing(raw)
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for member in archive:
                    result.members += 1
                    result.content_bytes += member.size
            while stream.read(_CHUNK):  # to the end of the compressed stream: CRC and length
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError, ValueError) as exc:
        result.error = printable(str(exc) or type(exc).__name__, 200)
        return result
    if result.members == 0:
        result.error = "the archive is empty"
    return result


# ---------------------------------------------------------------------------- storage


@dataclass
class StorageRoom:
    readable: bool
    free_bytes: int | None = None
    error: str | None = None


def storage_room(location: Path) -> StorageRoom:
    """Whether the location can be listed and read, and how many bytes are free for a writer."""
    shown = printable(location, 200)
    if not os.access(location, os.R_OK | os.X_OK):
        return StorageRoom(False, error=f"{shown} is not readable by this account")
    try:
        os.listdir(location)
        st = os.statvfs(location)
    except OSError as exc:
        return StorageRoom(False, error=f"cannot read {shown}: {exc.strerror}")
    return StorageRoom(True, st.f_bavail * st.f_frsize)


# ---------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class Slot:
    """One promise of a grandfather-father-son policy: e.g. the weekly backup of 2025-W09."""

    kind: str  # daily | weekly | monthly
    index: int  # 0 = the period of the newest backup
    label: str  # 2025-03-01 | 2025-W09 | 2025-03
    start: date  # first day of the period


@dataclass
class RotationResult:
    filled: dict[Slot, str] = field(default_factory=dict)  # slot -> backup kept for it
    empty: list[Slot] = field(default_factory=list)  # within the backups' history: a gap
    not_yet: list[Slot] = field(default_factory=list)  # older than the oldest backup
    removable: list[str] = field(default_factory=list)  # kept by no slot: past the policy


def _period(kind: str, day: date) -> tuple[date, str]:
    if kind == "daily":
        return day, day.isoformat()
    if kind == "weekly":
        monday = day - timedelta(days=day.weekday())
        year, week, _ = monday.isocalendar()
        return monday, f"{year}-W{week:02d}"
    first = day.replace(day=1)
    return first, f"{first.year}-{first.month:02d}"


def _step_back(kind: str, start: date) -> date:
    if kind == "daily":
        return start - timedelta(days=1)
    if kind == "weekly":
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def promised_slots(kind: str, count: int, newest: date) -> list[Slot]:
    """The ``count`` calendar periods (UTC) ending with the newest backup's period."""
    slots = []
    start, label = _period(kind, newest)
    for index in range(count):
        slots.append(Slot(kind, index, label, start))
        start = _step_back(kind, start)
        start, label = _period(kind, start)
    return slots


def check_rotation(
    backups: Iterable[BackupFile], daily: int, weekly: int, monthly: int
) -> RotationResult:
    """Which promised slots hold a backup (the newest of its period), which are empty, and
    which backups no slot keeps. Anchored on the newest backup, so a run just before the
    nightly job does not see today's slot as a gap (freshness is the freshness check's job)."""
    ordered = sorted(backups, key=lambda b: b.taken, reverse=True)
    result = RotationResult()
    if not ordered:
        return result
    newest_day = ordered[0].taken.date()
    oldest_day = ordered[-1].taken.date()
    kept: set[str] = set()
    for kind, count in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
        for slot in promised_slots(kind, count, newest_day):
            holder = next(
                (b for b in ordered if _period(kind, b.taken.date())[0] == slot.start), None
            )
            if holder is not None:
                result.filled[slot] = holder.name
                kept.add(holder.name)
            elif _next_start(kind, slot.start) <= oldest_day:
                result.not_yet.append(slot)  # the whole period is older than the first backup
            else:
                result.empty.append(slot)
    result.removable = [b.name for b in reversed(ordered) if b.name not in kept]
    return result


def _next_start(kind: str, start: date) -> date:
    if kind == "daily":
        return start + timedelta(days=1)
    if kind == "weekly":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)
