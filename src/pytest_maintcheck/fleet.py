"""The health fleet of a run, probed once: one probe per configured sample, whatever ``-n`` is.

Under pytest-xdist every worker collects the same checks; the first to get here probes the
fleet and leaves the results in the controller's private folder, the others wait on a lock
and read them. The wait is bounded by the probe's own timeouts (per sample, per service).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import Config, HealthCheck
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.probes.health import ServiceResult
from pytest_maintcheck.probes.http import EndpointResult
from pytest_maintcheck.probes.oidc import OidcResult
from pytest_maintcheck.probes.postgres import PingResult
from pytest_maintcheck.probes.storage import StorageResult

FLEET_FILE = "fleet.json"
_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (EndpointResult, OidcResult, PingResult, StorageResult)
}


def selected_services(items: Iterable[Any]) -> list[HealthCheck]:
    """The health checks the selected items are parametrized with, each service once."""
    selected: dict[str, HealthCheck] = {}
    for item in items:
        params = getattr(item, "callspec", None)
        for target in params.params.values() if params else ():
            if isinstance(target, HealthCheck):
                selected[target.service] = target
    return list(selected.values())


def probe_once(
    config: Config, checks: list[HealthCheck], shared: Path | None
) -> dict[str, ServiceResult]:
    """Probe the fleet, or read what another worker of this run probed."""
    if shared is None or not checks:
        return _probe(config, checks)
    import fcntl

    from pytest_maintcheck.report.files import write_atomic

    done = shared / FLEET_FILE
    with (shared / "fleet.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if the prober dies
        if done.is_file():
            return from_json(done.read_text(encoding="utf-8"))
        fleet = _probe(config, checks)
        write_atomic(done, to_json(fleet))
        return fleet


def _probe(config: Config, checks: Sequence[HealthCheck]) -> dict[str, ServiceResult]:
    from pytest_maintcheck.probes.health import probe_fleet_sync

    probing = config.probing
    return probe_fleet_sync(
        config, checks, concurrency=probing.concurrency, per_host=probing.connections_per_host
    )


def to_json(fleet: dict[str, ServiceResult]) -> str:
    return json.dumps(
        {
            service: {
                "problems": result.problems,
                "endpoints": [_endpoint_json(e) for e in result.endpoints],
            }
            for service, result in fleet.items()
        }
    )


def _endpoint_json(endpoint: Any) -> dict[str, Any]:
    """A probe's result as plain JSON; its classified failure (an exception) by its fields."""
    failure = getattr(endpoint, "failure", None)
    if failure is not None:
        endpoint = replace(endpoint, failure=None)
    data: dict[str, Any] = {"kind": type(endpoint).__name__, **asdict(endpoint)}
    if failure is not None:
        data["failure"] = {
            "detail": failure.detail,
            "cause": str(failure.cause),
            "where": failure.where,
            "target": failure.target,
            "status": failure.status,
        }
    return data


def _error_from(data: dict[str, Any]) -> MeasurementError:
    return MeasurementError(
        data["detail"],
        cause=Cause(data["cause"]),
        where=data.get("where"),
        target=data.get("target"),
        status=data.get("status"),
    )


def from_json(text: str) -> dict[str, ServiceResult]:
    fleet: dict[str, ServiceResult] = {}
    for service, data in json.loads(text).items():
        endpoints = []
        for entry in data["endpoints"]:
            cls = _KINDS[entry.pop("kind")]
            if entry.get("failure") is not None:
                entry["failure"] = _error_from(entry["failure"])
            names = {f.name for f in fields(cls)}
            endpoints.append(cls(**{k: v for k, v in entry.items() if k in names}))
        fleet[service] = ServiceResult(service, endpoints, list(data["problems"]))
    return fleet
