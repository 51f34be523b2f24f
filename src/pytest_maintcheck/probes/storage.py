"""A storage path exists, takes a write, and has room: space and inodes."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StorageResult:
    path: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: int = 0
    usage: float | None = None
    inode_usage: float | None = None
    free_bytes: int | None = None


def probe_storage(path: Path, samples: int = 1) -> StorageResult:
    """Write, fsync and remove a probe file ``samples`` times; read usage from statvfs."""
    result = StorageResult(str(path))
    if not path.is_dir():
        result.samples = samples
        result.errors = [f"{path} does not exist or is not a directory"] * samples
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
            result.errors.append(f"{path} is not writable: {exc.strerror or exc}")
            continue
        finally:
            probe.unlink(missing_ok=True)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
    try:
        st = os.statvfs(path)
    except OSError as exc:
        result.errors.append(f"cannot read usage of {path}: {exc.strerror}")
        return result
    if st.f_blocks:
        result.usage = 1 - st.f_bavail / st.f_blocks
        result.free_bytes = st.f_bavail * st.f_frsize
    if st.f_files:
        result.inode_usage = 1 - st.f_favail / st.f_files
    return result
