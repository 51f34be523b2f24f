"""Issue 8 point 29: the fleet probe must not cause what it measures.

Many endpoints on one host used to be probed with so many connections at once that the host's
accept queue overflowed; the SYN retry then added a second to healthy services. Connections
per host:port are bounded now, each sample is timed from its own start, and the servers here
are real listening sockets with a small listen backlog (Python's default of 5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from check_runs import run_checks
from pytest_maintcheck.config import Config, ConfigError, HealthCheck, load_config
from pytest_maintcheck.probes.health import probe_fleet
from pytest_maintcheck.probes.http import DEFAULT_PER_HOST
from pytest_maintcheck.sandbox import SandboxApi

SMALL_BACKLOG = 5  # socketserver's default request_queue_size, and listen(5) in many services


@pytest.fixture
def small_backlog_api() -> Iterator[SandboxApi]:
    with SandboxApi(backlog=SMALL_BACKLOG, latency_ms=30) as api:
        yield api


def checks_on(api: SandboxApi, count: int, samples: int = 3) -> list[HealthCheck]:
    return [
        HealthCheck(f"svc-{i:02d}", "api", (api.url(f"/health?svc={i}"),), samples=samples)
        for i in range(count)
    ]


def test_connections_per_host_never_exceed_the_bound() -> None:
    with SandboxApi(latency_ms=40) as first, SandboxApi(latency_ms=40) as second:
        checks = checks_on(first, 30, samples=2) + [
            HealthCheck(f"other-{i}", "api", (second.url("/health"),), samples=2) for i in range(30)
        ]
        results = asyncio.run(probe_fleet(Config(path=Path("x.yaml")), checks, per_host=4))
        assert all(r.error_rate == 0 for r in results.values())
        for api in (first, second):
            assert api.request_count == 60
            # concurrency really happened, and never past the bound, on each host:port alike
            assert 2 <= api.peak_connections <= 4, api.peak_connections
            assert api.peak_in_flight <= 4


def test_the_default_bound_holds_for_sixty_endpoints_on_one_host(
    small_backlog_api: SandboxApi,
) -> None:
    results = asyncio.run(
        probe_fleet(Config(path=Path("x.yaml")), checks_on(small_backlog_api, 60))
    )
    assert small_backlog_api.request_count == 180
    assert small_backlog_api.peak_connections <= DEFAULT_PER_HOST
    # a dropped SYN is retried after 1 s: no sample of a 30 ms service may come near that
    slowest = max(ms for r in results.values() for ms in r.latencies_ms)
    assert slowest < 900, slowest


def test_sixty_endpoints_behind_a_small_backlog_are_all_healthy(
    pytester: pytest.Pytester, small_backlog_api: SandboxApi
) -> None:
    health = [
        {"service": c.service, "type": "api", "endpoint": c.endpoint, "samples": 3}
        for c in checks_on(small_backlog_api, 60)
    ]
    run = run_checks(
        pytester, {"version": 1, "system": "t", "healthChecks": health}, "test_daily_health.py"
    )
    verdicts = {c["target"]: c["verdict"] for c in run.check_list}
    assert len(verdicts) == 60
    assert set(verdicts.values()) == {"pass"}, {k: v for k, v in verdicts.items() if v != "pass"}
    assert small_backlog_api.peak_connections <= DEFAULT_PER_HOST


def test_the_bound_is_configurable(pytester: pytest.Pytester, tmp_path: Path) -> None:
    with SandboxApi(latency_ms=30) as api:
        health = [
            {"service": c.service, "type": "api", "endpoint": c.endpoint, "samples": 2}
            for c in checks_on(api, 12)
        ]
        cfg = {
            "version": 1,
            "system": "t",
            "healthChecks": health,
            "probing": {"connectionsPerHost": 2, "concurrency": 64},
        }
        run = run_checks(pytester, cfg, "test_daily_health.py")
        assert {c["verdict"] for c in run.check_list} == {"pass"}
        assert 1 <= api.peak_connections <= 2, api.peak_connections


@pytest.mark.parametrize("value", [0, -1, "many"])
def test_a_bad_bound_is_a_config_error(tmp_path: Path, value: object) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(f"version: 1\nprobing:\n  connectionsPerHost: {value}\n")
    with pytest.raises(ConfigError, match="connectionsPerHost"):
        load_config(path)


def test_a_sample_is_timed_from_its_own_start(small_backlog_api: SandboxApi) -> None:
    """With one connection per host, 20 samples queue behind each other; each sample's time
    is its own request's (about the server's 30 ms), not the wait in the queue."""
    results = asyncio.run(
        probe_fleet(
            Config(path=Path("x.yaml")), checks_on(small_backlog_api, 10, samples=2), per_host=1
        )
    )
    latencies = [ms for r in results.values() for ms in r.latencies_ms]
    assert len(latencies) == 20
    assert small_backlog_api.peak_connections == 1
    # queued one after another the last sample waited some 19 x 30 ms = 570 ms
    assert max(latencies) < 400, latencies
