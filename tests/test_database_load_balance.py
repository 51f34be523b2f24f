"""The weekly load-balance check over real local replicas (SandboxApi), end to end."""

from __future__ import annotations

from typing import Any

import pytest

from check_runs import run_checks, run_dirs
from pytest_maintcheck.sandbox import SandboxApi


def run(pytester: pytest.Pytester, *replicas: SandboxApi) -> tuple[dict[str, int], dict[str, Any]]:
    config = {
        "version": 1,
        "system": "test",
        "healthChecks": [
            {
                "service": "ecg-viewer",
                "type": "api",
                "endpoints": [r.url("/health") for r in replicas],
                "samples": 4,
                "timeout": "5s",
            }
        ],
    }
    report_dir = pytester.path / "r"
    checked = run_checks(pytester, config, "test_weekly_load_balance.py", report_dir=report_dir)
    (_one_run,) = run_dirs(report_dir)
    (check,) = checked.check_list
    return checked.result.parseoutcomes(), check


def test_balanced_replicas_pass(pytester: pytest.Pytester, http_api: SandboxApi) -> None:
    with SandboxApi() as twin:
        outcomes, check = run(pytester, http_api, twin)
    assert outcomes == {"passed": 1}
    assert [e["samples"] for e in check["details"]["endpoints"]] == [4, 4]
    assert check["metrics"]["imbalance"] < 0.5


def test_a_slow_replica_is_named(pytester: pytest.Pytester, http_api: SandboxApi) -> None:
    # far over three times the fast replica's p95 even when a loaded machine (make test runs
    # two workers on two cores) delays the fast one's answers by tens of milliseconds
    with SandboxApi(latency_ms=500) as slow:
        slow_url = slow.url("/health")
        outcomes, check = run(pytester, http_api, slow)
    assert outcomes == {"failed": 1}
    assert f"ecg-viewer: {slow_url} p95 " in check["message"]
    assert f"vs {http_api.url('/health')}" in check["message"]
    assert check["metrics"]["imbalance"] > 2.0
    assert check["metrics"]["slowestP95"] >= 500


def test_a_failing_replica_is_named(pytester: pytest.Pytester, http_api: SandboxApi) -> None:
    with SandboxApi(fail_every=2) as flaky:
        flaky_url = flaky.url("/health")
        outcomes, check = run(pytester, http_api, flaky)
    assert outcomes == {"degraded": 1}  # 50%: over the default warn (0), not over fail (50%)
    assert f"replica {flaky_url} error rate 50%" in check["message"]
    assert http_api.url("/health") + " error rate" not in check["message"]


def test_a_dead_replica_is_a_violation(pytester: pytest.Pytester, http_api: SandboxApi) -> None:
    gone = SandboxApi().start()
    url = gone.url("/health")
    gone.stop()
    with SandboxApi() as twin:
        outcomes, check = run(pytester, http_api, twin, _Stopped(url))  # type: ignore[arg-type]
    assert outcomes == {"failed": 1}
    assert f"replica {url} did not answer" in check["message"]


class _Stopped:
    """A replica whose server is gone: only its URL is left."""

    def __init__(self, url: str) -> None:
        self._url = url

    def url(self, _path: str) -> str:
        return self._url
