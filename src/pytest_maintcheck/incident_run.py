"""What the end of a run does with incidents: read the kept state, carry it forward with this
run's results, notify, keep the new state, and draft post-mortems of resolved ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import Config
from pytest_maintcheck.incident_store import Held, IncidentStore, StoreError
from pytest_maintcheck.incidents import OPENING, identity, is_open
from pytest_maintcheck.notify import Route, deliver, plan_run, record_outcomes
from pytest_maintcheck.redact import Redactor


class RunIncidents:
    def __init__(self, config: Config, held: Held | None, now: datetime, redact: Redactor) -> None:
        self.config, self.held, self.now, self.redact = config, held, now, redact
        self.notes: list[str] = [*held.notices, *held.notes] if held else []
        self.kept: list[dict[str, Any]] = []
        self.outcomes: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    def keep(self, mode: int) -> None:
        """The new state, once the run's records are written."""
        if self.held is None:
            return
        try:
            self.held.save([*self.kept, *self.incidents], self.now, mode)
        except OSError as exc:  # a full disk: the run's own snapshot still has them
            self.notes.append(f"could not keep the incident state: {exc.strerror or exc}")

    def previous(
        self, from_runs: Callable[[], tuple[list[dict[str, Any]], list[str]]]
    ) -> list[dict[str, Any]]:
        """The kept incidents; the newest run folder's snapshot when nothing is kept yet (an
        earlier version of maintcheck) or the state is broken or locked."""
        if self.held is not None and not self.held.fresh and not self.held.notes:
            # resolved ones are passed too: a new incident's id must differ from theirs
            self.kept = [i for i in self.held.incidents if not is_open(i)]
            return list(self.held.incidents)
        found, notes = from_runs()
        self.notes.extend(notes)
        return found

    def settle(self, records: dict[str, Any]) -> dict[str, str]:
        """Notify, and give the post-mortems to write (file name -> text)."""
        incidents: list[dict[str, Any]] = records["incidents.json"]
        results = records["results.json"]["checks"]
        silenced = _in_maintenance(incidents, results, self.config)
        health = {
            h.service: Route(h.alert_channels, h.escalation) for h in self.config.health_checks
        }
        notices = plan_run(incidents, self.config.alerts, health, self.now, silenced)
        self.outcomes = deliver(notices, self.config.alerts, self.redact.walk, self.now)
        record_outcomes(incidents, self.outcomes)
        records["maintenance-log.json"]["notifications"] = self.outcomes
        for o in self.outcomes:
            if not o["delivered"]:
                self.notes.append(
                    f"notification ({o['event']} {o['incident']}) to channel {o['channel']} "
                    f"not delivered after {o['attempts']} attempt(s): {o['error']}; "
                    "check the channel's URL and that it is up"
                )
        self.incidents = incidents
        return {
            f"postmortem-{i['id']}.md": postmortem(i)
            for i in incidents
            if _newly_resolved(i, self.now)
            and i.get("severity") in OPENING
            and int(i.get("occurrences", 1)) >= self.config.alerts.after
        }


@contextlib.contextmanager
def run_incidents(
    report_dir: Path, config: Config, now: datetime, redact: Redactor, mode: int
) -> Iterator[RunIncidents]:
    """The store's lock is held while the run carries incidents forward and notifies."""
    store = IncidentStore(report_dir, config.history)
    try:
        with store.open(config.system, config.environment, mode=mode) as held:
            yield RunIncidents(config, held, now, redact)
            return
    except StoreError as exc:
        lost = RunIncidents(config, None, now, redact)
        lost.notes.append(f"{exc}; incidents were read from the newest run and not kept")
        yield lost


def _in_maintenance(
    incidents: list[dict[str, Any]], results: list[dict[str, Any]], config: Config
) -> frozenset[str]:
    quiet = {
        identity(r, config.system, config.environment) for r in results if r.get("inMaintenance")
    }
    return frozenset(
        str(i["id"]) for i in incidents if identity(i, config.system, config.environment) in quiet
    )


def _newly_resolved(incident: dict[str, Any], now: datetime) -> bool:
    resolved = str(incident.get("timeline", {}).get("resolved") or "")
    return bool(resolved) and resolved == now.isoformat(timespec="seconds").replace("+00:00", "Z")


def postmortem(incident: dict[str, Any]) -> str:
    """A Markdown draft for the post-mortem review: filled from the record, left to edit."""
    t = incident.get("timeline", {})
    steps = incident.get("steps", [])
    lines = [
        f"# Post-mortem draft: {incident.get('title')} ({incident.get('id')})",
        "",
        f"System: {incident.get('system')} ({incident.get('environment')})  ",
        f"Severity: {incident.get('severity')}, type: {incident.get('type')}  ",
        f"Check: {incident.get('check')} on {incident.get('target')}",
        "",
        "## Timeline",
        "",
        f"- Detected: {t.get('detected') or '-'}",
        f"- Responded: {t.get('responded') or 'not acknowledged'}"
        + (f" by {incident['acknowledgedBy']}" if incident.get("acknowledgedBy") else ""),
        f"- Resolved: {t.get('resolved') or '-'} ({incident.get('resolvedBy', '')})",
        f"- Last seen failing: {incident.get('lastSeen') or '-'}",
        "",
        *(
            f"- {u.get('at')}: {u.get('event')}: {u.get('text')}"
            for u in incident.get("updates", [])
        ),
        "",
        "## Impact",
        "",
        f"The check failed on {incident.get('occurrences', 1)} consecutive run(s). "
        f"Channels told: {', '.join(incident.get('notified', [])) or 'none'}.",
        "Describe who was affected and for how long: _to be completed_.",
        "",
        "## Findings",
        "",
        *(f"- {f}" for f in incident.get("findings", []) or [incident.get("description", "")]),
        "",
        "## Steps and owners",
        "",
        "| # | step | owner | status |",
        "| --- | --- | --- | --- |",
        *(
            f"| {n} | {_cell(s.get('action'))} | {_cell(s.get('owner'))} | {s.get('status')} |"
            for n, s in enumerate(steps, 1)
        ),
        "",
        "## Open follow-ups",
        "",
        *(
            [
                f"- [ ] {s.get('action')} (owner: {s.get('owner')})"
                for s in steps
                if s.get("status") != "completed"
            ]
            or ["- none: every step is completed"]
        ),
        "",
    ]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return str(value or "").replace("|", "\\|").replace("\n", " ")
