"""Review finding: a probe stuck in the kernel must not hold up the run after its timeout.

A hung NFS mount (statvfs or open never returning) cannot be produced here without root and
an NFS server, so the storage probe is replaced by one that blocks until released: that is the
only mock, and it stands for exactly that fault.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pytest_maintcheck.config import Config, HealthCheck
from pytest_maintcheck.probes import health
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.probes.storage import StorageResult

LIVENESS = 30.0  # far above the probe's own bound (0.2 s + 5 s): only a hang can exceed it


def test_a_hung_mount_times_out_and_the_fleet_returns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    released = threading.Event()

    def hung_mount(path: Path, samples: int = 1) -> StorageResult:
        released.wait()  # the kernel never answers
        return StorageResult(str(path))

    monkeypatch.setattr(health, "probe_storage", hung_mount)
    check = HealthCheck("ecg-storage", "storage", (str(tmp_path),), samples=1, timeout=0.2)
    got: list[dict[str, ServiceResult]] = []
    runner = threading.Thread(
        target=lambda: got.append(health.probe_fleet_sync(Config(path=tmp_path), [check])),
        daemon=True,
    )
    try:
        runner.start()
        # asyncio.run once joined the default executor, so the stuck thread held it forever
        runner.join(LIVENESS)
        assert not runner.is_alive(), "probe_fleet_sync is still waiting for the hung probe"
    finally:
        released.set()
    (result,) = got[0].values()
    assert result.errors == ["storage probe timed out after 0.2s"]
