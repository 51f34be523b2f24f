"""PostgreSQL memory settings against the memory of the host it runs on, arithmetic shown."""

from __future__ import annotations

from pytest_maintcheck.config_operations import ConfigReview
from pytest_maintcheck.probes.host_resources import HostResources
from pytest_maintcheck.probes.pg_config_review import ReviewSnapshot
from pytest_maintcheck.units import format_size
from pytest_maintcheck.verdict import Assessment

MEMORY_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "max_connections",
    "maintenance_work_mem",
    "autovacuum_max_workers",
    "effective_cache_size",
)


def judge_allocation(
    review: ConfigReview, snap: ReviewSnapshot, host: HostResources, assessment: Assessment
) -> None:
    """shared_buffers, the worst case of work_mem x connections, and effective_cache_size,
    each as a share of the host's memory."""
    db, memory = review.database, host.memory_total
    sizes = {n: snap.settings[n].bytes for n in MEMORY_SETTINGS if n in snap.settings}
    shared, work = sizes.get("shared_buffers"), sizes.get("work_mem")
    maintenance, cache = sizes.get("maintenance_work_mem"), sizes.get("effective_cache_size")
    connections = int(snap.get("max_connections") or 0)
    workers = int(snap.get("autovacuum_max_workers") or 0)
    assessment.details.update(
        database=db,
        host=review.host,
        hostMemoryBytes=memory,
        settings={n: snap.get(n) for n in MEMORY_SETTINGS},
    )
    if not memory or None in (shared, work, maintenance, cache):
        assessment.could_not_measure(
            f"{db}: the memory settings or {review.host}'s memory could not be read"
        )
        return
    assert shared is not None
    assert work is not None
    assert maintenance is not None
    assert cache is not None
    total = format_size(memory)
    assessment.measure(
        review.allocation.get("sharedBuffers"),
        round(shared / memory, 4),
        subject=f"{db}: shared_buffers {format_size(shared)} of {review.host}'s {total}",
        action="Set shared_buffers to about a quarter of the host's memory "
        "(ALTER SYSTEM SET shared_buffers = '...'; a restart).",
    )
    worst = shared + work * connections + maintenance * workers
    assessment.measure(
        review.allocation.get("memoryCommitment"),
        round(worst / memory, 4),
        subject=f"{db}: shared_buffers {format_size(shared)} + work_mem {format_size(work)} x "
        f"max_connections {connections} + maintenance_work_mem {format_size(maintenance)} x "
        f"autovacuum_max_workers {workers} = {format_size(worst)} of {review.host}'s {total}",
        action="Lower work_mem or max_connections (put PgBouncer in front), so that every "
        "connection sorting at once cannot exhaust the host's memory.",
    )
    assessment.measure(
        review.allocation.get("effectiveCache"),
        round(cache / memory, 4),
        subject=f"{db}: effective_cache_size {format_size(cache)} of {review.host}'s {total}",
        action="Set effective_cache_size to what the host can really cache (about half to "
        "three quarters of its memory); a larger value misleads the planner.",
    )
