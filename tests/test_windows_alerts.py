"""Maintenance windows (time zones, weekly slots, patterns) and who is told of an incident
(routing, escalation of unacknowledged incidents, the flapping guard), at an injected time."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_maintcheck.config import ConfigError, load_config
from pytest_maintcheck.notify import Route, plan_run
from pytest_maintcheck.windows import target_names, upcoming, window_for

WINDOWS = """\
version: 1
maintenanceWindows:
  - {name: db-patching, targets: [clinical-db, primary], start: 2026-12-05T22:00:00Z,
     end: 2026-12-06T01:00:00Z, reason: "PostgreSQL 15.10 minor update", ticket: CHG-1042}
  - {name: sunday-backups, targets: ["backup:*"],
     weekly: {day: sunday, from: "02:00", to: "04:00", timezone: Europe/Berlin}}
  - {name: night, targets: [viewer], weekly: {day: friday, from: "23:00", to: "01:00"}}
"""


def _config(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(text)
    return load_config(path, environ={})


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_one_off_window_covers_its_targets_from_start_to_end(tmp_path: Path) -> None:
    windows = _config(tmp_path, WINDOWS).maintenance_windows
    inside, after = _at("2026-12-05T23:30:00Z"), _at("2026-12-06T01:00:00Z")
    for target in ("clinical-db", "primary"):
        found = window_for(windows, [target], inside)
        assert found is not None
        assert found.record() == {
            "name": "db-patching",
            "reason": "PostgreSQL 15.10 minor update",
            "ticket": "CHG-1042",
        }
        assert window_for(windows, [target], after) is None  # the end is not inside
    assert window_for(windows, ["other-db"], inside) is None


def test_a_weekly_slot_follows_its_time_zone_through_daylight_saving(tmp_path: Path) -> None:
    windows = _config(tmp_path, WINDOWS).maintenance_windows
    names = target_names(["pg_dump_backup"], "clinical-nightly")
    assert names == ["clinical-nightly", "backup:clinical-nightly"]
    # Berlin 02:00-04:00 is 01:00-03:00 UTC in winter (CET) and 00:00-02:00 UTC in summer (CEST)
    assert window_for(windows, names, _at("2026-01-04T01:30:00Z")) is not None
    assert window_for(windows, names, _at("2026-01-04T00:30:00Z")) is None
    assert window_for(windows, names, _at("2026-07-05T00:30:00Z")) is not None
    assert window_for(windows, names, _at("2026-07-05T02:30:00Z")) is None
    assert window_for(windows, names, _at("2026-07-06T00:30:00Z")) is None  # a Monday
    assert window_for(windows, ["clinical-nightly"], _at("2026-07-05T00:30:00Z")) is None


def test_a_weekly_slot_past_midnight_runs_into_the_next_day(tmp_path: Path) -> None:
    windows = _config(tmp_path, WINDOWS).maintenance_windows
    assert window_for(windows, ["viewer"], _at("2026-12-04T23:30:00Z")) is not None  # Friday
    assert window_for(windows, ["viewer"], _at("2026-12-05T00:30:00Z")) is not None  # Saturday
    assert window_for(windows, ["viewer"], _at("2026-12-05T01:00:00Z")) is None
    assert window_for(windows, ["viewer"], _at("2026-12-03T23:30:00Z")) is None  # Thursday


def test_upcoming_windows_are_listed_soonest_first(tmp_path: Path) -> None:
    windows = _config(tmp_path, WINDOWS).maintenance_windows
    now = _at("2026-12-01T12:00:00Z")  # a Tuesday
    listed = [(w.name, start) for w, start, _ in upcoming(windows, now, timedelta(days=7))]
    assert listed == [
        ("night", _at("2026-12-04T23:00:00Z")),
        ("db-patching", _at("2026-12-05T22:00:00Z")),
        ("sunday-backups", _at("2026-12-06T01:00:00Z")),
    ]
    assert upcoming(windows, _at("2027-01-01T00:00:00Z"), timedelta(hours=12)) == []  # a Friday


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: a, targets: [x], start: 2026-12-05T22:00:00Z}", "end: is required"),
        (
            "{name: a, targets: [x], start: 2026-12-06T00:00:00Z, end: 2026-12-05T00:00:00Z}",
            "the end must be after the start",
        ),
        (
            "{name: a, targets: [x], weekly: {day: sunday, from: '02:00', to: '04:00',"
            " timezone: Mars/Olympus}}",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            "{name: a, targets: [x], weekly: {day: sunday, from: '2am', to: '04:00'}}",
            "expected a time of day like 02:00",
        ),
        (
            "{name: a, targets: [x], start: 2026-12-05T22:00:00Z, end: 2026-12-06T00:00:00Z,"
            " weekly: {day: sunday, from: '02:00', to: '04:00'}}",
            "give either start and end",
        ),
        (
            "{name: a, targets: [x], weekly: {day: someday, from: '02:00', to: '04:00'}}",
            "must be one of monday",
        ),
        (
            "{name: a, targets: [x], start: soon, end: 2026-12-06T00:00:00Z}",
            "expected a time like 2026-12-05T22:00:00Z",
        ),
    ],
)
def test_a_bad_window_is_one_clear_config_error(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, f"version: 1\nmaintenanceWindows:\n  - {entry}\n")
    assert message in str(caught.value)
    assert "maintenanceWindows[0]" in str(caught.value)


def test_alert_channels_named_must_exist_and_urls_are_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no channel named .pager. in alerts\.channels"):
        _config(
            tmp_path,
            "version: 1\nalerts:\n  channels: {ops: {webhook: 'http://x/h'}}\n"
            "  incidentTypes: {security: {channels: [pager]}}\n",
        )
    with pytest.raises(ConfigError, match="give exactly one of webhook or url"):
        _config(tmp_path, "version: 1\nalerts: {channels: {ops: {}}}\n")
    path = tmp_path / "maintcheck.yaml"
    path.write_text(
        "version: 1\nalerts:\n  channels: {oncall: {url: '${ONCALL_APPRISE_URL}'}}\n"
        "  after: 2\n  unacknowledgedAfter: 30m\n"
    )
    config = load_config(path, environ={"ONCALL_APPRISE_URL": "slack://tokenA/tokenB/tokenC"})
    assert config.alerts.after == 2
    assert config.alerts.unacknowledged_after == 1800
    assert "slack://tokenA/tokenB/tokenC" in config.secrets


# ---------------------------------------------------------------------------- who is told


def _incident(**changes: Any) -> dict[str, Any]:
    incident: dict[str, Any] = {
        "id": "INC-abc123",
        "check": "health",
        "target": "clinical-api",
        "type": "availability",
        "severity": "high",
        "occurrences": 1,
        "notified": [],
        "timeline": {"detected": "2026-12-05T10:00:00Z", "responded": "", "resolved": ""},
    }
    incident.update(changes)
    return incident


def _settings(tmp_path: Path, extra: str = "") -> Any:
    return _config(
        tmp_path,
        "version: 1\nalerts:\n  channels:\n"
        + "".join(
            f"    {c}: {{webhook: 'http://127.0.0.1:9/{c}'}}\n" for c in ("ops", "sec", "lead")
        )
        + "  incidentTypes: {security: {channels: [sec], escalation: [lead]}}\n"
        + extra,
    ).alerts


def test_routing_by_health_check_then_incident_type_then_every_channel(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    health = {"clinical-api": Route(("ops",), ("lead",))}
    now = _at("2026-12-05T10:05:00Z")
    (own,) = plan_run([_incident()], settings, health, now)
    assert (own.event, own.channels) == ("detected", ("ops",))
    (critical,) = plan_run([_incident(severity="critical")], settings, health, now)
    assert critical.channels == ("ops", "lead")  # escalation channels too for critical ones
    (typed,) = plan_run([_incident(check="failed_logins", type="security")], settings, health, now)
    assert typed.channels == ("sec",)
    (rest,) = plan_run([_incident(check="certificate", type="performance")], settings, {}, now)
    assert rest.channels == ("ops", "sec", "lead")  # no route: every channel


def test_an_unacknowledged_incident_is_escalated_once_after_the_configured_time(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, "  unacknowledgedAfter: 30m\n")
    health = {"clinical-api": Route(("ops",), ("lead",))}
    told = _incident(notified=["ops"])
    assert plan_run([told], settings, health, _at("2026-12-05T10:29:00Z")) == []
    (escalated,) = plan_run([told], settings, health, _at("2026-12-05T10:30:00Z"))
    assert (escalated.event, escalated.channels) == ("escalated", ("lead",))
    acked = _incident(notified=["ops"], timeline={**told["timeline"], "responded": "x"})
    assert plan_run([acked], settings, health, _at("2026-12-05T11:00:00Z")) == []
    done = _incident(notified=["ops"], escalated=True)
    assert plan_run([done], settings, health, _at("2026-12-05T11:00:00Z")) == []


def test_after_n_runs_and_resolution_only_to_those_told(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "  after: 3\n")
    now = _at("2026-12-05T10:05:00Z")
    assert plan_run([_incident(occurrences=2)], settings, {}, now) == []
    assert len(plan_run([_incident(occurrences=3)], settings, {}, now)) == 1
    resolved = _incident(timeline={"detected": "x", "responded": "", "resolved": "y"})
    assert plan_run([resolved], settings, {}, now) == []  # nobody was told: nothing to close
    (notice,) = plan_run([{**resolved, "notified": ["sec"]}], settings, {}, now)
    assert (notice.event, notice.channels) == ("resolved", ("sec",))
    assert plan_run([_incident(occurrences=5)], settings, {}, now, frozenset({"INC-abc123"})) == []
