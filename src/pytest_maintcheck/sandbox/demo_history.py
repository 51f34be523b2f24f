"""A few weeks of history for the demo, so its first run already shows uptime over a window,
a performance trend and growth projections.

The seeded series end at what the sandbox really measures today (the storage folder's usage,
the clinical database's size, the runner's filesystems and memory), so the projections continue
the real figures. Kept under the demo's own system and environment, and seeded only while the
window holds too few runs.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import HistoryUnavailable, iso, using
from pytest_maintcheck.history.capacity import HOST_CHECK
from pytest_maintcheck.history.store import StoredCheck, StoredRun
from pytest_maintcheck.history.trends import MIN_RUNS
from pytest_maintcheck.probes.host_resources import measure_local

DAYS = 21
HOST_FILL_DAYS = 120  # the report folder's filesystem reaches the runner's usage fail level then


def seed_demo_history(
    config: dict[str, Any], report_dir: Path, size_bytes: int | None, now: datetime | None = None
) -> int:
    """Runs written (0 when the demo's window already holds enough); never raises."""
    now = now or datetime.now(UTC)
    system, env = config["system"], config["environment"]
    try:
        with using(HistorySettings(), report_dir) as store:
            earlier = store.points(system, env, iso(now - timedelta(days=30)), ["health"])
            if len({p.run_id for p in earlier}) >= MIN_RUNS:
                return 0
            return store.record_runs(_runs(config, size_bytes, now, report_dir))
    except HistoryUnavailable as exc:
        print(f"maintcheck demo: no history seeded ({exc})", flush=True)
        return 0


def _runs(
    config: dict[str, Any], size_bytes: int | None, now: datetime, report_dir: Path
) -> list[StoredRun]:
    rng = random.Random(20261001)  # noqa: S311 (made-up latencies: the same every time)
    services = {h["service"]: h for h in config.get("healthChecks", [])}
    usage = _usage(services.get("ecg-storage"))
    host = _local_host(config, report_dir)
    runs = []
    for ago in range(DAYS, 0, -1):
        at = iso(now - timedelta(days=ago, minutes=rng.randint(0, 20)))
        checks = [
            _health("clinical-api", at, 5, 0.2 if ago == 9 else 0.0, 4 + rng.random() * 3),
            _health("clinical-db", at, 1, 0.0, 2 + rng.random()),
            _health("sso", at, 3, 0.0, 5 + rng.random() * 2),
            # the slow replica crept up over the last days: the monthly review's trend
            _health("ecg-viewer", at, 6, 0.0, (125.0 if ago == 1 else 60 + rng.random() * 8)),
        ]
        if usage is not None:
            # growing so that the folder fills up 60 days from today
            filled = usage - (1 - usage) / 60 * ago
            checks.append(_health("ecg-storage", at, 1, 0.0, 3.0, usage=max(filled, 0.0)))
        if host is not None:
            checks.append(host.reading(at, ago))
        if size_bytes is not None:
            size = size_bytes * (1 - 0.01 * ago)  # about 1% a day
            checks.append(StoredCheck("database_size", "primary", at, "pass",
                                      measurements={"size": round(size)}))  # fmt: skip
            checks.append(
                StoredCheck("connections", "primary", at, "pass",
                            measurements={"connections": float(rng.randint(3, 9)),
                                          "activeSessions": float(rng.randint(1, 3))})
            )  # fmt: skip
        runs.append(
            StoredRun(
                run_id=f"{at}-demo-seed-{ago:02d}", system=config["system"],
                environment=config["environment"], host="demo-seed", started_at=at,
                finished_at=at, status="completed", suites=("daily",), source="demo-seed",
                checks=tuple(checks),
            )
        )  # fmt: skip
    return runs


def _health(
    service: str, at: str, samples: int, error_rate: float, p95: float, **extra: float
) -> StoredCheck:
    verdict = "pass" if error_rate == 0 else "degraded"
    return StoredCheck("health", service, at, verdict, measurements={
        "samples": float(samples), "errorRate": error_rate, "responseTime": round(p95, 1),
        **extra})  # fmt: skip


def _usage(storage: dict[str, Any] | None) -> float | None:
    if storage is None:
        return None
    try:
        st = os.statvfs(storage["endpoint"])
    except OSError:
        return None
    return 1 - st.f_bavail / st.f_blocks if st.f_blocks else None


@dataclass(frozen=True)
class _LocalHost:
    """The demo's local hosts entry as measured now: the folder the demo writes to grows."""

    name: str
    usage: dict[str, float]  # per mount point, today
    growing: str  # the mount holding the report folder
    per_day: float
    memory: float

    def reading(self, at: str, ago: int) -> StoredCheck:
        usage = {
            # the newest seeded run (a day ago) reads what the runner measures today
            m: max(u - (self.per_day * (ago - 1) if m == self.growing else 0.0), 0.0)
            for m, u in self.usage.items()
        }
        measured = {f"usage:{m}": round(u, 4) for m, u in usage.items()}
        measured.update(usage=max(measured.values()), memory=round(self.memory, 4))
        return StoredCheck(HOST_CHECK, self.name, at, "pass", measurements=measured)


def _local_host(config: dict[str, Any], report_dir: Path) -> _LocalHost | None:
    """The local hosts entry's filesystems and memory as the daily check reads them today."""
    entry = next((h for h in config.get("hosts", []) if h.get("local")), None)
    if entry is None:
        return None
    reading = measure_local(entry.get("excludeMounts", ()))
    usage = {f.mountpoint: f.usage for f in reading.filesystems}
    if not usage:
        return None
    where = str(report_dir.resolve())
    growing = max(
        (m for m in usage if where == m or where.startswith(m.rstrip("/") + "/")),
        key=len,
        default=min(usage),
    )
    fail = (entry.get("thresholds") or {}).get("usage", {"fail": 0.9})
    limit = fail.get("fail", 1.0) if isinstance(fail, dict) else float(fail)
    per_day = max(limit - usage[growing], 0.0) / HOST_FILL_DAYS
    return _LocalHost(entry["name"], usage, growing, per_day, reading.memory_usage)
