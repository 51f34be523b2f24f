"""Check results to the seed's records: MaintenanceLog, SystemHealthCheck, DatabaseMaintenance,
ComplianceCheck and IncidentResponse. Pure data in, pure data out: no server, no file.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_maintcheck.catalogue import (
    CHECKS,
    DATABASE,
    RECOVERY_STEPS,
    SEVERITIES,
    Category,
    CheckSpec,
    finding_severity,
)
from pytest_maintcheck.config import Config
from pytest_maintcheck.result import CheckResult, Outcome

HEALTH_STATUS = {"pass": "healthy", "degraded": "degraded", "violation": "down", "error": "down"}
COMPLIANCE_STATUS = {
    "pass": "compliant",
    "degraded": "warning",
    "violation": "violation",
    "error": "violation",
}
_ORDER = {"compliant": 0, "warning": 1, "violation": 2}


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def performed_by() -> str:
    """Who ran it: MAINTCHECK_OPERATOR when cron runs as a service account, else user@host."""
    import os

    operator = os.environ.get("MAINTCHECK_OPERATOR")
    if operator:
        return operator
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def build_records(
    config: Config,
    results: Iterable[CheckResult],
    *,
    run_id: str,
    started: datetime,
    finished: datetime,
    maintenance_type: str,
    interrupted: bool,
    selected: int,
    previous_incidents: list[dict[str, Any]],
    crashed: list[str] | None = None,
) -> dict[str, Any]:
    """Every record file of one run, keyed by file name."""
    results = sorted(results, key=lambda r: r.nodeid)
    now = iso(finished)
    return {
        "maintenance-log.json": maintenance_log(
            config,
            results,
            run_id,
            started,
            finished,
            maintenance_type,
            interrupted,
            selected,
            crashed or [],
        ),
        "health.json": health_records(results),
        "database-maintenance.json": database_records(results, now),
        "compliance.json": compliance_records(results),
        "incidents.json": incident_records(config, results, now, previous_incidents),
        "results.json": {
            "runId": run_id,
            "system": config.system,
            "environment": config.environment,
            "startedAt": iso(started),
            "finishedAt": now,
            "counts": counts(results),
            "crashed": crashed or [],
            "checks": [r.to_json() for r in results],
        },
    }


def counts(results: Iterable[CheckResult]) -> dict[str, int]:
    out = {str(o): 0 for o in Outcome} | {"waived": 0}
    for r in results:
        out[r.verdict] += 1
        if r.waived and r.verdict in (Outcome.VIOLATION, Outcome.DEGRADED):
            out["waived"] += 1
    return out


def severity_of(finding: Mapping[str, Any], check_severity: str) -> str:
    """A finding's own severity where the check gave one, else the check's."""
    return str(finding.get("severity") or check_severity)


def incident_severity(result: CheckResult) -> str:
    """The worst severity among a result's violations (an error counts at the check's)."""
    check_severity = result.severity
    findings = result.findings
    levels = [severity_of(f, check_severity) for f in findings if f["verdict"] == "violation"]
    return str(max(levels or [result.severity], key=SEVERITIES.index))


def _finding_lines(result: CheckResult) -> Iterable[tuple[str, str]]:
    waived = " (waived)" if result.waived else ""
    for f in result.findings:
        sev = severity_of(f, result.severity)
        yield (
            f"[{sev}] {result.name}{waived}: {f['verdict']}: {f['description']}",
            f"{result.name}: {f['action']}",
        )


def maintenance_log(
    config: Config,
    results: Sequence[CheckResult],
    run_id: str,
    started: datetime,
    finished: datetime,
    maintenance_type: str,
    interrupted: bool,
    selected: int,
    crashed: list[str],
) -> dict[str, Any]:
    actions: list[str] = []
    findings: list[str] = []
    follow_up: list[str] = []
    absent = not_configured(results)
    for r in results:
        if r.not_configured:
            continue  # listed once per section below, not once per check
        first = r.message.splitlines()[0] if r.message else ""
        actions.append(f"{r.title} [{r.target}]: {r.verdict} - {first}")
        actions.extend(
            f"{r.title} [{r.target}]: performed {a}" for a in r.details.get("performed", [])
        )
        for finding, action in _finding_lines(r):
            findings.append(finding)
            follow_up.append(action)
    recorded = {r.nodeid for r in results}
    for nodeid in (n for n in crashed if n not in recorded):  # else an error result says it
        findings.append(f"[high] {nodeid}: the worker running it crashed; no verdict")
        follow_up.append(f"{nodeid}: re-run it alone (pytest '{nodeid}') and fix the crash")
    actions.extend(f"not configured: {section} (nothing to check)" for section in absent)
    incomplete = any(_incomplete(r) for r in results) or len(results) < selected or bool(crashed)
    status = "failed" if interrupted else ("partial" if incomplete else "completed")
    return {
        "taskId": run_id,
        "type": maintenance_type,
        "performed": {
            "by": performed_by(),
            "at": iso(started),
            "duration": round((finished - started).total_seconds(), 3),
        },
        "details": {"actions": actions, "findings": findings, "followUp": follow_up},
        "status": status,
        "system": config.system,
        "environment": config.environment,
        "suites": sorted({r.suite for r in results}),
        "counts": counts(results),
        "notConfigured": absent,
    }


def _incomplete(result: CheckResult) -> bool:
    """A check of a configured target that errored or could not run (a skip of a check
    whose section is absent from the config is not: nothing was asked of it)."""
    if result.verdict is Outcome.ERROR:
        return True
    return result.verdict is Outcome.SKIPPED and not result.not_configured


def not_configured(results: Iterable[CheckResult]) -> list[str]:
    """The config sections absent from this run's config that selected checks needed, once each."""
    return sorted({r.not_configured for r in results if r.not_configured})


def health_records(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        if r.check != "health" or r.verdict is Outcome.SKIPPED:
            continue
        metrics = r.metrics
        out.append(
            {
                "type": r.details.get("type", "api"),
                "status": HEALTH_STATUS[r.verdict],
                "metrics": {
                    "responseTime": metrics.get("responseTime"),
                    "errorRate": metrics.get("errorRate"),
                    "uptime": metrics.get("uptime"),
                },
                "lastChecked": r.finished_at,
                # responseTime is the p95 of the answers, or with none of the time until each
                # sample failed or timed out: never null, as the seed's type says
                "responseTimeOf": r.details.get("responseTimeOf", "answers"),
                "service": r.target,
                "endpoints": r.details.get("endpoints", []),
                "waived": r.waived,
                # planned maintenance: shown, but not counted in availability
                "inMaintenance": r.in_maintenance,
            }
        )
    return out


def database_records(results: Sequence[CheckResult], now: str) -> list[dict[str, Any]]:
    """One DatabaseMaintenance per database any database check looked at."""
    by_db: dict[str, dict[str, Any]] = {}
    for r in results:
        name = r.details.get("database")
        database_check = r.category == DATABASE.name
        if not name or not (database_check or "dbMetrics" in r.details):
            continue  # replication and archiving (contingency checks) add their dbMetrics
        record = by_db.setdefault(
            name,
            {
                "tasks": {"vacuum": False, "analyze": False, "reindex": False},
                "metrics": {"size": None, "connections": None, "deadTuples": None},
                "timestamp": now,
                "database": name,
                "findings": [],
                "followUp": [],
            },
        )
        for task, done in r.details.get("tasks", {}).items():
            record["tasks"][task] = record["tasks"].get(task, False) or bool(done)
        for key, value in r.details.get("dbMetrics", {}).items():
            record["metrics"][key] = value
        for finding, action in _finding_lines(r):
            record["findings"].append(finding)
            record["followUp"].append(action)
    return list(by_db.values())


def compliance_records(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    """One ComplianceCheck per category the run touched, status from its checks' verdicts."""
    by_category: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.verdict is Outcome.SKIPPED:
            continue
        record = by_category.setdefault(
            r.category,
            {
                "category": r.category,
                "requirements": [],
                "status": "compliant",
                "findings": [],
                "checks": [],
            },
        )
        for clause in r.requirements:
            if clause not in record["requirements"]:
                record["requirements"].append(clause)
        status = COMPLIANCE_STATUS[r.verdict]
        if r.waived and status == "violation":
            status = "warning"  # an accepted risk is shown, but is not an open violation
        if _ORDER[status] > _ORDER[record["status"]]:
            record["status"] = status
        record["checks"].append(
            {"nodeid": r.nodeid, "verdict": r.verdict.value, "waived": r.waived}
        )
        waiver = r.waiver
        for f in r.findings:
            description = f"{r.name}: {f['description']}"
            if r.waived and waiver:
                description += f" [WAIVED until {waiver['expires']}: {waiver['justification']}]"
            record["findings"].append(
                {
                    "severity": finding_severity(severity_of(f, r.severity)),
                    "description": description,
                    "action": f["action"],
                    "check": r.nodeid,
                    "verdict": f["verdict"],
                    "waived": r.waived,
                }
            )
    return sorted(by_category.values(), key=lambda c: c["category"])


def spec_of_result(result: CheckResult) -> CheckSpec:
    """A bundled check's catalogue entry, or a site check's as its result carries it."""
    bundled = CHECKS.get(result.check)
    if bundled is not None:
        return bundled
    return CheckSpec(
        key=result.check,
        suite=result.suite,
        title=result.title,
        severity=result.severity,
        category=Category(result.category, result.requirements),
        incident_type=result.incident_type,
        action=result.action or "Investigate and fix the cause.",
        runbook=tuple(result.runbook or RECOVERY_STEPS),
    )


def incident_records(
    config: Config, results: Iterable[CheckResult], now: str, previous: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Drafts for unwaived high/critical violations; earlier open ones updated or resolved
    (the lifecycle itself lives in incidents.py: earlier incidents as records' JSON)."""
    from pytest_maintcheck.incidents import update_incidents

    def draft(r: CheckResult, severity: str) -> dict[str, Any]:
        spec = spec_of_result(r)
        owner = config.owner_for(spec.incident_type)
        return {
            "severity": severity,
            "type": spec.incident_type,
            "steps": [
                {"action": step, "owner": owner, "status": "pending"}
                for step in (spec.action, *spec.runbook)
            ],
            "timeline": {"detected": now, "responded": "", "resolved": ""},
            "title": f"{spec.title}: {r.target}",
        }

    return update_incidents(
        previous,
        results,
        now,
        system=config.system,
        environment=config.environment,
        severity_of=incident_severity,
        draft=draft,
    )


def check_identity(result: Mapping[str, Any]) -> tuple[str, str]:
    """A check across runs: catalogue key and target (its name when it has no target)."""
    return str(result["check"]), str(result.get("target") or result.get("name") or "")
