"""Daily host resources: this machine through psutil, and a real prometheus-node-exporter
started on 127.0.0.1 (plain and over TLS with a CA made for the test).

Nothing is asserted about this machine's real load or fullness: the two sources are compared
with each other and with the kernel's own numbers, and the rules are judged on readings made
for the test.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from check_runs import run_checks
from pytest_maintcheck.catalogue import CAPACITY
from pytest_maintcheck.config import Thresholds, load_config
from pytest_maintcheck.config_operations import Host
from pytest_maintcheck.probes.host_resources import (
    Filesystem,
    HostProbeError,
    HostResources,
    measure_local,
    measure_node_exporter,
    parse_node_exporter,
)
from pytest_maintcheck.rules.hosts import judge_host
from pytest_maintcheck.sandbox import CertAuthority
from pytest_maintcheck.sandbox.services import NodeExporter
from pytest_maintcheck.verdict import Assessment, Threshold, Verdict

GB = 1000**3


@pytest.fixture(scope="module")
def node_exporter() -> Iterator[NodeExporter]:
    with NodeExporter() as exporter:
        yield exporter


@pytest.fixture(scope="module")
def tls_node_exporter(
    sandbox_ca: CertAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeExporter]:
    cert, key = sandbox_ca.issue(["127.0.0.1"]).write(tmp_path_factory.mktemp("node-tls"))
    with NodeExporter(certfile=cert, keyfile=key) as exporter:
        yield exporter


def root_of(reading: HostResources) -> Filesystem:
    return next(f for f in reading.filesystems if f.mountpoint == "/")


def test_local_reading_matches_the_kernel() -> None:
    reading = measure_local()
    st = os.statvfs("/")
    root = root_of(reading)
    assert root.size_bytes == st.f_blocks * st.f_frsize
    assert root.files == st.f_files
    assert reading.cores == psutil.cpu_count()
    assert reading.memory_total == psutil.virtual_memory().total
    assert 0 <= reading.memory_usage <= 1
    assert all(not m.startswith(("/proc", "/sys", "/dev")) for m in _mounts(reading))
    assert "/" not in _mounts(measure_local(exclude=["/"]))


def _mounts(reading: HostResources) -> list[str]:
    return [f.mountpoint for f in reading.filesystems]


def test_node_exporter_reads_the_same_host(node_exporter: NodeExporter) -> None:
    """Both sources on one machine agree: same cores, memory and root filesystem size."""
    remote = measure_node_exporter(node_exporter.url, timeout=5)
    local = measure_local()
    assert remote.cores == local.cores
    assert remote.memory_total == local.memory_total
    assert root_of(remote).size_bytes == root_of(local).size_bytes
    assert root_of(remote).files == root_of(local).files
    assert remote.source == node_exporter.url


def test_node_exporter_over_tls(tls_node_exporter: NodeExporter, sandbox_ca: CertAuthority,
                                tmp_path: Path) -> None:  # fmt: skip
    ca_file = sandbox_ca.write_ca(tmp_path)
    assert tls_node_exporter.url.startswith("https://")
    reading = measure_node_exporter(tls_node_exporter.url, ca_file=ca_file, timeout=5)
    assert reading.cores == psutil.cpu_count()
    with pytest.raises(HostProbeError, match="TLS certificate not trusted"):
        measure_node_exporter(tls_node_exporter.url, timeout=5)


def test_a_silent_exporter_is_bounded() -> None:
    """A port that accepts and never answers: the request gives up after its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    try:
        with pytest.raises(HostProbeError, match="timed out"):
            measure_node_exporter(
                f"http://127.0.0.1:{server.getsockname()[1]}/metrics", timeout=0.5
            )
    finally:
        for s in [*held, server]:
            s.close()


def test_a_page_that_is_not_node_exporter() -> None:
    with pytest.raises(HostProbeError, match="has no node_load1"):
        parse_node_exporter("# HELP up x\n# TYPE up gauge\nup 1\n", "http://x/metrics")


# ---------------------------------------------------------------------------- rules


def host(**thresholds: object) -> Host:
    parsed = tuple(Threshold.parse(k, v) for k, v in thresholds.items())
    return Host(name="db-host", local=True, thresholds=Thresholds(parsed))


def reading(**over: object) -> HostResources:
    values: dict[str, object] = {
        "source": "test", "cores": 4, "load": (1.0, 2.0, 3.0), "memory_total": 16 * GB,
        "memory_available": 8 * GB, "swap_total": 2 * GB, "swap_free": 2 * GB,
        "filesystems": [
            Filesystem("/", "/dev/sda1", "ext4", 100 * GB, 50 * GB, 1000, 900),
            Filesystem("/var/lib/postgresql", "/dev/sdb1", "xfs", 100 * GB, 4 * GB, 1000, 20),
        ],
    }  # fmt: skip
    values.update(over)
    return HostResources(**values)  # type: ignore[arg-type]


def test_each_filesystem_judged_and_named() -> None:
    made = Assessment()
    judge_host(host(usage={"warn": 0.8, "fail": 0.9}, inodeUsage={"warn": 0.8, "fail": 0.95},
                    cpuLoad={"warn": 1.0, "fail": 2.0}, memory=0.9), reading(), made)  # fmt: skip
    lines = [f"{f.verdict}: {f.description}" for f in made.findings]
    assert lines == [
        "violation: db-host:/var/lib/postgresql (/dev/sdb1, 4.0GB free of 100.0GB): space "
        "used 96% (warn > 80%, fail > 90%)",
        "violation: db-host:/var/lib/postgresql (980 of 1000 inodes): inodes used 98% "
        "(warn > 80%, fail > 95%)",
    ], lines
    assert made.metrics["usage"] == 0.96
    assert made.metrics["usage:/"] == 0.5
    assert made.metrics["cpuLoad"] == 0.5  # 5-minute load 2.0 over 4 cores
    assert made.metrics["memory"] == 0.5
    assert made.metrics["swap"] == 0.0
    assert made.verdict is Verdict.VIOLATION


def test_load_memory_and_swap_crossing_thresholds() -> None:
    made = Assessment()
    busy = reading(load=(9.0, 8.4, 3.0), memory_available=GB, swap_free=0, filesystems=[
        Filesystem("/", "/dev/sda1", "ext4", 100 * GB, 50 * GB, 0, 0)])  # fmt: skip
    judge_host(host(cpuLoad={"warn": 1.0, "fail": 2.0}, memory={"warn": 0.85, "fail": 0.95},
                    swap={"warn": 0.5, "fail": 0.8}), busy, made)  # fmt: skip
    lines = [f"{f.verdict}: {f.description}" for f in made.findings]
    assert lines[0] == (
        "violation: db-host: load 8.40 over 4 cores (1/5/15 min: 9.00 / 8.40 / 3.00): 5-minute "
        "load per core 2.1 (warn > 1, fail > 2)"
    )
    assert lines[1].startswith("degraded: db-host: 15.0GB of 16.0GB in use: memory used 93.8%")
    assert lines[2].startswith("violation: db-host: 2.0GB of 2.0GB swap in use: swap used 100%")
    assert made.metrics["inodeUsage"] is None  # no fixed inode table: nothing to judge


def test_no_swap_is_a_note_not_a_finding() -> None:
    made = Assessment()
    judge_host(host(swap=0.5), reading(swap_total=0, swap_free=0), made)
    assert "db-host has no swap" in made.notes
    assert "swap" not in made.metrics


# ---------------------------------------------------------------------------- end to end


def test_check_end_to_end(pytester: pytest.Pytester, node_exporter: NodeExporter) -> None:
    """A local host, a node_exporter host with a memory level every real host crosses, and a
    host whose exporter is not there."""
    from pytest_maintcheck.sandbox import free_port

    config = {
        "version": 1,
        "hosts": [
            {"name": "runner", "local": True, "thresholds": {"cpuLoad": 10000, "memory": 1.0,
                                                            "usage": 1.0, "inodeUsage": 1.0}},
            {"name": "db-host", "nodeExporter": node_exporter.url,
             "thresholds": {"memory": {"warn": 0.000001}, "cpuLoad": 10000, "usage": 1.0,
                            "inodeUsage": 1.0}},
            {"name": "gone", "nodeExporter": f"http://127.0.0.1:{free_port()}/metrics",
             "timeout": "2s"},
        ],
    }  # fmt: skip
    run = run_checks(pytester, config, "test_daily_hosts.py")
    checks = run.checks
    assert checks["runner"]["verdict"] == "pass", checks["runner"]
    assert checks["runner"]["suite"] == "daily"
    assert {"cpuLoad", "memory", "usage", "usage:/"} <= set(checks["runner"]["metrics"])
    assert checks["db-host"]["verdict"] == "degraded"
    assert "memory used" in checks["db-host"]["message"]
    assert checks["gone"]["verdict"] == "violation"
    assert "connection refused" in checks["gone"]["message"]
    compliance = run.record("compliance.json")
    # both the hosts and history branches added a capacity category; merged as CAPACITY
    capacity = next(c for c in compliance if c["category"] == CAPACITY.name)
    hosts = {c["nodeid"].split("[")[-1].rstrip("]") for c in capacity["checks"]}
    assert hosts == {"runner", "db-host", "gone"}


def test_hosts_config_errors(tmp_path: Path) -> None:
    from pytest_maintcheck.config import ConfigError

    path = tmp_path / "maintcheck.yaml"
    path.write_text("version: 1\nhosts:\n  - {name: a, local: true, nodeExporter: 'http://x/m'}\n")
    with pytest.raises(ConfigError, match="give exactly one of local: true or nodeExporter"):
        load_config(path)
    path.write_text("version: 1\nhosts:\n  - {name: a, local: true, thresholds: {cpuLod: 1}}\n")
    with pytest.raises(ConfigError, match="did you mean 'cpuLoad'"):
        load_config(path)
    path.write_text("version: 1\nhosts:\n  - {name: a, nodeExporter: 'https://u:pw@h:9100/m'}\n")
    with pytest.raises(ConfigError, match="a password is written in the URL"):
        load_config(path)
    path.write_text("version: 1\nhosts:\n  - {name: a, local: true}\n")
    loaded = load_config(path).hosts[0]
    memory = loaded.thresholds.get("memory")
    assert memory is not None
    assert (memory.warn, memory.fail) == (0.85, 0.95)
