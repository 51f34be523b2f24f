"""Demo part: an authentication log worth a look, and session limits on the clinical database.

The log has four days of ordinary daytime logins, then in the last day: a brute-force burst on
one account ending in a success (a guessed password), a login from a source new to its account,
a login during off hours, a scan for an "admin" account that does not exist, and a few lines
that are not login records. Every planted event sits at a fixed local time in New York (office
hours, or the night for the off-hours login), so the findings are the same at any hour the demo
runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pytest_maintcheck.probes.authlog import LoginEvent, write_events

if TYPE_CHECKING:  # demo.py imports this module for its PARTS
    from pytest_maintcheck.sandbox.demo import DemoContext

ZONE = "America/New_York"
STAFF = {  # username -> the workstation address they usually log in from (documentation range)
    "dr.jones": "192.0.2.10",
    "dr.patel": "192.0.2.11",
    "nurse.kim": "192.0.2.12",
    "nurse.ortiz": "192.0.2.13",
    "tech.lee": "192.0.2.14",
}
ATTACKER = "203.0.113.66"
NEW_SOURCE = "198.51.100.23"
SCANNER = "203.0.113.67"
# local (New York) times of the last day's planted events: office hours, except the night login
GUESSED_AT = time(10, 40)  # dr.jones's password guessed after 15 failures
SCANNED_AT = time(12, 15)  # six tries of an "admin" account nobody has
NEW_SOURCE_AT = time(14, 10)  # nurse.kim from an address she never used
OFF_HOURS_AT = (time(23, 30), time(3, 30))  # dr.patel at night: whichever came last
UNPARSEABLE = (
    '{"timestamp": "2024-02-30T25:00:00Z", "username": "dr.jones", "sourceIp": "192.0.2.10"',
    "Mar  5 03:12:44 sso sshd[812]: Accepted publickey for deploy",
    '{"timestamp": "not a time", "username": "tech.lee", "sourceIp": "x", "outcome": "success"}',
)


def _latest_local(now: datetime, zone: ZoneInfo, hour: int, minute: int) -> datetime:
    """The most recent moment before ``now`` that reads hour:minute on the local clock."""
    local = now.astimezone(zone)
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at >= local:
        at -= timedelta(days=1)
    return at.astimezone(UTC)


def _last_day(now: datetime, zone: ZoneInfo, at: time) -> datetime:
    """The latest moment that read ``at`` locally, kept inside the last 23 hours: when the
    latest one is older (it is about an hour after the clock's time now), one hour later
    still reads office hours, and a day that gained an hour (DST) cannot push it out of a
    24h window."""
    return max(_latest_local(now, zone, at.hour, at.minute), now - timedelta(hours=23))


def auth_events(now: datetime) -> list[LoginEvent]:
    zone = ZoneInfo(ZONE)
    events: list[LoginEvent] = []
    for days in range(4, 0, -1):  # ordinary working days: 09:00-16:00 local, usual sources
        for i, (user, source) in enumerate(STAFF.items()):
            for hour in (9, 13, 16):
                at = _latest_local(now, zone, hour, 5 * i) - timedelta(days=days - 1)
                if at < now - timedelta(hours=1):
                    events.append(LoginEvent(at, user, source, True))
    burst_end = _last_day(now, zone, GUESSED_AT)
    for k in range(15):  # a password guessed after 15 tries in under four minutes
        events.append(
            LoginEvent(burst_end - timedelta(seconds=15 * (15 - k)), "dr.jones", ATTACKER, False)
        )
    events.append(LoginEvent(burst_end, "dr.jones", ATTACKER, True))
    scanned = _last_day(now, zone, SCANNED_AT)
    events += [
        LoginEvent(scanned - timedelta(seconds=20 * k), "admin", SCANNER, False) for k in range(6)
    ]
    events.append(LoginEvent(_last_day(now, zone, NEW_SOURCE_AT), "nurse.kim", NEW_SOURCE, True))
    late = max(_latest_local(now, zone, t.hour, t.minute) for t in OFF_HOURS_AT)
    events.append(LoginEvent(late, "dr.patel", STAFF["dr.patel"], True))
    return sorted(events, key=lambda e: e.at)


def security_daily(ctx: DemoContext, now: datetime | None = None) -> None:
    """The auth log and the securityMonitoring section (sessions on the demo's primary);
    ``now`` is when the log ends (the tests pin it, the demo takes the clock)."""
    log = ctx.workdir / "auth.jsonl"
    events = auth_events(now or datetime.now(UTC))
    half = len(events) // 2
    write_events(log, events[:half])
    with log.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(UNPARSEABLE) + "\n")
    write_events(log, events[half:])
    section = ctx.section("securityMonitoring", {})
    section.update(
        {
            "authLog": {"file": str(log)},
            "window": "24h",
            "failedLogins": {
                "perAccount": {"warn": 5, "fail": 10},
                "perSource": {"warn": 20, "fail": 50},
                "ratio": {"warn": 0.2, "fail": 0.5},
            },
            "offHours": {"start": "20:00", "end": "06:00", "timezone": ZONE},
        }
    )
    roster = ctx.config.get("accessReview", {}).get("roster")
    if roster:  # the staff are known accounts, so failed logins name them (the scan stays hashed)
        with open(roster, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{user},active\n" for user in STAFF))
    if "primary" in ctx.config.get("databases", {}):
        section["sessions"] = {"database": "primary", "maxIdle": "15m", "maxLifetime": "12h"}
