"""Benchmark: a fleet probed concurrently, and what the plugin costs per check.

    .venv/bin/python bench/fleet.py [--endpoints 1000] [--hosts 20] [--samples 3]
                                    [--latency-ms 200] [--backlog 128] [--checks 2000]
                                    [--repeat 3] [--skip-overhead]

1. Fleet: N endpoints spread over ``hosts`` local sandbox APIs (one host:port each, listen
   backlog ``backlog``, served from a child process) that answer every request after
   ``latency-ms``, ``samples`` requests each. Timed three ways: ``probe_fleet`` called directly,
   a real ``pytest -m daily`` run of ``checks/test_daily_health.py`` on a generated config with
   N healthChecks (start-up, records and HTML included), and, for comparison, a 16-way
   parallel loop of one-shot probes (a new connection per request, as a shell loop of curl
   would). Each against the sequential sum of latencies; goal for the fleet probe: at most
   0.015 of it. The peak of connections open at once to one host:port is printed too.
2. Overhead: ``checks`` trivial parametrized checks (``@pytest.mark.maintcheck`` + the
   ``assessment`` fixture) with the plugin on, records and HTML written, against the same run
   with ``-p no:maintcheck``; goal: under 1.5x. Runs alternate and the median is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from pytest_maintcheck.config import Config, HealthCheck
from pytest_maintcheck.probes.health import probe_fleet_sync
from pytest_maintcheck.probes.http import DEFAULT_PER_HOST
from pytest_maintcheck.sandbox import SandboxApi

REPO = Path(__file__).resolve().parents[1]
DAILY_CHECKS = REPO / "checks" / "test_daily_health.py"
FLEET_GOAL = 0.015
ONE_SHOT_WORKERS = 16
OVERHEAD_GOAL = 1.5

# Without the plugin (-p no:maintcheck) the marker and the fixture do not exist: a stand-in
# provides both, so the two runs collect and run the same checks doing the same judging.
TRIVIAL_CONFTEST = """
import pytest


class PluginOff:
    @pytest.fixture
    def assessment(self):
        from pytest_maintcheck.verdict import Assessment

        return Assessment()


def pytest_configure(config):
    if not config.pluginmanager.hasplugin("maintcheck"):
        config.addinivalue_line("markers", "maintcheck(key): stand-in, plugin off")
        config.pluginmanager.register(PluginOff(), "maintcheck-off")
"""

TRIVIAL_CHECKS = """
import os

import pytest

from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold("responseTime", warn=1000.0, fail=5000.0)


@pytest.mark.maintcheck("health")
@pytest.mark.parametrize("value", range(int(os.environ["BENCH_CHECKS"])))
def test_trivial(value, assessment):
    assessment.measure(LIMIT, float(value % 900), subject=f"case-{value}")
"""


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run pytest; its wall time, its CPU time (steadier on a busy machine) and summary line."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"benchmark run failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr}")
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return elapsed, cpu, last


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# ---------------------------------------------------------------------------- fleet


class Hosts:
    """``count`` sandbox APIs served from a child process, as a fleet runs on other machines:
    their threads must not compete with the probe for this interpreter's GIL."""

    def __init__(self, count: int, latency_ms: int, backlog: int) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.Process(
            target=_serve, args=(child, count, latency_ms, backlog), daemon=True
        )
        self._proc.start()
        self.ports: list[int] = self._conn.recv()

    def url(self, i: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[i % len(self.ports)]}{path}"

    def stats(self) -> tuple[int, int]:
        """(requests answered, peak connections open at once to one host:port)."""
        self._conn.send("stats")
        requests, peak = self._conn.recv()
        return int(requests), int(peak)

    def close(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)


def _serve(conn: Connection, count: int, latency_ms: int, backlog: int) -> None:
    with contextlib.ExitStack() as stack:
        apis = [
            stack.enter_context(SandboxApi(latency_ms=latency_ms, backlog=backlog))
            for _ in range(count)
        ]
        conn.send([api.port for api in apis])
        while conn.recv() == "stats":
            conn.send((sum(a.request_count for a in apis), max(a.peak_connections for a in apis)))


def one_shot_loop(urls: list[str], samples: int) -> tuple[float, int]:
    """Every sample its own request on a new connection, 16 at a time: (seconds, errors)."""

    def probe(url: str) -> bool:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.netloc, timeout=10)
        try:
            conn.request("GET", f"{parts.path}?{parts.query}")
            return conn.getresponse().status < 400
        except OSError:
            return False
        finally:
            conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(ONE_SHOT_WORKERS) as pool:
        answers = list(pool.map(probe, [u for u in urls for _ in range(samples)]))
    return time.perf_counter() - started, answers.count(False)


def bench_fleet(
    endpoints: int, hosts: int, samples: int, latency_ms: int, backlog: int, workdir: Path
) -> None:
    sequential = endpoints * samples * latency_ms / 1000
    print(
        f"fleet: {endpoints} endpoints on {hosts} hosts x {samples} samples x {latency_ms} ms "
        f"= {sequential:.1f} s one after another (listen backlog {backlog}, "
        f"{DEFAULT_PER_HOST} connections per host)"
    )
    fleet = Hosts(hosts, latency_ms, backlog)
    try:
        urls = [fleet.url(i, f"/health?endpoint={i}") for i in range(endpoints)]
        checks = [
            HealthCheck(f"api-{i:04d}", "api", (url,), samples=samples, timeout=5.0)
            for i, url in enumerate(urls)
        ]
        started = time.perf_counter()
        results = probe_fleet_sync(Config(path=workdir / "maintcheck.yaml"), checks)
        direct = time.perf_counter() - started
        errors = sum(len(r.errors) for r in results.values())
        requests, peak = fleet.stats()
        print(
            f"  probe_fleet, direct          {direct:6.2f} s  = {direct / sequential:.4f} of "
            f"sequential  {verdict(direct / sequential <= FLEET_GOAL)}  "
            f"[{requests} requests, {errors} errors, peak {peak} connections per host]"
        )

        config = workdir / "maintcheck.yaml"
        health = [
            {"service": c.service, "type": "api", "endpoint": c.endpoint, "samples": samples}
            for c in checks
        ]
        config.write_text(yaml.safe_dump({"version": 1, "system": "bench", "healthChecks": health}))
        wall, _cpu, summary = run_timed(
            pytest_cmd(
                str(DAILY_CHECKS),
                "-m",
                "daily",
                "--maintcheck-config",
                str(config),
                "--maintcheck-report-dir",
                str(workdir / "reports"),
                "--rootdir",
                str(workdir),
            ),
            workdir,
            dict(os.environ),
        )
        after, peak = fleet.stats()
        print(
            f"  pytest -m daily, whole run   {wall:6.2f} s  = {wall / sequential:.4f} of "
            f"sequential  [{after - requests} requests, peak {peak} per host; {summary}]"
        )

        loop, loop_errors = one_shot_loop(urls, samples)
        print(
            f"  {ONE_SHOT_WORKERS}-way one-shot loop        {loop:6.2f} s  = "
            f"{loop / sequential:.4f} of sequential  [{loop_errors} errors]"
        )
        print(
            f"  against the {ONE_SHOT_WORKERS}-way loop: probe_fleet {direct / loop:.3f}x, "
            f"pytest run {wall / loop:.3f}x"
        )
    finally:
        fleet.close()


# ---------------------------------------------------------------------------- overhead


def bench_overhead(checks: int, repeat: int, workdir: Path) -> None:
    print(f"overhead: {checks} trivial parametrized checks, median of {repeat} runs each")
    (workdir / "conftest.py").write_text(textwrap.dedent(TRIVIAL_CONFTEST))
    (workdir / "test_trivial.py").write_text(textwrap.dedent(TRIVIAL_CHECKS))
    (workdir / "maintcheck.yaml").write_text("version: 1\nsystem: bench\n")
    env = {**os.environ, "BENCH_CHECKS": str(checks)}
    base = pytest_cmd("test_trivial.py", "--rootdir", str(workdir))
    off: list[tuple[float, float, str]] = []
    on: list[tuple[float, float, str]] = []
    for _ in range(repeat):  # alternate, so drift in the machine hits both alike
        off.append(run_timed([*base, "-p", "no:maintcheck"], workdir, env))
        on.append(run_timed(base, workdir, env))
    runs = sorted(p for p in (workdir / "reports").iterdir() if p.is_dir())
    results = json.loads((runs[-1] / "results.json").read_text())
    page = runs[-1] / "report.html"
    if len(results["checks"]) != checks or not page.is_file():
        sys.exit("the plugin run wrote no records or no report.html: nothing was measured")
    wall_off, wall_on = (statistics.median(r[0] for r in runs_) for runs_ in (off, on))
    cpu_off, cpu_on = (statistics.median(r[1] for r in runs_) for runs_ in (off, on))
    print(f"  -p no:maintcheck             {wall_off:6.2f} s wall  {cpu_off:6.2f} s CPU")
    print(
        f"  plugin on, records + HTML    {wall_on:6.2f} s wall  {cpu_on:6.2f} s CPU  "
        f"[{len(results['checks'])} results, report.html {page.stat().st_size // 1024} kB]"
    )
    for label, ratio in (("wall", wall_on / wall_off), ("CPU", cpu_on / cpu_off)):
        print(
            f"  ratio, {label:<4}                  {ratio:6.2f}x  (goal < {OVERHEAD_GOAL}x)  "
            f"{verdict(ratio < OVERHEAD_GOAL)}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20, help="host:ports the endpoints share")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=128, help="each host's listen backlog")
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="overhead runs per side")
    parser.add_argument("--skip-overhead", action="store_true", help="the fleet part only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="maintcheck-bench-") as tmp:
        fleet_dir, overhead_dir = Path(tmp) / "fleet", Path(tmp) / "overhead"
        fleet_dir.mkdir()
        overhead_dir.mkdir()
        bench_fleet(
            args.endpoints,
            max(1, args.hosts),
            args.samples,
            args.latency_ms,
            args.backlog,
            fleet_dir,
        )
        if not args.skip_overhead:
            bench_overhead(args.checks, max(1, args.repeat), overhead_dir)


if __name__ == "__main__":
    main()
