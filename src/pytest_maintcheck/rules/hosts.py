"""Host resources: CPU load per core, memory, swap, and every filesystem's space and inodes."""

from __future__ import annotations

from pytest_maintcheck.config_operations import Host
from pytest_maintcheck.probes.host_resources import HostResources
from pytest_maintcheck.units import format_size
from pytest_maintcheck.verdict import Assessment


def judge_host(host: Host, reading: HostResources, assessment: Assessment) -> None:
    """Each resource against the host's thresholds; metrics per filesystem feed the history
    (``usage:/var``), so capacity projections cover every mount."""
    limits, name = host.thresholds, host.name
    assessment.details.update(host=name, reading=reading.to_json())
    # recorded whether or not a threshold judges them: the history projects from these
    assessment.metrics.update(
        cpuLoad=round(reading.load_per_core, 3), memory=round(reading.memory_usage, 4)
    )
    if reading.swap_usage is not None:
        assessment.metrics["swap"] = round(reading.swap_usage, 4)
    assessment.measure(
        limits.get("cpuLoad"),
        round(reading.load_per_core, 3),
        subject=f"{name}: load {reading.load[1]:.2f} over {reading.cores} cores "
        f"(1/5/15 min: {' / '.join(f'{x:.2f}' for x in reading.load)})",
        action=f"Find the processes using {name}'s CPU (top, pg_stat_activity); move or "
        "reschedule batch work, or add cores.",
    )
    used = reading.memory_total - reading.memory_available
    assessment.measure(
        limits.get("memory"),
        round(reading.memory_usage, 4),
        subject=f"{name}: {format_size(used)} of {format_size(reading.memory_total)} in use",
        action=f"Find what holds {name}'s memory; lower work_mem or connection counts, or add "
        "memory before the kernel starts killing processes.",
    )
    swap = reading.swap_usage
    if swap is None:
        assessment.notes.append(f"{name} has no swap")
    else:
        assessment.measure(
            limits.get("swap"),
            round(swap, 4),
            subject=f"{name}: {format_size(reading.swap_total - reading.swap_free)} of "
            f"{format_size(reading.swap_total)} swap in use",
            action=f"{name} is short of memory: find what was swapped out and add memory.",
        )
    if not reading.filesystems:
        assessment.could_not_measure(
            f"{name}: no filesystem found to measure ({reading.source})",
            "Check excludeMounts, and that node_exporter's filesystem collector is on.",
        )
        return
    _judge_filesystems(host, reading, assessment)


def _judge_filesystems(host: Host, reading: HostResources, assessment: Assessment) -> None:
    space, inodes = host.thresholds.get("usage"), host.thresholds.get("inodeUsage")
    # the worst filesystem is the headline number; each filesystem is judged on its own below
    assessment.metrics["usage"] = round(max(f.usage for f in reading.filesystems), 4)
    inode_usages = [f.inode_usage for f in reading.filesystems if f.inode_usage is not None]
    assessment.metrics["inodeUsage"] = round(max(inode_usages), 4) if inode_usages else None
    for name, limit in (("usage", space), ("inodeUsage", inodes)):
        if limit is not None:
            assessment.thresholds[name] = limit.to_json()
    for fs in reading.filesystems:
        assessment.measure(
            space,
            round(fs.usage, 4),
            key=f"usage:{fs.mountpoint}",
            subject=f"{host.name}:{fs.mountpoint} ({fs.device}, {format_size(fs.avail_bytes)} "
            f"free of {format_size(fs.size_bytes)})",
            action=f"Free space on {host.name}:{fs.mountpoint} (old logs, WAL kept by a "
            "stale replication slot, old backups) or grow the filesystem.",
        )
        # no inode count (btrfs, some network filesystems): said in a note, never a silent pass
        assessment.measure(
            inodes,
            None if fs.inode_usage is None else round(fs.inode_usage, 4),
            key=f"inodeUsage:{fs.mountpoint}",
            subject=f"{host.name}:{fs.mountpoint} ({fs.files - fs.files_free} of {fs.files} inodes)"
            if fs.inode_usage is not None
            else f"{host.name}:{fs.mountpoint}",
            action=f"Find the folders with many small files on {host.name}:{fs.mountpoint} "
            "(session files, spool, temp) and clean them up.",
            missing=f"{fs.fstype} reports no fixed inode count",
        )
