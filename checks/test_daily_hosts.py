"""Daily host resources: CPU load per core, memory, swap, every filesystem's space and inodes.

The machine running the checks is read with psutil (`local: true`); other hosts through their
node_exporter endpoint. The rules are in pytest_maintcheck.rules.hosts; an exporter that does
not answer is "could not measure", with its cause.
"""

from __future__ import annotations

import pytest

from pytest_maintcheck.api import Assessment, Host, judge_host, measure_host

pytestmark = pytest.mark.daily


@pytest.mark.maintcheck("host_resources")
def test_host_resources(host: Host, assessment: Assessment) -> None:
    judge_host(host, measure_host(host), assessment)
