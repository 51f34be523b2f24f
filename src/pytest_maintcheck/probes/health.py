"""Probe every selected health check at once: HTTP in asyncio, blocking probes in threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pytest_maintcheck import progress
from pytest_maintcheck.config import Config, HealthCheck
from pytest_maintcheck.probes.http import (
    DEFAULT_CONCURRENCY,
    ClientPool,
    EndpointResult,
    gather_limited,
    sample_endpoint,
)
from pytest_maintcheck.probes.oidc import probe_oidc
from pytest_maintcheck.probes.postgres import ping
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


def _dsn(config: Config, endpoint: str) -> str:
    return config.databases[endpoint].dsn if endpoint in config.databases else endpoint


async def probe_fleet(
    config: Config, checks: Sequence[HealthCheck], concurrency: int = DEFAULT_CONCURRENCY
) -> dict[str, ServiceResult]:
    """One result per service; every endpoint of every service probed concurrently."""
    pool = ClientPool()
    jobs: list[Callable[[], Awaitable[Any]]] = []
    owners: list[str] = []
    results = {check.service: ServiceResult(check.service) for check in checks}
    for check in checks:
        for endpoint in check.endpoints:
            owners.append(check.service)
            jobs.append(_job(config, pool, check, endpoint))
    try:
        with progress.task(f"probing {len(results)} service(s)", total=len(jobs)) as shown:
            outcomes = await gather_limited([progress.counted(j, shown) for j in jobs], concurrency)
        for service, outcome in zip(owners, outcomes, strict=True):
            results[service].endpoints.append(outcome)
            results[service].problems.extend(getattr(outcome, "problems", []))
    finally:
        await pool.aclose()
    return results


def _job(
    config: Config, pool: ClientPool, check: HealthCheck, endpoint: str
) -> Callable[[], Awaitable[Any]]:
    async def guarded() -> Any:
        try:
            return await run()
        except Exception as exc:  # noqa: BLE001 - one odd endpoint must not sink the fleet
            failed = EndpointResult(endpoint, samples=check.samples)
            reason = f"probe failed: {type(exc).__name__}: {printable(exc, 120)}"
            failed.errors = [reason] * check.samples
            return failed

    async def run() -> Any:
        if check.type in ("api", "authentication"):
            try:
                client = pool.get(check.ca_file)
            except OSError as exc:
                failed = EndpointResult(endpoint, samples=check.samples)
                failed.errors = [f"caFile {check.ca_file} unusable: {exc.strerror or exc}"]
                return failed
            if check.type == "api":
                return await sample_endpoint(client, endpoint, check.samples, check.timeout)
            return await probe_oidc(client, endpoint, check.samples, check.timeout)
        work: Awaitable[Any]
        if check.type == "database":
            work = in_daemon_thread(ping, _dsn(config, endpoint), check.samples, check.timeout)
        else:
            work = in_daemon_thread(probe_storage, Path(endpoint), check.samples)
        try:
            # a hung NFS mount or server must not hang the run
            return await asyncio.wait_for(work, check.timeout * check.samples + 5)
        except TimeoutError:
            stuck = StorageResult(endpoint, samples=check.samples)
            stuck.errors = [
                f"{check.type} probe timed out after {check.timeout:g}s"
            ] * check.samples
            return stuck

    return guarded


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


def probe_fleet_sync(config: Config, checks: Sequence[HealthCheck]) -> dict[str, ServiceResult]:
    return asyncio.run(probe_fleet(config, checks))
