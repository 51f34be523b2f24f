"""A host's CPU load, memory, swap and filesystems: locally with psutil, remotely from
node_exporter's /metrics (parsed with prometheus_client's own parser).

Both sources give the same :class:`HostResources`, so one set of rules judges them. Pseudo and
read-only filesystems are left out the way node_exporter leaves them out by default, so a host
reads alike whichever way it is measured.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from pytest_maintcheck.errors import Cause, MeasurementError, cause_of_os_error
from pytest_maintcheck.probes.http import MAX_BODY_BYTES, describe_error, tls_context
from pytest_maintcheck.redact import printable

if TYPE_CHECKING:
    from pytest_maintcheck.config_operations import Host

# node_exporter's default --collector.filesystem.fs-types-exclude, less overlay: the root of a
# container is an overlay, and it fills up like any disk
PSEUDO_FS_TYPES = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
        "devtmpfs", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "proc", "procfs",
        "pstore", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs",
    }
)  # fmt: skip
# node_exporter's default --collector.filesystem.mount-points-exclude
PSEUDO_MOUNTS = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)


class HostProbeError(MeasurementError):
    """The host could not be measured; the message is safe to print. Escaping the check, it
    is a could-not-measure finding with its cause (refused, timed out, answered HTTP ...)."""


@dataclass(frozen=True)
class Filesystem:
    mountpoint: str
    device: str
    fstype: str
    size_bytes: int
    avail_bytes: int
    files: int  # inodes; 0 when the filesystem has no fixed inode table (btrfs, xfs dynamic)
    files_free: int

    @property
    def usage(self) -> float:
        """Share of the space not available to unprivileged users, as df's Use% reads."""
        return (self.size_bytes - self.avail_bytes) / self.size_bytes if self.size_bytes else 0.0

    @property
    def inode_usage(self) -> float | None:
        return (self.files - self.files_free) / self.files if self.files else None

    def to_json(self) -> dict[str, Any]:
        return {
            "mountpoint": self.mountpoint,
            "device": self.device,
            "fstype": self.fstype,
            "sizeBytes": self.size_bytes,
            "availBytes": self.avail_bytes,
            "usage": round(self.usage, 4),
            "inodeUsage": None if self.inode_usage is None else round(self.inode_usage, 4),
        }


@dataclass
class HostResources:
    """One reading of a host."""

    source: str  # "psutil" or the node_exporter URL
    cores: int
    load: tuple[float, float, float]  # 1, 5 and 15 minute load averages
    memory_total: int
    memory_available: int
    swap_total: int
    swap_free: int
    filesystems: list[Filesystem] = field(default_factory=list)

    @property
    def load_per_core(self) -> float:
        """The 5-minute load average per core: steadier than 1 minute, quicker than 15."""
        return self.load[1] / max(self.cores, 1)

    @property
    def memory_usage(self) -> float:
        if not self.memory_total:
            return 0.0
        return (self.memory_total - self.memory_available) / self.memory_total

    @property
    def swap_usage(self) -> float | None:
        """None when the host has no swap."""
        return (self.swap_total - self.swap_free) / self.swap_total if self.swap_total else None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cores": self.cores,
            "load": list(self.load),
            "memoryTotalBytes": self.memory_total,
            "memoryAvailableBytes": self.memory_available,
            "swapTotalBytes": self.swap_total,
            "swapFreeBytes": self.swap_free,
            "filesystems": [f.to_json() for f in self.filesystems],
        }


def watched(mountpoint: str, fstype: str, read_only: bool, exclude: Sequence[str] = ()) -> bool:
    """Whether a mount is a filesystem that can fill up and that the operator did not exclude."""
    if read_only or fstype in PSEUDO_FS_TYPES or PSEUDO_MOUNTS.match(mountpoint):
        return False
    return not any(fnmatch.fnmatch(mountpoint, pattern) for pattern in exclude)


def _first_per_device(filesystems: Iterable[Filesystem]) -> list[Filesystem]:
    """A device mounted twice (bind mounts) is one filesystem: keep its shortest mount point."""
    best: dict[tuple[str, int, int], Filesystem] = {}
    for f in sorted(filesystems, key=lambda f: (len(f.mountpoint), f.mountpoint)):
        best.setdefault((f.device, f.size_bytes, f.files), f)
    return sorted(best.values(), key=lambda f: f.mountpoint)


# ---------------------------------------------------------------------------- local (psutil)


def measure_local(exclude: Sequence[str] = ()) -> HostResources:
    """The machine running the checks."""
    import psutil

    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    found: list[Filesystem] = []
    for part in psutil.disk_partitions(all=True):
        read_only = "ro" in part.opts.split(",")
        if not watched(part.mountpoint, part.fstype, read_only, exclude):
            continue
        try:
            st = os.statvfs(part.mountpoint)
        except OSError:
            continue  # unmounted meanwhile, or not ours to read: node_exporter skips it too
        if not st.f_blocks:
            continue
        found.append(
            Filesystem(
                mountpoint=printable(part.mountpoint, 200),
                device=printable(part.device, 200),
                fstype=part.fstype,
                size_bytes=st.f_blocks * st.f_frsize,
                avail_bytes=st.f_bavail * st.f_frsize,
                files=st.f_files,
                files_free=st.f_favail,
            )
        )
    load = psutil.getloadavg()
    return HostResources(
        source="psutil",
        cores=psutil.cpu_count() or 1,
        load=(load[0], load[1], load[2]),
        memory_total=int(memory.total),
        memory_available=int(memory.available),
        swap_total=int(swap.total),
        swap_free=int(swap.free),
        filesystems=_first_per_device(found),
    )


# ---------------------------------------------------------------------------- node_exporter


def fetch_metrics_text(url: str, *, ca_file: Path | None, timeout: float) -> str:
    """GET a /metrics page: TLS verified, bounded in time and size, redirects not followed."""
    try:
        with (
            httpx.Client(verify=tls_context(ca_file), timeout=timeout) as client,
            client.stream("GET", url, headers={"Accept": "text/plain"}) as response,
        ):
            if response.status_code != 200:
                raise HostProbeError(
                    f"{_shown(url)} answered HTTP {response.status_code}",
                    cause=Cause.HTTP_STATUS,
                    where=_shown(url),
                    status=response.status_code,
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > 4 * MAX_BODY_BYTES:
                    raise HostProbeError(
                        f"{_shown(url)} sent more than {4 * MAX_BODY_BYTES // 2**20} MiB"
                    )
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        raise HostProbeError(
            f"{_shown(url)}: {describe_error(exc, timeout)}",
            cause=cause_of_os_error(exc),
            where=_shown(url),
        ) from None
    return body.decode("utf-8", errors="replace")


def _shown(url: str) -> str:
    from pytest_maintcheck.config import redact_url

    return printable(redact_url(url), 200)


def parse_node_exporter(text: str, source: str, exclude: Sequence[str] = ()) -> HostResources:
    """node_exporter's metrics to a reading; a page without them is an error, not zeros."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    cpus: set[str] = set()
    fs: dict[tuple[str, str, str], dict[str, float]] = {}
    wanted_fs = {
        "node_filesystem_size_bytes": "size",
        "node_filesystem_avail_bytes": "avail",
        "node_filesystem_files": "files",
        "node_filesystem_files_free": "files_free",
        "node_filesystem_readonly": "readonly",
    }
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name, labels = sample.name, sample.labels
                if name == "node_cpu_seconds_total" and labels.get("mode") == "idle":
                    cpus.add(labels.get("cpu", ""))
                elif name in wanted_fs:
                    key = (
                        printable(labels.get("mountpoint", ""), 200),
                        printable(labels.get("device", ""), 200),
                        printable(labels.get("fstype", ""), 40),
                    )
                    fs.setdefault(key, {})[wanted_fs[name]] = float(sample.value)
                elif name.startswith(("node_load", "node_memory_")):
                    values[name] = float(sample.value)
    except (ValueError, TypeError, IndexError) as exc:
        raise HostProbeError(
            f"{source}: not Prometheus text format ({printable(exc, 120)})"
        ) from None
    needed = (
        "node_load1",
        "node_load5",
        "node_load15",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
    )
    missing = [n for n in needed if n not in values]
    if missing or not cpus:
        what = ", ".join(missing + ([] if cpus else ["node_cpu_seconds_total"]))
        raise HostProbeError(
            f"{source} has no {what}: is this node_exporter with its loadavg, meminfo and cpu "
            "collectors on?"
        )
    filesystems = [
        Filesystem(
            mount,
            device,
            fstype,
            int(v.get("size", 0)),
            int(v.get("avail", 0)),
            int(v.get("files", 0)),
            int(v.get("files_free", 0)),
        )
        for (mount, device, fstype), v in fs.items()
        if v.get("size") and watched(mount, fstype, v.get("readonly", 0) == 1, exclude)
    ]
    return HostResources(
        source=source,
        cores=len(cpus),
        load=(values["node_load1"], values["node_load5"], values["node_load15"]),
        memory_total=int(values["node_memory_MemTotal_bytes"]),
        memory_available=int(values["node_memory_MemAvailable_bytes"]),
        swap_total=int(values.get("node_memory_SwapTotal_bytes", 0)),
        swap_free=int(values.get("node_memory_SwapFree_bytes", 0)),
        filesystems=_first_per_device(filesystems),
    )


def measure_node_exporter(
    url: str, *, ca_file: Path | None = None, timeout: float = 10.0, exclude: Sequence[str] = ()
) -> HostResources:
    """A remote host; the whole request is bounded, also against a server that drips bytes."""
    from pytest_maintcheck.probes.postgres import ProbeError, run_bounded

    try:
        text = run_bounded(
            timeout * 2 + 1,
            _shown(url),
            lambda: fetch_metrics_text(url, ca_file=ca_file, timeout=timeout),
        )
    except HostProbeError:
        raise
    except ProbeError as exc:  # run_bounded's own: the exporter did not answer in time
        raise HostProbeError(str(exc), cause=exc.cause, where=exc.where or _shown(url)) from None
    return parse_node_exporter(text, _shown(url), exclude)


def measure_host(host: Host) -> HostResources:
    """A hosts entry measured the way it is configured: psutil locally, else node_exporter."""
    if host.local or host.node_exporter is None:
        return measure_local(host.exclude_mounts)
    return measure_node_exporter(
        host.node_exporter, ca_file=host.ca_file, timeout=host.timeout, exclude=host.exclude_mounts
    )
