"""The seed's communication plan: team notification when an incident is detected, status
updates, escalation and a resolution notice, to the channels of ``alerts``.

A ``webhook`` channel gets a JSON POST of the record; a ``url`` channel is any Apprise URL
(slack://, msteams://, mailto://, json://...). Every notification carries the structured
record and a one-line text, redacted: never a secret, never the text of a login-monitoring
check (it can name accounts) unless ``alerts.includeUsernames`` allows it.

Delivery is bounded: each attempt has a timeout, failed attempts are retried with
exponential backoff, and all deliveries of a run run in daemon threads that the run waits
for at most ``alerts.timeout`` (20s). A channel that is down or hangs is recorded in the
MaintenanceLog's ``notifications``; it never fails the run and never holds it past the bound.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_maintcheck.incidents import is_open

ATTEMPT_TIMEOUT = 5.0  # seconds one attempt may take (connect, send, answer)
MAX_ATTEMPTS = 4
FIRST_BACKOFF = 0.5  # then 1s, 2s: doubled after each failed attempt
DEFAULT_BOUND = 20.0
# checks whose text can name accounts (login monitoring, access review)
USERNAME_CHECKS = frozenset({"failed_logins", "access_patterns", "sessions", "access_review"})
WITHHELD = "details withheld from notifications (they may name accounts); see the run's report"
HEALTH_CHECKS = frozenset({"health", "load_balance"})  # their target is a healthChecks service

EVENT_WORDS = {
    "detected": "incident opened",
    "escalated": "not acknowledged, escalated",
    "status": "status update",
    "resolved": "resolved",
}


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str  # webhook | url
    target: str  # the URL, from the environment; a secret


@dataclass(frozen=True)
class Route:
    channels: tuple[str, ...] = ()
    escalation: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertSettings:
    channels: Mapping[str, Channel] = field(default_factory=dict)
    after: int = 1
    unacknowledged_after: float | None = None  # seconds
    incident_types: Mapping[str, Route] = field(default_factory=dict)
    timeout: float = DEFAULT_BOUND
    include_usernames: bool = False


@dataclass(frozen=True)
class Notice:
    event: str  # detected | escalated | status | resolved
    incident: dict[str, Any]
    channels: tuple[str, ...]


# ---------------------------------------------------------------------------- config

Fail = Callable[[tuple[str | int, ...], str], Exception]


def parse_alerts(
    raw: Mapping[str, Any],
    health_checks: Sequence[Mapping[str, Any]],
    fail: Fail,
    duration: Callable[[tuple[str | int, ...], object, float], float],
) -> AlertSettings:
    """The schema has checked the shapes; here: every channel named is defined."""
    channels = {}
    for name, ch in raw.get("channels", {}).items():
        if ("webhook" in ch) == ("url" in ch):
            raise fail(("alerts", "channels", name), "give exactly one of webhook or url")
        kind = "webhook" if "webhook" in ch else "url"
        channels[name] = Channel(name, kind, str(ch[kind]))
    routes = {
        kind: Route(tuple(r.get("channels", ())), tuple(r.get("escalation", ())))
        for kind, r in raw.get("incidentTypes", {}).items()
    }
    uses: list[tuple[tuple[str | int, ...], str]] = []
    for i, h in enumerate(health_checks):
        for key in ("channels", "escalation"):
            uses += [
                (("healthChecks", i, "alerts", key), n) for n in h.get("alerts", {}).get(key, ())
            ]
    for kind, r in raw.get("incidentTypes", {}).items():
        for key in ("channels", "escalation"):
            uses += [(("alerts", "incidentTypes", kind, key), n) for n in r.get(key, ())]
    for where, name in uses:
        if name not in channels:
            known = ", ".join(channels) or "none defined"
            raise fail(where, f"no channel named {name!r} in alerts.channels (defined: {known})")
    unack = raw.get("unacknowledgedAfter")
    return AlertSettings(
        channels=channels,
        after=int(raw.get("after", 1)),
        unacknowledged_after=(
            duration(("alerts", "unacknowledgedAfter"), unack, 0.0) if unack is not None else None
        ),
        incident_types=routes,
        timeout=duration(("alerts", "timeout"), raw.get("timeout"), DEFAULT_BOUND),
        include_usernames=bool(raw.get("includeUsernames", False)),
    )


# ---------------------------------------------------------------------------- who is told


def route_of(
    incident: Mapping[str, Any], settings: AlertSettings, health: Mapping[str, Route]
) -> Route:
    """The check's health check's alerts, else its incident type's, else every channel."""
    if incident.get("check") in HEALTH_CHECKS:
        own = health.get(str(incident.get("target")))
        if own is not None and (own.channels or own.escalation):
            return own
    typed = settings.incident_types.get(str(incident.get("type"))) or settings.incident_types.get(
        "default"
    )
    if typed is not None:
        return typed
    return Route(tuple(settings.channels))


def wanted_channels(incident: Mapping[str, Any], route: Route) -> tuple[str, ...]:
    """Critical incidents go to the escalation channels from the start."""
    extra = route.escalation if incident.get("severity") == "critical" else ()
    return tuple(dict.fromkeys((*route.channels, *extra)))


def plan_run(
    incidents: Iterable[dict[str, Any]],
    settings: AlertSettings,
    health: Mapping[str, Route],
    now: datetime,
    silenced: frozenset[str] = frozenset(),
) -> list[Notice]:
    """What this run has to say: new incidents (after ``after`` failing runs), channels that
    missed an earlier notice, escalations of unacknowledged ones, resolutions."""
    out = []
    for incident in incidents:
        if incident.get("id") in silenced:
            continue  # its check ran in a maintenance window: nobody is paged
        told = tuple(incident.get("notified", ()))
        route = route_of(incident, settings, health)
        if not is_open(incident):
            if told:
                out.append(Notice("resolved", incident, told))
            continue
        if int(incident.get("occurrences", 1)) < settings.after:
            continue  # flapping guard: not yet failing for long enough
        missing = tuple(c for c in wanted_channels(incident, route) if c not in told)
        if missing:
            out.append(Notice("detected", incident, missing))
        if route.escalation and _unacknowledged_too_long(incident, settings, now):
            out.append(Notice("escalated", incident, route.escalation))
    return out


def _unacknowledged_too_long(
    incident: Mapping[str, Any], settings: AlertSettings, now: datetime
) -> bool:
    timeline = incident.get("timeline", {})
    if (
        settings.unacknowledged_after is None
        or timeline.get("responded")
        or incident.get("escalated")
    ):
        return False
    try:
        detected = datetime.fromisoformat(str(timeline.get("detected")).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (now - detected).total_seconds() >= settings.unacknowledged_after


def record_outcomes(incidents: list[dict[str, Any]], outcomes: Iterable[dict[str, Any]]) -> None:
    """The channels told of each incident, so the resolution notice goes to them only."""
    by_id = {i.get("id"): i for i in incidents}
    for outcome in outcomes:
        incident = by_id.get(outcome["incident"])
        if incident is None or not outcome["delivered"]:
            continue
        if outcome["event"] == "escalated":
            incident["escalated"] = True
        if outcome["event"] in ("detected", "escalated"):
            told = list(incident.get("notified", ()))
            if outcome["channel"] not in told:
                incident["notified"] = [*told, outcome["channel"]]


# ---------------------------------------------------------------------------- what is said


def payload(notice: Notice, settings: AlertSettings, sent_at: str) -> tuple[dict[str, Any], str]:
    """The structured record and its one-line text."""
    i = notice.incident
    withheld = i.get("check") in USERNAME_CHECKS and not settings.include_usernames
    description = WITHHELD if withheld else str(i.get("description", ""))
    record = {
        "id": i.get("id"),
        "title": i.get("title"),
        "severity": i.get("severity"),
        "type": i.get("type"),
        "status": "open" if is_open(i) else "resolved",
        "system": i.get("system"),
        "environment": i.get("environment"),
        "check": i.get("check"),
        "target": i.get("target"),
        "description": description,
        "findings": [] if withheld else list(i.get("findings", [])),
        "timeline": dict(i.get("timeline", {})),
        "occurrences": i.get("occurrences"),
        "lastSeen": i.get("lastSeen"),
        "acknowledgedBy": i.get("acknowledgedBy", ""),
        "steps": [dict(s) for s in i.get("steps", [])],
    }
    where = f"{i.get('system') or 'system'} ({i.get('environment') or 'environment'})"
    text = (
        f"[{str(i.get('severity', '')).upper()}] {where} {i.get('id')} "
        f"{EVENT_WORDS[notice.event]}: {i.get('title')}"
    )
    if notice.event != "resolved" and description:
        text += f" - {description}"
    text = " ".join(text.split())  # one line, whatever a message held
    body = {"event": notice.event, "text": text, "sentAt": sent_at, "incident": record}
    return body, text


# ---------------------------------------------------------------------------- delivery


def deliver(
    notices: Sequence[Notice],
    settings: AlertSettings,
    redact: Callable[[Any], Any],
    now: datetime,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Send every notice to its channels at once; wait for them ``settings.timeout`` at most.

    ``redact`` walks every payload (and every error text) before it leaves: a secret never
    reaches a channel, nor the log of a failure.
    """
    sent_at = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    deadline = clock() + settings.timeout
    jobs = []
    for notice in notices:
        body, text = payload(notice, settings, sent_at)
        body, text = redact(body), redact(text)
        for name in notice.channels:
            channel = settings.channels.get(name)
            if channel is None:
                continue
            jobs.append(_Job(notice, channel, body, text, deadline, clock, redact))
    for job in jobs:
        job.thread.start()
    for job in jobs:
        job.thread.join(max(0.0, deadline - clock()))
    return [job.outcome() for job in jobs]


class _Job:
    """One notice to one channel, retried with backoff until delivered or the deadline."""

    def __init__(
        self,
        notice: Notice,
        channel: Channel,
        body: dict[str, Any],
        text: str,
        deadline: float,
        clock: Callable[[], float],
        redact: Callable[[Any], Any],
    ) -> None:
        self.notice, self.channel, self.body, self.text = notice, channel, body, text
        self.deadline, self.clock, self.redact = deadline, clock, redact
        self.started = clock()
        self.attempts = 0
        self.delivered = False
        self.done = False
        self.error = ""
        # a daemon: a channel that hangs past the bound cannot keep the process alive
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"notify-{channel.name}")

    def run(self) -> None:
        delay = FIRST_BACKOFF
        try:
            while True:
                self.attempts += 1
                left = self.deadline - self.clock()
                try:
                    send(self.channel, self.body, self.text, max(0.1, min(ATTEMPT_TIMEOUT, left)))
                    self.delivered = True
                    return
                except Exception as exc:  # noqa: BLE001 (any failure of a channel is recorded, never raised)
                    self.error = str(self.redact(f"{type(exc).__name__}: {exc}"))[:300]
                left = self.deadline - self.clock()
                if self.attempts >= MAX_ATTEMPTS or left < delay + 0.2:
                    return
                time.sleep(delay)
                delay *= 2
        finally:
            self.done = True

    def outcome(self) -> dict[str, Any]:
        error = self.error
        if not self.done:
            error = f"no answer within the {self.deadline - self.started:.0f}s bound" + (
                f" (last: {error})" if error else ""
            )
        return {
            "event": self.notice.event,
            "incident": self.notice.incident.get("id"),
            "channel": self.channel.name,
            "delivered": self.delivered and self.done,
            "attempts": self.attempts,
            "error": "" if self.delivered else error,
            "seconds": round(self.clock() - self.started, 2),
        }


def send(channel: Channel, body: dict[str, Any], text: str, timeout: float) -> None:
    """One attempt; raises on any failure."""
    if channel.kind == "webhook":
        _post_json(channel.target, body, timeout)
    else:
        _apprise(channel.target, body, text, timeout)


def _post_json(url: str, body: dict[str, Any], timeout: float) -> None:
    import httpx

    answer = httpx.post(url, json=body, timeout=timeout, follow_redirects=False)
    if not 200 <= answer.status_code < 300:
        raise DeliveryError(f"the webhook answered HTTP {answer.status_code}")


def _apprise(url: str, body: dict[str, Any], text: str, timeout: float) -> None:
    import apprise

    sender = apprise.Apprise()
    seconds = max(1, int(timeout))
    joiner = "&" if "?" in url else "?"
    # Apprise's own connect and read timeouts, so an attempt ends within its share of the bound
    if "cto=" not in url:
        url += f"{joiner}cto={seconds}&rto={seconds}"
    if not sender.add(url):
        raise DeliveryError("not a URL Apprise knows (see the Apprise URL list)")
    with _ThreadLog() as log:
        ok = sender.notify(title=text, body=text + "\n\n" + json.dumps(body, indent=2))
    if not ok:
        raise DeliveryError(log.last or "Apprise reported the notification as not sent")


class _ThreadLog(logging.Handler):
    """Apprise's warnings from this thread only (several channels are sent at once)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.last = record.getMessage()[:200]

    def __enter__(self) -> _ThreadLog:
        logging.getLogger("apprise").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("apprise").removeHandler(self)


class DeliveryError(Exception):
    """A channel did not take a notification."""
