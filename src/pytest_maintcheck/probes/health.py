"""Probe every selected health check at once: HTTP in asyncio, blocking probes in threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pytest_maintcheck import progress
from pytest_maintcheck.config import Config, HealthCheck
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.probes.http import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_HOST,
    ClientPool,
    ConnectionGates,
    EndpointResult,
    sample_endpoint,
)
from pytest_maintcheck.probes.oidc import probe_oidc
from pytest_maintcheck.probes.postgres import ping, server_address
from pytest_maintcheck.probes.storage import StorageResult, probe_storage
from pytest_maintcheck.probes.timing import p95
from pytest_maintcheck.redact import printable

T = TypeVar("T")


@dataclass
class ServiceResult:
    """All endpoints of one health check, and the per-type extras."""

    service: str
    endpoints: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def latencies_ms(self) -> list[float]:
        return [ms for e in self.endpoints for ms in e.latencies_ms]

    @property
    def errors(self) -> list[str]:
        return [err for e in self.endpoints for err in e.errors]

    @property
    def samples(self) -> int:
        return sum(e.samples for e in self.endpoints)

    @property
    def p95_ms(self) -> float | None:
        return p95(self.latencies_ms)

    @property
    def error_rate(self) -> float:
        return len(self.errors) / self.samples if self.samples else 1.0

    @property
    def reachable(self) -> bool:
        return bool(self.latencies_ms)

    @property
    def response_time_ms(self) -> float | None:
        """p95 of the answers; with none, p95 of the time until each sample failed or timed
        out (so SystemHealthCheck.metrics.responseTime is a number for a service down too)."""
        if self.latencies_ms:
            return self.p95_ms
        return p95([ms for e in self.endpoints for ms in getattr(e, "failed_ms", ())])

    @property
    def version(self) -> str | None:
        """The running version its endpoints reported (replicas that differ: each, sorted)."""
        seen = sorted({v for e in self.endpoints if (v := getattr(e, "version", None))})
        return " / ".join(seen) if seen else None

    @property
    def version_problems(self) -> list[str]:
        return [p for e in self.endpoints if (p := getattr(e, "version_problem", None))]

    def failure(self) -> MeasurementError:
        """Why nothing answered: the first endpoint's first classified failure, about us."""
        found = next((e.failure for e in self.endpoints if getattr(e, "failure", None)), None)
        if found is None:
            reasons = "; ".join(sorted(set(self.errors))[:3]) or "no answer"
            found = MeasurementError(reasons)
        return found.about(self.service)


def _dsn(config: Config, endpoint: str) -> str:
    return config.databases[endpoint].dsn if endpoint in config.databases else endpoint


async def probe_fleet(
    config: Config,
    checks: Sequence[HealthCheck],
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int = DEFAULT_PER_HOST,
) -> dict[str, ServiceResult]:
    """One result per service; every endpoint of every service probed concurrently, with at
    most ``per_host`` connections to one host:port and ``concurrency`` probes in flight."""
    pool = ClientPool(keepalive=per_host)
    gates = ConnectionGates(per_host=per_host, total=concurrency)
    jobs: list[Callable[[], Awaitable[Any]]] = []
    owners: list[str] = []
    results = {check.service: ServiceResult(check.service) for check in checks}
    for check in checks:
        for endpoint in check.endpoints:
            owners.append(check.service)
            jobs.append(_job(config, pool, gates, check, endpoint))
    try:
        with progress.task(f"probing {len(results)} service(s)", total=len(jobs)) as shown:
            outcomes = await asyncio.gather(*(progress.counted(j, shown)() for j in jobs))
        for service, outcome in zip(owners, outcomes, strict=True):
            results[service].endpoints.append(outcome)
            results[service].problems.extend(getattr(outcome, "problems", []))
    finally:
        await pool.aclose()
    return results


def _job(
    config: Config, pool: ClientPool, gates: ConnectionGates, check: HealthCheck, endpoint: str
) -> Callable[[], Awaitable[Any]]:
    shown = printable(endpoint, 200)

    async def guarded() -> Any:
        started = time.perf_counter()
        try:
            return await run()
        except Exception as exc:  # noqa: BLE001 - one odd endpoint must not sink the fleet
            failed = EndpointResult(shown, samples=check.samples)
            error = MeasurementError(
                f"probe failed: {type(exc).__name__}: {printable(exc, 120)}", where=shown
            )
            for _ in range(check.samples):
                failed.add_failure((time.perf_counter() - started) * 1000, error)
            return failed

    async def run() -> Any:
        if check.type in ("api", "authentication"):
            try:
                client = pool.get(check.ca_file, endpoint)
            except OSError as exc:
                failed = EndpointResult(shown, samples=check.samples)
                detail = f"caFile {printable(check.ca_file)} unusable: {exc.strerror or exc}"
                failed.add_failure(None, MeasurementError(detail, cause=Cause.TLS_FAILED))
                return failed
            if check.type == "api":
                return await sample_endpoint(
                    client, endpoint, check.samples, check.timeout, gates, check.version_pointer
                )
            return await probe_oidc(client, endpoint, check.samples, check.timeout, gates)
        if check.type == "database":
            dsn = _dsn(config, endpoint)
            async with gates.slot(server_address(dsn)):
                return await _bounded(check, shown, ping, dsn, check.samples, check.timeout)
        async with gates.slot(None):
            return await _bounded(check, shown, probe_storage, Path(endpoint), check.samples)

    return guarded


async def _bounded(check: HealthCheck, shown: str, func: Callable[..., T], *args: Any) -> Any:
    """A blocking probe in a daemon thread, given up after its samples' timeouts and a grace:
    a hung NFS mount or server must not hang the run."""
    bound = check.timeout * check.samples + 5
    try:
        return await asyncio.wait_for(in_daemon_thread(func, *args), bound)
    except TimeoutError:
        stuck = StorageResult(shown, samples=check.samples)
        error = MeasurementError(
            f"{check.type} probe timed out after {check.timeout:g}s",
            cause=Cause.TIMED_OUT,
            where=shown,
        )
        for _ in range(check.samples):
            stuck.add_failure(bound * 1000, error)
        return stuck


async def in_daemon_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a daemon thread. Not asyncio.to_thread: asyncio.run joins its pool
    at the end, and the interpreter joins it at exit, so one probe stuck in a hung NFS mount
    would hold the whole run long after its timeout."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, failed: bool) -> None:
        if not future.done():  # cancelled by wait_for: nobody waits any more
            (future.set_exception if failed else future.set_result)(value)

    def work() -> None:
        value: object
        try:
            value, failed = func(*args), False
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            value, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop closed while we were stuck
            loop.call_soon_threadsafe(settle, value, failed)

    threading.Thread(target=work, name="maintcheck-probe", daemon=True).start()
    return await future


def probe_fleet_sync(
    config: Config,
    checks: Sequence[HealthCheck],
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int = DEFAULT_PER_HOST,
) -> dict[str, ServiceResult]:
    return asyncio.run(probe_fleet(config, checks, concurrency, per_host))
