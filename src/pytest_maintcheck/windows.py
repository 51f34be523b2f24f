"""Planned maintenance windows: the checks of a target inside one still run and are recorded,
but they page no one, do not fail the gate and are left out of availability.

As Nagios downtimes, Gatus and Uptime Kuma maintenance do it. A window is a one-off
``start``/``end`` (UTC unless the timestamp says otherwise) or a weekly slot in a time zone.
Pure functions of the config and an injected ``now``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# a check's target fixture to the word a window pattern uses before ':' ("backup:*")
_KINDS = (
    ("backup", "backup"),
    ("health_check", "service"),
    ("replicated_service", "service"),
    ("maintained_database", "database"),
    ("certificate", "certificate"),
    ("dependency", "dependency"),
    ("policy", "policy"),
    ("_metric", "metric"),
    ("access_review", "access"),
    ("auth_monitoring", "security"),
    ("session_policy", "security"),
)


@dataclass(frozen=True)
class Weekly:
    day: int  # 0 = Monday, as datetime.weekday()
    start: time
    end: time  # at or before start: the slot runs past midnight into the next day
    zone: ZoneInfo


@dataclass(frozen=True)
class MaintenanceWindow:
    name: str
    targets: tuple[str, ...]
    reason: str = ""
    ticket: str = ""
    start: datetime | None = None
    end: datetime | None = None
    weekly: Weekly | None = None

    def covers(self, names: Iterable[str]) -> bool:
        """A target pattern (fnmatch, case-sensitive) matching any of a check's names."""
        given = list(names)
        return any(fnmatch.fnmatchcase(n, p) for p in self.targets for n in given)

    def active(self, now: datetime) -> bool:
        return any(start <= now < end for start, end in self._slots_around(now))

    def next_slot(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The slot running now or the next one to start, in UTC; None when it is over."""
        upcoming = [(s, e) for s, e in self._slots_around(now, ahead=8) if e > now]
        return min(upcoming) if upcoming else None

    def record(self) -> dict[str, str]:
        """What a check's record carries of the window it ran in."""
        return {"name": self.name, "reason": self.reason, "ticket": self.ticket}

    def _slots_around(self, now: datetime, ahead: int = 1) -> list[tuple[datetime, datetime]]:
        if self.start is not None and self.end is not None:
            return [(self.start, self.end)]
        weekly = self.weekly
        assert weekly is not None
        local = now.astimezone(weekly.zone).date()
        out = []
        for offset in range(-7, 7 * ahead + 1):  # the slot that began yesterday is included
            day = local + timedelta(days=offset)
            if day.weekday() != weekly.day:
                continue
            begins = datetime.combine(day, weekly.start, weekly.zone)
            ends_on = day if weekly.end > weekly.start else day + timedelta(days=1)
            ends = datetime.combine(ends_on, weekly.end, weekly.zone)
            out.append((begins.astimezone(UTC), ends.astimezone(UTC)))
        return out


def target_names(fixtures: Iterable[str], target: str | None) -> list[str]:
    """The names a window can give a check's target: ``primary`` and ``database:primary``."""
    if not target:
        return []
    names = [target]
    for fixture in fixtures:
        kind = next((word for part, word in _KINDS if part in fixture), None)
        if kind:
            names.append(f"{kind}:{target}")
    return names


def window_for(
    windows: Sequence[MaintenanceWindow], names: Iterable[str], now: datetime
) -> MaintenanceWindow | None:
    """The first configured window covering one of these names at ``now``."""
    given = list(names)
    return next((w for w in windows if w.covers(given) and w.active(now)), None)


def upcoming(
    windows: Sequence[MaintenanceWindow], now: datetime, within: timedelta
) -> list[tuple[MaintenanceWindow, datetime, datetime]]:
    """Windows running now or starting within ``within``, soonest first."""
    out = []
    for w in windows:
        slot = w.next_slot(now)
        if slot is not None and slot[0] <= now + within:
            out.append((w, *slot))
    return sorted(out, key=lambda item: item[1])


# ---------------------------------------------------------------------------- config


Fail = Callable[[tuple[str | int, ...], str], Exception]


def parse_windows(raw: Sequence[Mapping[str, Any]], fail: Fail) -> tuple[MaintenanceWindow, ...]:
    """The schema has checked the shapes; here what a schema cannot say."""
    out = []
    seen: set[str] = set()
    for i, w in enumerate(raw):
        path: tuple[str | int, ...] = ("maintenanceWindows", i)
        if w["name"] in seen:
            raise fail((*path, "name"), f"{w['name']!r} is used twice; names must be unique")
        seen.add(w["name"])
        once = "start" in w or "end" in w
        if once == ("weekly" in w):
            raise fail(path, "give either start and end (one-off) or weekly (a weekly slot)")
        common = {
            "name": w["name"],
            "targets": tuple(w["targets"]),
            "reason": w.get("reason", ""),
            "ticket": str(w.get("ticket", "")),
        }
        if once:
            start = _moment((*path, "start"), w.get("start"), fail)
            end = _moment((*path, "end"), w.get("end"), fail)
            if end <= start:
                raise fail((*path, "end"), "the end must be after the start")
            out.append(MaintenanceWindow(**common, start=start, end=end))
        else:
            out.append(MaintenanceWindow(**common, weekly=_weekly((*path, "weekly"), w, fail)))
    return tuple(out)


def _moment(path: tuple[str | int, ...], text: object, fail: Fail) -> datetime:
    if text is None:
        raise fail(path, "is required with a one-off window (start and end)")
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise fail(path, f"expected a time like 2026-12-05T22:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # written without an offset: UTC, as records are
    return moment.astimezone(UTC)


def _weekly(path: tuple[str | int, ...], w: Mapping[str, Any], fail: Fail) -> Weekly:
    slot = w["weekly"]
    try:
        zone = ZoneInfo(slot.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(
            (*path, "timezone"), f"unknown time zone {slot.get('timezone')!r} (e.g. Europe/Berlin)"
        ) from None
    clocks = []
    for key in ("from", "to"):
        match = _CLOCK.match(str(slot[key]))
        if not match:
            raise fail((*path, key), f"expected a time of day like 02:00, got {slot[key]!r}")
        clocks.append(time(int(match.group(1)), int(match.group(2))))
    if clocks[0] == clocks[1]:
        raise fail((*path, "to"), "the slot is empty: from and to are the same time")
    return Weekly(DAYS.index(slot["day"]), clocks[0], clocks[1], zone)
