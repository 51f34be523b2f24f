"""Daily host resources: CPU load per core, memory, swap, every filesystem's space and inodes.

The machine running the checks is read with psutil (`local: true`); other hosts through their
node_exporter endpoint. The rules are in pytest_maintcheck.rules.hosts.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.config_operations import Host
from pytest_maintcheck.probes.host_resources import HostProbeError, measure_host
from pytest_maintcheck.rules.hosts import judge_host
from pytest_maintcheck.verdict import Assessment

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("host_resources")
def test_host_resources(host: Host, assessment: Assessment) -> None:
    try:
        reading = measure_host(host)
    except HostProbeError as exc:
        assessment.could_not_measure(
            f"{host.name}: {exc}",
            "Check that node_exporter runs and answers on that URL from this machine.",
        )
        return
    judge_host(host, reading, assessment)
