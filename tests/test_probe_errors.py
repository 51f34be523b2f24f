"""Probe errors of the daily and monthly checks are MeasurementErrors with a cause, so a check
lets them escape and the plugin reports "could not measure" (issue 9 point 3)."""

from __future__ import annotations

from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.probes.host_resources import HostProbeError, measure_node_exporter
from pytest_maintcheck.sandbox import free_port
from pytest_maintcheck.verdict import Assessment, Verdict


def test_an_exporter_that_is_not_there_is_could_not_measure_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens: a real refusal
    try:
        measure_node_exporter(url, timeout=2)
    except HostProbeError as exc:
        error: MeasurementError = exc
    else:
        raise AssertionError("a closed port was measured")
    assert error.cause is Cause.REFUSED
    assert error.where == url
    assessment = Assessment()
    assessment.unreached(error.about("db-host"))
    [finding] = assessment.findings
    assert finding.verdict is Verdict.VIOLATION
    assert finding.description.startswith(
        f"db-host: could not measure: connection refused at {url}"
    )
    assert finding.action.startswith(f"Nothing accepts connections at {url}")


def test_a_filesystem_without_an_inode_count_says_not_measured() -> None:
    """Issue 9 point 4: btrfs has no fixed inode table; that is a note, never a silent pass."""
    from pytest_maintcheck.config import Thresholds
    from pytest_maintcheck.config_operations import Host
    from pytest_maintcheck.probes.host_resources import Filesystem, HostResources
    from pytest_maintcheck.rules.hosts import judge_host
    from pytest_maintcheck.verdict import Threshold

    gb = 2**30
    limits = Thresholds((Threshold.parse("usage", 0.9), Threshold.parse("inodeUsage", 0.9)))
    reading = HostResources(
        source="test",
        cores=4,
        load=(0.1, 0.1, 0.1),
        memory_total=16 * gb,
        memory_available=8 * gb,
        swap_total=0,
        swap_free=0,
        filesystems=[Filesystem("/srv", "/dev/sdc1", "btrfs", 100 * gb, 60 * gb, 0, 0)],
    )
    assessment = Assessment()
    judge_host(Host(name="pacs", local=True, thresholds=limits), reading, assessment)
    assert assessment.verdict is Verdict.PASS
    assert assessment.metrics["inodeUsage:/srv"] is None
    assert "pacs:/srv: inodes used not measured: btrfs reports no fixed inode count" in (
        assessment.notes
    )
