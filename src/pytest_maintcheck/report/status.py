"""``reports/status.html``: the status page for the people who use the system.

Written for clinicians: each service's state in plain words, its uptime over the history
window (the store's figure; 30 days unless configured), open incidents with their latest public
update and planned maintenance to come. No host name, no
finding, no check internals: only the service names of ``healthChecks``, the system's name and
the public updates the incident lifecycle writes. One self-contained page, readable on a phone.

Which incidents users see (the README's status page section says the same): an incident of a
health check (``health``, ``load_balance``) of a configured service, and an incident of a
database maintenance check on a database a ``type: database`` health check probes, shown under
that service. Every other incident (backups, WAL, certificates, security, capacity, site checks)
is internal: it stays in incidents.json and report.html. One card per service, never per check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from pytest_maintcheck.catalogue import CHECKS, DATABASE
from pytest_maintcheck.config import Config
from pytest_maintcheck.incident_store import IncidentStore
from pytest_maintcheck.incidents import PUBLIC_DETECTED, is_open
from pytest_maintcheck.notify import HEALTH_CHECKS
from pytest_maintcheck.report.files import FILE_MODE, run_folders, write_atomic
from pytest_maintcheck.windows import target_names, upcoming

PAGE = "status.html"
WINDOW = timedelta(days=30)
AHEAD = timedelta(days=14)  # planned maintenance shown this far ahead
STATE_WORDS = {
    "healthy": ("Operating normally", "ok"),
    "degraded": ("Degraded performance", "warn"),
    "down": ("Outage", "bad"),
    "investigating": ("Under investigation", "warn"),  # probes pass, an incident is open on it
    "maintenance": ("Planned maintenance", "plan"),
    "unknown": ("No recent information", "none"),
}
BANNER_ORDER = ("down", "degraded", "investigating", "maintenance", "unknown")  # worst first
_STYLE = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;
color:#1f2328;background:#f6f8fa}main{max-width:44rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.5rem 0}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.75rem 1rem;margin:.5rem 0}
.row{display:flex;justify-content:space-between;gap:1rem;flex-wrap:wrap}
.state{font-weight:600}.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}
.plan{color:#0969da}.none{color:#57606a}small,.muted{color:#57606a}
.banner{padding:1rem;border-radius:8px;font-weight:600;color:#fff;background:#1a7f37}
.banner.warn{background:#9a6700}.banner.bad{background:#cf222e}.banner.plan{background:#0969da}
.banner.none{background:#57606a}.banner div{font-weight:400}.name{white-space:nowrap}
"""


@dataclass
class Service:
    name: str
    state: str = "unknown"
    counted: int = 0  # runs in availability (not in planned maintenance)
    up: int = 0
    last: str = ""
    window_uptime: float | None = None  # the history store's window figure, when it has one

    @property
    def uptime(self) -> float | None:
        if self.window_uptime is not None:
            return self.window_uptime
        return self.up / self.counted if self.counted else None


@dataclass
class Page:
    system: str
    now: datetime
    services: list[Service] = field(default_factory=list)
    incidents: list[dict[str, str]] = field(default_factory=list)
    planned: list[dict[str, str]] = field(default_factory=list)
    window: float = WINDOW.total_seconds()  # what the uptime figures cover


def write_status_page(
    report_dir: Path, config: Config, now: datetime, mode: int = FILE_MODE
) -> Path:
    page = build_page(report_dir, config, now)
    path = report_dir / PAGE
    write_atomic(path, render(page), mode)
    return path


def build_page(report_dir: Path, config: Config, now: datetime) -> Page:
    services = {h.service: Service(h.service) for h in config.health_checks}
    for record in _health_records(report_dir, now - timedelta(seconds=config.history.window)):
        service = services.get(str(record.get("service")))
        if service is None:
            continue
        planned = bool(record.get("inMaintenance"))
        if not planned:  # planned maintenance is left out of availability
            service.counted += 1
            service.up += record.get("status") != "down"
        when = str(record.get("lastChecked", ""))
        if when >= service.last:
            service.last = when
            service.state = "maintenance" if planned else str(record.get("status", "unknown"))
    _window_uptime(report_dir, config, now, services)
    page = Page(config.system or "Clinical system", now, list(services.values()))
    page.window = config.history.window
    behind = databases_behind(config)
    page.incidents = _public_incidents(report_dir, config, services, behind)
    for window, start, end in upcoming(config.maintenance_windows, now, AHEAD):
        affected = [s for s in services if window.covers(_window_names(s, behind))]
        if not affected:
            continue  # a window on internal targets only (backups, certificates): users see none
        page.planned.append(
            {
                "services": ", ".join(affected),
                "start": _shown(start),
                "end": _shown(end),
                "now": "yes" if start <= now < end else "",
            }
        )
    return page


def databases_behind(config: Config) -> dict[str, list[str]]:
    """``databases`` key -> the services of the ``type: database`` health checks probing it
    (the endpoint names the key, or is written as that database's DSN)."""
    by_dsn = {d.dsn: name for name, d in config.databases.items()}
    behind: dict[str, list[str]] = {}
    for h in config.health_checks:
        if h.type != "database":
            continue
        for endpoint in h.endpoints:
            name = endpoint if endpoint in config.databases else by_dsn.get(endpoint)
            if name is not None and h.service not in behind.setdefault(name, []):
                behind[name].append(h.service)
    return behind


def affected_services(
    incident: dict[str, Any], services: Iterable[str], behind: dict[str, list[str]]
) -> list[str]:
    """The services users see that an incident is about; none for an internal incident."""
    check, target = str(incident.get("check")), str(incident.get("target"))
    if check in HEALTH_CHECKS:
        return [target] if target in services else []
    spec = CHECKS.get(check)
    if spec is not None and spec.category == DATABASE:
        return list(behind.get(target, []))
    return []  # backups, WAL, certificates, security, capacity, site checks: internal


def _window_names(service: str, behind: dict[str, list[str]]) -> list[str]:
    """What a maintenance window may name to cover a service: it, or the database behind it."""
    names = target_names(["health_check"], service)
    for database, served in behind.items():
        if service in served:
            names += target_names(["maintained_database"], database)
    return names


def _window_uptime(
    report_dir: Path, config: Config, now: datetime, services: dict[str, Service]
) -> None:
    """Each service's uptime as the history store holds it over its window: the success
    fraction of its samples, planned maintenance left out (the figure the health check judges
    availability on). Without a store, or for a check that counts no samples, the page counts
    the run folders' health.json instead."""
    from pytest_maintcheck.history import STORE_NAME
    from pytest_maintcheck.history.window import read_points

    if not config.history.dsn and not (report_dir / STORE_NAME).is_file():
        return  # reading must not create a store
    window = read_points(config, report_dir, now, ("health",), ("samples", "errorRate"))
    if window.problem is not None:
        return
    for service in services.values():
        service.window_uptime = window.uptime(service.name, 0, 0).value


def _health_records(report_dir: Path, since: datetime) -> Iterable[dict[str, Any]]:
    """health.json of the run folders since ``since`` (run ids begin with their UTC time)."""
    cutoff = since.strftime("%Y%m%dT%H%M%S")
    for folder in run_folders(report_dir):
        if folder.name[:15] < cutoff:
            continue
        try:
            loaded = json.loads((folder / "health.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue  # a run without health checks, or a broken file: no sample from it
        if isinstance(loaded, list):
            yield from (r for r in loaded if isinstance(r, dict))


def _public_incidents(
    report_dir: Path, config: Config, services: dict[str, Service], behind: dict[str, list[str]]
) -> list[dict[str, str]]:
    """One card per affected service with the latest public update of its open incidents;
    a service whose probes pass while such an incident is open is under investigation."""
    incidents = IncidentStore(report_dir, config.history).current(config.system, config.environment)
    if incidents is None:  # nothing kept yet, or broken: the newest run's snapshot
        from pytest_maintcheck.report.files import latest_run_file

        snapshot = latest_run_file(report_dir, "incidents.json")
        incidents = snapshot if isinstance(snapshot, list) else []
    latest: dict[str, tuple[datetime, str]] = {}
    for i in incidents:
        if not isinstance(i, dict) or not is_open(i):
            continue
        if i.get("system", config.system) != config.system:
            continue
        if i.get("environment", config.environment) != config.environment:
            continue
        update = i.get("publicUpdate")
        update = update if isinstance(update, dict) else {}
        text = str(update.get("text") or PUBLIC_DETECTED)
        at = _moment(str(update.get("at") or i.get("timeline", {}).get("detected")))
        for name in affected_services(i, services, behind):
            if name not in latest or at >= latest[name][0]:
                latest[name] = (at, text)
    out = []
    for service in services.values():  # in the config's order, like the service list
        if service.name not in latest:
            continue
        if service.state in ("healthy", "unknown"):
            service.state = "investigating"
        at, text = latest[service.name]
        word, css = STATE_WORDS.get(service.state, STATE_WORDS["unknown"])
        shown = _shown(at) if at > datetime.min.replace(tzinfo=UTC) else ""
        out.append(
            {"affected": service.name, "state": word, "severity": css, "text": text, "at": shown}
        )
    return out


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)  # unreadable: older than any real update
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} days" if days >= 1 else f"{seconds / 3600:g} hours"


def _shown(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


def render(page: Page) -> str:
    e = escape
    headline, lines, css = banner(page)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{e(page.system)}: service status</title><style>{_STYLE}</style></head>",
        f"<body><main><h1>{e(page.system)}: service status</h1>",
        f"<div class='banner {css}' role='status'>{e(headline)}"
        + "".join(f"<div>{e(word)}: {_names(names)}</div>" for word, names in lines)
        + "</div>",
        "<h2>Current incidents</h2>",
    ]
    if not page.incidents:
        parts.append("<div class='card muted'>No current incidents.</div>")
    for i in page.incidents:
        updated = f"<small>Updated {e(i['at'])}</small>" if i["at"] else ""
        parts.append(
            f"<div class='card'><div class='row'><strong>{e(i['affected'])}</strong>"
            f"<span class='state {e(i['severity'])}'>{e(i['state'])}</span></div>"
            f"<div>{e(i['text'])}</div>{updated}</div>"
        )
    parts.append("<h2>Services</h2>")
    span = _days(page.window)
    if not page.services:
        parts.append("<div class='card muted'>No services are monitored.</div>")
    for s in page.services:
        word, css = STATE_WORDS.get(s.state, STATE_WORDS["unknown"])
        uptime = f"{s.uptime * 100:.2f}% uptime ({span})" if s.uptime is not None else "no data yet"
        parts.append(
            f"<div class='card'><div class='row'><strong>{e(s.name)}</strong>"
            f"<span class='state {css}'>{e(word)}</span></div><small>{e(uptime)}</small></div>"
        )
    parts.append("<h2>Planned maintenance</h2>")
    if not page.planned:
        parts.append("<div class='card muted'>None planned in the next 14 days.</div>")
    for p in page.planned:
        label = "In progress" if p["now"] else "Planned"
        parts.append(
            f"<div class='card'><div class='state plan'>{label}: {e(p['services'])}</div>"
            f"<div>{e(p['start'])} to {e(p['end'])}</div>"
            "<small>Services may be unavailable or slow during this time.</small></div>"
        )
    parts.append(
        f"<p class='muted'><small>Last updated {e(_shown(page.now))}. "
        "This page is updated after every maintenance check run.</small></p></main></body></html>"
    )
    return "\n".join(parts) + "\n"


def _names(names: list[str]) -> str:
    """Service names, each kept on one line (a phone would break ecg-viewer at its hyphen)."""
    return ", ".join(f"<span class='name'>{escape(n)}</span>" for n in names)


def banner(page: Page) -> tuple[str, list[tuple[str, list[str]]], str]:
    """The headline, a line per troubled state naming its services, and the colour: it follows
    the services' states, worst first, so it never says more or less than the list below."""
    if not page.services:
        return "No services are monitored", [], "none"
    troubled = [
        (state, [s.name for s in page.services if s.state == state]) for state in BANNER_ORDER
    ]
    troubled = [(state, names) for state, names in troubled if names]
    if not troubled:
        return "All services operating normally", [], "ok"
    worst = troubled[0][0]
    headline = {
        "down": "Service outage",
        "degraded": "Some services are slow or failing",
        "investigating": "We are looking into a problem",
        "maintenance": "Planned maintenance in progress",
        "unknown": "No recent information on some services",
    }[worst]
    lines = [(STATE_WORDS[state][0], names) for state, names in troubled]
    return headline, lines, STATE_WORDS[worst][1]
