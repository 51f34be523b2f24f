"""Demo part: an authentication log worth a look, and session limits on the clinical database.

The log has four days of ordinary daytime logins, then in the last day: a brute-force burst on
one account ending in a success (a guessed password), a login from a source new to its account,
a login during off hours, and a few lines that are not login records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def auth_events(now: datetime) -> list[LoginEvent]:
    zone = ZoneInfo(ZONE)
    events: list[LoginEvent] = []
    for days in range(4, 0, -1):  # ordinary working days: 09:00-16:00 local, usual sources
        for i, (user, source) in enumerate(STAFF.items()):
            for hour in (9, 13, 16):
                at = _latest_local(now, zone, hour, 5 * i) - timedelta(days=days - 1)
                if at < now - timedelta(hours=1):
                    events.append(LoginEvent(at, user, source, True))
    burst_end = now - timedelta(hours=3)
    for k in range(15):  # a password guessed after 15 tries in under four minutes
        events.append(
            LoginEvent(burst_end - timedelta(seconds=15 * (15 - k)), "dr.jones", ATTACKER, False)
        )
    events.append(LoginEvent(burst_end, "dr.jones", ATTACKER, True))
    events.append(LoginEvent(now - timedelta(hours=2), "nurse.kim", "198.51.100.23", True))
    # off hours: the most recent 23:30 or 03:30 in New York, whichever came last
    late = max(_latest_local(now, zone, 23, 30), _latest_local(now, zone, 3, 30))
    events.append(LoginEvent(late, "dr.patel", STAFF["dr.patel"], True))
    return sorted(events, key=lambda e: e.at)


def security_daily(ctx: DemoContext) -> None:
    """The auth log and the securityMonitoring section (sessions on the demo's primary)."""
    log = ctx.workdir / "auth.jsonl"
    events = auth_events(datetime.now(UTC))
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
    if "primary" in ctx.config.get("databases", {}):
        section["sessions"] = {"database": "primary", "maxIdle": "15m", "maxLifetime": "12h"}
