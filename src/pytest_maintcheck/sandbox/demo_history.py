"""Thirty days of made-up earlier runs for the demo, so index.html has trends to draw.

Only when the report folder holds no run of the demo system yet. Each is a run folder with a
MaintenanceLog marked ``seeded: true`` and a results.json of daily health checks and the
database size: what the charts read. The index names them "demo history"; they have no
report.html. Values are deterministic (a seeded generator), not measured.
"""

from __future__ import annotations

import json
import os
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_maintcheck.catalogue import CHECKS
from pytest_maintcheck.records import counts, iso
from pytest_maintcheck.report.files import FILE_MODE, dir_mode, run_folders, write_atomic
from pytest_maintcheck.report.index import history_lock, record_history

DAYS = 30
_P95 = {"clinical-api": 95.0, "clinical-db": 30.0, "ecg-storage": 15.0, "sso": 90.0}


def seed_history(
    report_dir: Path, system: str, environment: str, services: list[str], now: datetime
) -> int:
    """Write the runs unless the folder already has one of this system; how many were written."""
    for folder in run_folders(report_dir):
        try:
            log = json.loads((folder / "maintenance-log.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if log.get("system") == system and log.get("environment") == environment:
            return 0
    report_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261101)  # noqa: S311 - made-up chart data, not a secret
    written = 0
    for back in range(DAYS, 0, -1):
        day = (now - timedelta(days=back)).replace(hour=6, minute=15, second=0, microsecond=0)
        checks = _checks(rng, services, back, day)
        run_id = day.strftime("%Y%m%dT%H%M%S.000Z-") + f"seed{back:02d}"
        records = _records(run_id, system, environment, day, checks)
        folder = report_dir / run_id
        folder.mkdir(mode=dir_mode(FILE_MODE))
        os.chmod(folder, dir_mode(FILE_MODE))
        for name, content in records.items():
            write_atomic(folder / name, json.dumps(content, indent=2) + "\n")
        with history_lock(report_dir):
            record_history(report_dir, folder, records)
        written += 1
    return written


def _checks(
    rng: random.Random, services: list[str], back: int, day: datetime
) -> list[dict[str, Any]]:
    out = []
    for service in services:
        p95 = _P95.get(service, 60.0) * rng.uniform(0.8, 1.3)
        verdict = "pass"
        if service == "ecg-viewer":
            p95 = rng.uniform(110, 220)
            verdict = "degraded"
        if service == "clinical-api" and back in (17, 9):  # two outages in the month
            p95, verdict = 5000.0, "violation"
        metrics: dict[str, Any] = {"responseTime": round(p95, 1), "errorRate": 0.0, "uptime": 1.0}
        thresholds: dict[str, Any] = {
            "responseTime": {"warn": 300.0, "fail": 800.0, "higherIsWorse": True, "unit": "ms"}
        }
        if service == "clinical-api":
            thresholds["availability"] = {
                "warn": None, "fail": 0.99, "higherIsWorse": False, "unit": "ratio"
            }  # fmt: skip
        if service == "ecg-storage":
            metrics["usage"] = round(0.52 + 0.006 * (DAYS - back) + rng.uniform(-0.004, 0.004), 4)
            thresholds["usage"] = {
                "warn": 0.95,
                "fail": 0.99,
                "higherIsWorse": True,
                "unit": "ratio",
            }
        out.append(_result("health", service, verdict, metrics, thresholds, day))
    size = int(6_200_000 + 140_000 * (DAYS - back) + rng.uniform(-40_000, 40_000))
    limits = {"size": {"warn": 50e9, "fail": 80e9, "higherIsWorse": True, "unit": "bytes"}}
    out.append(_result("database_size", "primary", "pass", {"size": size}, limits, day))
    return out


def _result(
    key: str,
    target: str,
    verdict: str,
    metrics: dict[str, Any],
    thresholds: dict[str, Any],
    day: datetime,
) -> dict[str, Any]:
    spec = CHECKS[key]
    test = "test_health" if key == "health" else f"test_{key}"
    module = "test_daily_health.py" if key == "health" else "test_weekly_database.py"
    findings = []
    if verdict != "pass":
        findings.append(
            {
                "verdict": verdict,
                "description": f"{target}: p95 response time {metrics['responseTime']:.0f} ms",
                "action": spec.action,
            }
        )
    return {
        "nodeid": f"{module}::{test}[{target}]",
        "name": f"{test}[{target}]",
        "check": key,
        "title": spec.title,
        "suite": spec.suite,
        "target": target,
        "verdict": verdict,
        "severity": spec.severity,
        "category": spec.category.name,
        "requirements": list(spec.category.requirements),
        "incidentType": spec.incident_type,
        "metrics": metrics,
        "thresholds": thresholds,
        "findings": findings,
        "details": {},
        "message": findings[0]["description"] if findings else "",
        "duration": 0.1,
        "phase": "call",
        "finishedAt": iso(day + timedelta(seconds=5)),
        "waived": False,
        "waiver": None,
    }


def _records(
    run_id: str, system: str, environment: str, day: datetime, checks: list[dict[str, Any]]
) -> dict[str, Any]:
    tally = counts(checks)
    log = {
        "taskId": run_id,
        "type": "routine",
        "performed": {"by": "maintcheck demo (made-up history)", "at": iso(day), "duration": 5.0},
        "details": {"actions": [], "findings": [], "followUp": []},
        "status": "completed",
        "system": system,
        "environment": environment,
        "suites": ["daily", "weekly"],
        "counts": tally,
        "notConfigured": [],
        "seeded": True,
    }
    results = {
        "runId": run_id,
        "system": system,
        "environment": environment,
        "startedAt": iso(day),
        "finishedAt": iso(day + timedelta(seconds=5)),
        "counts": tally,
        "crashed": [],
        "checks": checks,
    }
    return {"maintenance-log.json": log, "results.json": results}
