"""The incident lifecycle as pure functions: earlier incidents + this run's results + now ->
the incidents after this run. The seed's IncidentResponse with fields added beside its own.

An incident is one failure of one check of one target of one system and environment (its
identity: ``check`` catalogue key, ``target``, ``system``, ``environment``). It is opened on
an unwaived high or critical violation outside a maintenance window, updated (``lastSeen``,
``occurrences``) while the check keeps failing, and resolved by the first run that finds the
check passing again (degraded counts: the violation is gone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pytest_maintcheck.catalogue import RECOVERY_STEPS

if TYPE_CHECKING:
    from pytest_maintcheck.result import CheckResult

STEP_STATUSES = ("pending", "in-progress", "completed")
OPENING = ("high", "critical")

# what the status page says; written for clinicians, never a host, a finding or an internal
PUBLIC_DETECTED = "We are aware of a problem and are investigating."
PUBLIC_RESPONDED = "Our team is working on a fix."
PUBLIC_RESOLVED = "This has been resolved. Thank you for your patience."


def identity(incident_or_result: dict[str, Any], system: str, environment: str) -> tuple[str, ...]:
    return (
        str(incident_or_result.get("check")),
        str(incident_or_result.get("target")),
        system,
        environment,
    )


def result_identity(result: CheckResult, system: str, environment: str) -> tuple[str, ...]:
    """identity() of this run's result: the incident it would open or update."""
    return (result.check, str(result.target), system, environment)


def incident_id(system: str, environment: str, check: str, target: str, detected: str) -> str:
    """Short, stable and typed by people (``maintcheck incident ack INC-3f9a1c``)."""
    digest = hashlib.sha256("\0".join((system, environment, check, target, detected)).encode())
    return "INC-" + digest.hexdigest()[:6]


def _free_id(
    taken: set[str], system: str, environment: str, check: str, target: str, now: str
) -> str:
    """An id no kept incident has (the same check can fail again within the second)."""
    made = incident_id(system, environment, check, target, now)
    n = 1
    while made in taken:
        made = incident_id(system, environment, check, target, f"{now}#{n}")
        n += 1
    taken.add(made)
    return made


def is_open(incident: dict[str, Any]) -> bool:
    return not incident.get("timeline", {}).get("resolved")


def opens_incident(result: CheckResult, severity: str) -> bool:
    """A failing check an incident is about: not waived, not in planned maintenance."""
    return (
        result.verdict in ("violation", "error")
        and not result.waived
        and not result.in_maintenance
        and severity in OPENING
    )


def normalise(old: dict[str, Any], system: str, environment: str) -> dict[str, Any]:
    """An incident from an earlier version (keyed by nodeid) gets the fields this one uses."""
    incident = dict(old)
    if "nodeid" not in incident:
        incident["nodeid"] = incident.get("check")
    incident.setdefault("system", system)
    incident.setdefault("environment", environment)
    incident.setdefault("occurrences", 1)
    timeline = incident.setdefault("timeline", {"detected": "", "responded": "", "resolved": ""})
    incident.setdefault("lastSeen", timeline.get("detected", ""))
    incident.setdefault("notified", [])
    incident.setdefault("updates", [])
    if "id" not in incident:
        incident["id"] = incident_id(
            system,
            environment,
            str(incident.get("check")),
            str(incident.get("target")),
            str(timeline.get("detected")),
        )
    return incident


def update_incidents(
    previous: Iterable[dict[str, Any]],
    results: Iterable[CheckResult],
    now: str,
    *,
    system: str,
    environment: str,
    severity_of: Callable[[CheckResult], str],
    draft: Callable[[CheckResult, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Open incidents (records' JSON) carried and updated or resolved; new ones drafted for
    this run's failures.

    ``draft(result, severity)`` gives the seed's fields of a new incident (steps, owner,
    title); resolved incidents of earlier runs are not carried.
    """
    results = list(results)
    previous = list(previous)
    taken = {str(i.get("id")) for i in previous}
    by_identity = {result_identity(r, system, environment): r for r in results}
    by_nodeid = {r.nodeid: r for r in results}
    out: list[dict[str, Any]] = []
    carried: set[tuple[str, ...]] = set()
    for old in previous:
        incident = normalise(old, system, environment)
        if not is_open(incident):
            continue
        key = identity(incident, system, environment)
        carried.add(key)
        current = by_identity.get(key) or by_nodeid.get(str(incident.get("nodeid")))
        if current is not None:
            carried.add(result_identity(current, system, environment))
            if current.verdict in ("pass", "degraded"):
                incident = resolve(incident, now, "maintcheck re-run found the check passing")
            elif current.verdict in ("violation", "error") and not current.in_maintenance:
                incident = seen_again(incident, current, now, severity_of(current))
        out.append(incident)
    for r in results:
        severity = severity_of(r)
        key = result_identity(r, system, environment)
        if key in carried or not opens_incident(r, severity):
            continue
        carried.add(key)
        made = draft(r, severity)
        made.update(
            {
                "id": _free_id(taken, system, environment, r.check, str(r.target), now),
                "check": r.check,
                "target": r.target,
                "nodeid": r.nodeid,
                "system": system,
                "environment": environment,
                "occurrences": 1,
                "lastSeen": now,
                "description": first_line(r.message),
                "findings": finding_lines(r),
                "notified": [],
                "escalated": False,
                "publicUpdate": {"at": now, "text": PUBLIC_DETECTED},
                "updates": [{"at": now, "event": "detected", "text": first_line(r.message)}],
            }
        )
        out.append(made)
    return out


def seen_again(
    incident: dict[str, Any], result: CheckResult, now: str, severity: str
) -> dict[str, Any]:
    """The same failure on a later run: one incident, counted, never a second one."""
    updated = dict(incident)
    updated["occurrences"] = int(incident.get("occurrences", 1)) + 1
    updated["lastSeen"] = now
    updated["description"] = first_line(result.message)
    updated["findings"] = finding_lines(result)
    levels = ("low", "medium", "high", "critical")
    if levels.index(severity) > levels.index(str(incident.get("severity", "low"))):
        updated["severity"] = severity  # it got worse; it never gets milder while open
    return updated


def resolve(incident: dict[str, Any], now: str, by: str) -> dict[str, Any]:
    """Resolved: the timeline says when, and the verification step is completed."""
    resolved = dict(incident)
    resolved["timeline"] = {**incident.get("timeline", {}), "resolved": now}
    resolved["resolvedBy"] = by
    steps = [dict(s) for s in incident.get("steps", [])]
    verify = verification_step(steps)
    if verify is not None:
        steps[verify]["status"] = "completed"
    resolved["steps"] = steps
    resolved["publicUpdate"] = {"at": now, "text": PUBLIC_RESOLVED}
    resolved["updates"] = [
        *incident.get("updates", []),
        {"at": now, "event": "resolved", "text": by},
    ]
    return resolved


def verification_step(steps: list[dict[str, Any]]) -> int | None:
    """The runbook's verification step (its last step, "Verify: ..."), by position."""
    for i in range(len(steps) - 1, -1, -1):
        if str(steps[i].get("action", "")).lower().startswith("verif"):
            return i
    return len(steps) - 1 if steps else None


def acknowledge(incident: dict[str, Any], by: str, now: str) -> dict[str, Any]:
    """Someone took it: ``timeline.responded``, and the first step is in progress."""
    if not is_open(incident):
        raise LifecycleError(f"{incident['id']} is resolved already; nothing to acknowledge")
    acked = dict(incident)
    acked["timeline"] = {**incident["timeline"], "responded": now}
    acked["acknowledgedBy"] = by
    steps = [dict(s) for s in incident.get("steps", [])]
    if steps and steps[0]["status"] == "pending":
        steps[0]["status"] = "in-progress"
    acked["steps"] = steps
    acked["publicUpdate"] = {"at": now, "text": PUBLIC_RESPONDED}
    acked["updates"] = [
        *incident.get("updates", []),
        {"at": now, "event": "acknowledged", "text": f"acknowledged by {by}"},
    ]
    return acked


def set_step(incident: dict[str, Any], number: int, status: str, now: str) -> dict[str, Any]:
    """Step ``number`` (1 = the first, as ``incident list`` shows them) gets ``status``."""
    if status not in STEP_STATUSES:
        raise LifecycleError(f"status must be one of {', '.join(STEP_STATUSES)}, got {status!r}")
    steps = [dict(s) for s in incident.get("steps", [])]
    if not 1 <= number <= len(steps):
        raise LifecycleError(f"{incident['id']} has steps 1 to {len(steps)}; there is no {number}")
    changed = dict(incident)
    steps[number - 1]["status"] = status
    changed["steps"] = steps
    if not incident["timeline"].get("responded") and status != "pending":
        changed["timeline"] = {**incident["timeline"], "responded": now}  # work on it is a response
    changed["updates"] = [
        *incident.get("updates", []),
        {
            "at": now,
            "event": "step",
            "text": f"step {number} {steps[number - 1]['action']}: {status}",
        },
    ]
    return changed


def find(incidents: Iterable[dict[str, Any]], given: str) -> dict[str, Any]:
    """An incident by its id, or by an unambiguous start of it (``INC-3f`` or ``3f9a``)."""
    wanted = given.strip().upper().removeprefix("INC-")
    found = [
        i for i in incidents if str(i.get("id", "")).upper().removeprefix("INC-").startswith(wanted)
    ]
    exact = [i for i in found if str(i["id"]).upper().removeprefix("INC-") == wanted]
    if exact:
        return exact[0]
    if len(found) == 1 and wanted:
        return found[0]
    if not found:
        raise LifecycleError(f"no incident {given!r}; `maintcheck incident list` shows them")
    raise LifecycleError(f"{given!r} names {len(found)} incidents; give more of the id")


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def finding_lines(result: CheckResult) -> list[str]:
    return [f"{f['verdict']}: {f['description']} -> {f['action']}" for f in result.findings]


def default_steps(action: str, runbook: Iterable[str], owner: str) -> list[dict[str, str]]:
    return [
        {"action": step, "owner": owner, "status": "pending"}
        for step in (action, *(runbook or RECOVERY_STEPS))
    ]


class LifecycleError(Exception):
    """An incident command that cannot be done (unknown id, step out of range...)."""
