"""A check's result as a frozen value: plain JSON on the wire, merged by the run in-process."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_maintcheck.records import counts
from pytest_maintcheck.result import CheckResult, Outcome
from pytest_maintcheck.run import RunState

WIRE: dict[str, Any] = {  # one result as a worker sends it, and as results.json holds it
    "nodeid": "checks/test_daily_health.py::test_health[api]",
    "name": "test_health[api]",
    "check": "health",
    "title": "Service health",
    "suite": "daily",
    "target": "api",
    "verdict": "degraded",
    "severity": "high",
    "category": "availability",
    "requirements": ["A.8.16"],
    "incidentType": "outage",
    "metrics": {"responseTime": 812.0},
    "thresholds": {"responseTime": {"warning": 500, "critical": 2000}},
    "findings": [{"verdict": "degraded", "description": "slow", "action": "look"}],
    "details": {"type": "api"},
    "message": "responseTime 812 ms",
    "duration": 0.25,
    "phase": "call",
    "finishedAt": "2026-01-05T03:00:00Z",
    "waived": False,
    "waiver": None,
}


def test_the_wire_form_round_trips_key_for_key() -> None:
    result = CheckResult.from_json(WIRE)
    assert result.verdict is Outcome.DEGRADED
    assert result.incident_type == "outage"
    assert result.to_json() == WIRE
    assert list(result.to_json()) == list(WIRE)  # results.json keeps its key order
    assert json.loads(json.dumps(result.to_json())) == WIRE  # nothing but plain JSON


def test_optional_keys_appear_only_when_set() -> None:
    site = {**WIRE, "action": "Restart it.", "runbook": ["a", "b"], "reruns": 2}
    planned = {**WIRE, "inMaintenance": True, "maintenanceWindow": {"name": "patching"}}
    skipped = {**WIRE, "verdict": "skipped", "notConfigured": "databases"}
    for wire in (site, planned, skipped):
        assert CheckResult.from_json(wire).to_json() == wire
    assert "inMaintenance" not in CheckResult.from_json(WIRE).to_json()


def test_a_result_cannot_be_changed_in_place() -> None:
    result = CheckResult.from_json(WIRE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verdict = Outcome.PASS  # type: ignore[misc]
    assert result.but(verdict=Outcome.PASS).verdict is Outcome.PASS
    assert result.verdict is Outcome.DEGRADED


def test_a_result_is_read_by_attribute_and_its_record_only_through_to_json() -> None:
    """No string-key reading of a live result that could drift from results.json's keys."""
    result = CheckResult.from_json(WIRE)
    assert not isinstance(result, Mapping)
    with pytest.raises(TypeError):
        result["verdict"]  # type: ignore[index]
    assert result.to_json()["verdict"] == result.verdict == "degraded"


def test_an_unknown_verdict_on_the_wire_is_refused() -> None:
    with pytest.raises(ValueError, match="broken"):
        CheckResult.from_json({**WIRE, "verdict": "broken"})


def _state(tmp_path: Path) -> RunState:
    return RunState(
        rootdir=tmp_path,
        config_path=None,
        default_config_path=tmp_path / "maintcheck.yaml",
        report_dir=tmp_path / "reports",
    )


def _phase(verdict: str, phase: str, message: str) -> CheckResult:
    return CheckResult.from_json({**WIRE, "verdict": verdict, "phase": phase, "message": message})


def test_the_worst_phase_stands_and_a_failed_teardown_makes_an_error(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.add_result(_phase("violation", "call", "too slow"))
    state.add_result(_phase("pass", "teardown", "fine"))  # milder: ignored
    assert state.results[WIRE["nodeid"]].verdict is Outcome.VIOLATION
    state.add_result(_phase("error", "teardown", "teardown failed: lock"))
    merged = state.results[WIRE["nodeid"]]
    assert merged.verdict is Outcome.ERROR
    assert merged.message == "too slow\nteardown failed: lock"
    assert merged.phase == "call"


def test_a_rerun_is_counted_on_the_final_attempt(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.add_result(_phase("error", "call", "first try"))
    state.discard_attempt(WIRE["nodeid"])
    state.add_result(_phase("pass", "call", "second try"))
    final = state.results[WIRE["nodeid"]]
    assert (final.verdict, final.reruns, final.to_json()["reruns"]) == (Outcome.PASS, 1, 1)


def test_a_crashed_worker_turns_the_pending_result_into_an_error(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.pending[WIRE["nodeid"]] = _phase("pass", "setup", "")
    state.worker_crashed(WIRE["nodeid"], "node down: gw0")
    crashed = state.results[WIRE["nodeid"]]
    assert crashed.verdict is Outcome.ERROR
    assert "worker running it crashed" in crashed.message
    assert crashed.findings[0]["action"].startswith("Re-run it alone")


def test_degraded_fails_the_run_only_when_asked_and_not_waived(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.add_result(_phase("degraded", "call", "slow"))
    assert state.exit_status(0) == 0
    state.fail_on = "degraded"
    assert state.exit_status(0) == 1
    state.results[WIRE["nodeid"]] = state.results[WIRE["nodeid"]].but(waived=True)
    assert state.exit_status(0) == 0
    assert counts(state.results.values())["degraded"] == 1
