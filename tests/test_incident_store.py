"""Issue 10/12: incidents kept in the history store (SQLite and PostgreSQL), per system and
environment, under a lock two runners share; the old state file imported once; a store that
cannot be reached falls back to the file."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_maintcheck.cli import main as maintcheck
from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import STORE_NAME, using
from pytest_maintcheck.incident_store import IMPORTED, STATE_FILE, IncidentStore
from pytest_maintcheck.sandbox import SandboxDatabase

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)  # injected: the 30-day listing of resolved ones


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> HistorySettings:
    """The embedded store in the report folder, or a PostgreSQL store in a fresh database."""
    if request.param == "sqlite":
        return HistorySettings()
    db: SandboxDatabase = request.getfixturevalue("pg_db")
    monkeypatch.setenv("PGPASSWORD", db.password)
    return HistorySettings(dsn=db.dsn)


def incident(key: str, system: str = "S", environment: str = "prod") -> dict[str, Any]:
    return {
        "id": f"INC-{key}",
        "system": system,
        "environment": environment,
        "check": "health",
        "target": "api",
        "severity": "high",
        "type": "availability",
        "title": "Service health: api",
        "timeline": {"detected": "2026-06-01T08:00:00Z"},
        "steps": [{"action": "Restart the API", "owner": "ops", "status": "pending"}],
        "occurrences": 1,
    }


RUNNER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.incident_store import IncidentStore

reports, dsn, name = Path(sys.argv[1]), sys.argv[2] or None, sys.argv[3]
store = IncidentStore(reports, HistorySettings(dsn=dsn))
for _ in range(int(sys.argv[4])):
    with store.open("S", "prod") as held:
        assert not held.notices, held.notices
        (kept,) = held.incidents
        seen = int(kept["occurrences"])
        time.sleep(0.01)  # read, think, write: without the lock the other runner's update is lost
        kept = {**kept, "occurrences": seen + 1, "runners": [*kept.get("runners", []), name]}
        held.save([kept], datetime.now(UTC))
"""


def test_two_runners_updating_one_incident_concurrently_lose_nothing(
    settings: HistorySettings, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    with IncidentStore(reports, settings).open("S", "prod") as held:
        held.save([incident("3f9a1c")], NOW)
    rounds = 15
    runners = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(reports), settings.dsn or "", name, str(rounds)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("runner-a", "runner-b")
    ]
    for runner in runners:
        _, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err
    (kept,) = IncidentStore(reports, settings).current("S", "prod") or []
    assert kept["occurrences"] == 1 + 2 * rounds
    assert sorted(kept["runners"]).count("runner-a") == rounds
    assert not (reports / STATE_FILE).exists()  # kept in the store, not the old file


def test_the_json_state_is_imported_once_for_every_system_it_holds(
    settings: HistorySettings, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    old = [incident("aaaaaa"), incident("bbbbbb", environment="demo")]
    (reports / STATE_FILE).write_text(json.dumps({"version": 1, "incidents": old}))
    store = IncidentStore(reports, settings)
    with store.open("S", "prod") as held:
        assert [i["id"] for i in held.incidents] == ["INC-aaaaaa"]
        assert not held.fresh
        assert any("imported into history store" in n for n in held.notices)
    assert not (reports / STATE_FILE).exists()
    assert json.loads((reports / (STATE_FILE + IMPORTED)).read_text())["incidents"] == old
    assert [i["id"] for i in store.current("S", "demo") or []] == ["INC-bbbbbb"]
    # a state file an older maintcheck writes again later is not imported over the store
    (reports / STATE_FILE).write_text(json.dumps({"version": 1, "incidents": []}))
    with store.open("S", "prod") as held:
        assert [i["id"] for i in held.incidents] == ["INC-aaaaaa"]
    with using(settings, reports) as history:
        assert [i["id"] for i in history.all_incidents()] == ["INC-bbbbbb", "INC-aaaaaa"]


def test_nothing_kept_yet_is_fresh_and_an_empty_kept_state_is_not(
    settings: HistorySettings, tmp_path: Path
) -> None:
    store = IncidentStore(tmp_path, settings)
    with store.open("S", "prod") as held:
        assert held.fresh  # the run reads the newest run folder's snapshot instead
        held.save([], NOW)
    with store.open("S", "prod") as held:
        assert not held.fresh
        assert held.incidents == []
    assert store.current("S", "prod") == []
    assert store.current("S", "demo") is None


def test_an_unreachable_store_keeps_the_incidents_in_the_file_until_it_is_back(
    pg_db: SandboxDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    reachable = HistorySettings(dsn=pg_db.dsn)
    with IncidentStore(tmp_path, reachable).open("S", "prod") as held:
        held.save([incident("3f9a1c")], NOW)
    # nothing listens on port 9: the store is down for this run (refused at once)
    down = HistorySettings(dsn="postgresql://maint@127.0.0.1:9/history")
    with IncidentStore(tmp_path, down).open("S", "prod") as held:
        assert held.fresh  # the file holds nothing yet: the run reads its newest snapshot
        (notice,) = held.notices
        assert "127.0.0.1:9" in notice
        assert STATE_FILE in notice
        held.save([{**incident("3f9a1c"), "occurrences": 2}], NOW)
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["keptWhileStoreUnreachable"] is True
    # back: the file is newer than the store's copy, so it is imported over it
    with IncidentStore(tmp_path, reachable).open("S", "prod") as held:
        assert [i["occurrences"] for i in held.incidents] == [2]
    assert not (tmp_path / STATE_FILE).exists()


def test_incident_ack_works_against_a_postgresql_history_store(
    pg_db: SandboxDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "maintcheck.yaml"
    config.write_text(
        f"version: 1\nsystem: S\nenvironment: prod\nhistory: {{dsn: '{pg_db.dsn}'}}\n"
    )
    reports = tmp_path / "reports"
    settings = HistorySettings(dsn=pg_db.dsn)
    for kept in (incident("3f9a1c"), incident("77e0b2", environment="demo")):
        with IncidentStore(reports, settings).open("S", kept["environment"]) as held:
            held.save([kept], NOW)
    given = ["--report-dir", str(reports), "--config", str(config)]
    assert maintcheck(["incident", "ack", "INC-3f", "--by", "alice", *given]) == 0
    assert maintcheck(["incident", "step", "3f9a", "1", "--status", "completed", *given]) == 0
    (acked,) = IncidentStore(reports, settings).current("S", "prod") or []
    assert acked["acknowledgedBy"] == "alice"
    assert acked["steps"][0]["status"] == "completed"
    assert not (reports / STORE_NAME).exists()  # the shared store, not the report folder's
    # the demo environment's incident is not this config's: unknown id, exit 4
    assert maintcheck(["incident", "ack", "INC-77e0", "--by", "alice", *given]) == 4
