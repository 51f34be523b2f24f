"""A storage path exists, takes a write, and has room: space and inodes."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pytest_maintcheck.errors import Cause, MeasurementError, cause_of_os_error
from pytest_maintcheck.redact import printable


@dataclass
class StorageResult:
    path: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: int = 0
    usage: float | None = None
    inode_usage: float | None = None
    free_bytes: int | None = None
    failed_ms: list[float] = field(default_factory=list)  # time until each failed sample failed
    failure: MeasurementError | None = None

    def add_failure(self, elapsed_ms: float | None, error: MeasurementError) -> None:
        self.errors.append(str(error))
        if elapsed_ms is not None:
            self.failed_ms.append(elapsed_ms)
        self.failure = self.failure or error


def probe_storage(path: Path, samples: int = 1) -> StorageResult:
    """Write, fsync and remove a probe file ``samples`` times; read usage from statvfs."""
    shown = printable(path, 200)  # a path with an escape code must not reach a terminal raw
    result = StorageResult(shown)
    started = time.perf_counter()
    if not path.is_dir():
        result.samples = samples
        missing = MeasurementError(
            f"{shown} does not exist or is not a directory", cause=Cause.NOT_FOUND, where=shown
        )
        for _ in range(samples):
            result.add_failure((time.perf_counter() - started) * 1000, missing)
        return result
    for _ in range(samples):
        result.samples += 1
        probe = path / f".maintcheck-probe-{uuid.uuid4().hex}"
        started = time.perf_counter()
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"maintcheck write probe\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            probe.unlink()
        except OSError as exc:
            cause = cause_of_os_error(exc)
            result.add_failure(
                (time.perf_counter() - started) * 1000,
                MeasurementError(
                    f"{shown} is not writable: {exc.strerror or printable(exc)}",
                    cause=Cause.FAILED if cause is Cause.NOT_FOUND else cause,
                    where=shown,
                ),
            )
            continue
        finally:
            probe.unlink(missing_ok=True)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
    try:
        st = os.statvfs(path)
    except OSError as exc:
        result.errors.append(f"cannot read usage of {shown}: {exc.strerror}")
        return result
    if st.f_blocks:
        result.usage = 1 - st.f_bavail / st.f_blocks
        result.free_bytes = st.f_bavail * st.f_frsize
    if st.f_files:
        result.inode_usage = 1 - st.f_favail / st.f_files
    return result
