"""The store itself, on both engines: schema, writes, reads, CSV, and a store that fails."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import open_store, using
from pytest_maintcheck.history.csvio import CsvError, read_runs, write_rows
from pytest_maintcheck.history.sqlite import STORE_NAME
from pytest_maintcheck.history.store import (
    SCHEMA_VERSION,
    HistoryUnavailable,
    StoredCheck,
    StoredRun,
)
from pytest_maintcheck.sandbox import SandboxDatabase


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> HistorySettings:
    """The embedded store in tmp_path, or a PostgreSQL store in a fresh test database."""
    if request.param == "sqlite":
        return HistorySettings()
    db: SandboxDatabase = request.getfixturevalue("pg_db")
    monkeypatch.setenv("PGPASSWORD", db.password)
    return HistorySettings(dsn=db.dsn)


def run(run_id: str, at: str, value: float, system: str = "S", env: str = "prod") -> StoredRun:
    check = StoredCheck("health", "api", at, "pass", measurements={"responseTime": value})
    return StoredRun(run_id, system, env, "runner-1", at, at, checks=(check,))


def test_a_new_store_is_created_at_the_current_schema_version(
    settings: HistorySettings, tmp_path: Path
) -> None:
    with using(settings, tmp_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with using(settings, tmp_path) as store:  # opening again migrates nothing
        assert store.schema_version() == SCHEMA_VERSION


def test_runs_are_kept_per_system_and_a_rewrite_replaces(
    settings: HistorySettings, tmp_path: Path
) -> None:
    with using(settings, tmp_path) as store:
        store.record_runs(
            [
                run("20260101T000000.000Z-a", "2026-01-01T00:00:00Z", 10),
                run("20260102T000000.000Z-b", "2026-01-02T00:00:00Z", 20),
                run("20260102T000000.000Z-c", "2026-01-02T00:00:00Z", 99, env="demo"),
            ]
        )
        store.record_runs([run("20260102T000000.000Z-b", "2026-01-02T00:00:00Z", 25)])
        got = store.points("S", "prod", "2026-01-01T00:00:00Z", ["health"])
        assert [(p.run_id, p.value) for p in got] == [
            ("20260101T000000.000Z-a", 10.0),
            ("20260102T000000.000Z-b", 25.0),
        ]
        assert store.points("S", "prod", "2026-01-02T00:00:00Z", ["health"])[0].value == 25
        assert store.recorded_run_ids("2026") == {
            "20260101T000000.000Z-a", "20260102T000000.000Z-b", "20260102T000000.000Z-c"
        }  # fmt: skip


def test_a_store_from_a_newer_maintcheck_is_refused(
    settings: HistorySettings, tmp_path: Path
) -> None:
    with using(settings, tmp_path) as store:
        store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(HistoryUnavailable, match="newer than this maintcheck knows"):
        open_store(settings, tmp_path)


def test_export_then_import_gives_the_same_measurements(
    settings: HistorySettings, tmp_path: Path
) -> None:
    with using(settings, tmp_path) as store:
        store.record_runs([run("20260101T000000.000Z-a", "2026-01-01T00:00:00Z", 12.5)])
        out = io.StringIO()
        assert write_rows(out, store.export_rows()) == 1
    exported = out.getvalue()
    assert exported.splitlines()[0] == (
        "at,system,environment,check,target,metric,value,verdict,host,runId"
    )
    runs = read_runs(io.StringIO(exported), "export.csv", "ignored", "ignored")
    other = tmp_path / "other"
    with using(HistorySettings(), other) as copy:
        copy.record_runs(runs)
        again = io.StringIO()
        write_rows(again, copy.export_rows())
    assert again.getvalue() == exported


def test_a_csv_row_without_zone_is_utc_and_rows_group_into_runs() -> None:
    text = (
        "at,check,target,metric,value\n"
        "2025-10-01,health,api,responseTime,120\n"
        "2025-10-01,health,api,errorRate,0.1\n"
        "2025-10-02T06:00:00+02:00,database_size,primary,size,5e9\n"
    )
    runs = read_runs(io.StringIO(text), "old.csv", "S", "prod")
    assert [(r.started_at, r.system, r.environment) for r in runs] == [
        ("2025-10-01T00:00:00Z", "S", "prod"),
        ("2025-10-02T04:00:00Z", "S", "prod"),
    ]
    assert dict(runs[0].checks[0].measurements) == {"responseTime": 120.0, "errorRate": 0.1}
    # the same file imported twice gives the same run ids: no doubled history
    assert [r.run_id for r in read_runs(io.StringIO(text), "old.csv", "S", "prod")] == [
        r.run_id for r in runs
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("at,check,target,value\n", "old.csv:1: missing column(s) metric"),
        ("at,check,target,metric,value,colour\n", "old.csv:1: unknown column(s) colour"),
        ("at,check,target,metric,value\nyesterday,health,api,x,1\n", "old.csv:2: at 'yesterday'"),
        ("at,check,target,metric,value\n2025-10-01,health,api,x,fast\n", "old.csv:2: value"),
        ("at,check,target,metric,value\n2025-10-01,health,,x,1\n", "old.csv:2: target is empty"),
        ("at,check,target,metric,value\n2025-10-01,health,api,x,nan\n", "not a finite number"),
    ],
)
def test_a_bad_csv_names_its_line(text: str, message: str) -> None:
    with pytest.raises(CsvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_runs(io.StringIO(text), "old.csv", "S", "prod")


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = " + sys.argv[2])
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def hold_lock(tmp_path: Path) -> Iterator[object]:
    """Another real process holding the store's write lock until the test ends."""
    procs: list[subprocess.Popen[str]] = []

    def hold(mode: str = "NORMAL") -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(tmp_path / STORE_NAME), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"

    yield hold
    for proc in procs:
        proc.communicate("\n", timeout=10)


def test_a_store_locked_by_another_process_fails_within_the_bound(
    tmp_path: Path, hold_lock: object
) -> None:
    with using(HistorySettings(), tmp_path) as store:  # an existing WAL store
        store.record_runs([run("20260101T000000.000Z-a", "2026-01-01T00:00:00Z", 1)])
    hold_lock()  # type: ignore[operator]
    with using(HistorySettings(), tmp_path) as store:
        # WAL: a reader is not held up by the writer
        assert len(store.points("S", "prod", "2026", ["health"])) == 1
        started = time.monotonic()
        with pytest.raises(HistoryUnavailable, match="locked by another process for more than 2s"):
            store.record_runs([run("20260102T000000.000Z-b", "2026-01-02T00:00:00Z", 2)])
        assert time.monotonic() - started < 5


def test_a_store_held_in_exclusive_locking_mode_cannot_even_be_read(
    tmp_path: Path, hold_lock: object
) -> None:
    sqlite3.connect(tmp_path / STORE_NAME).close()
    hold_lock("EXCLUSIVE")  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(HistoryUnavailable, match="locked"):
        open_store(HistorySettings(), tmp_path)
    assert time.monotonic() - started < 5


def test_a_corrupt_store_is_named_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / STORE_NAME).write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(HistoryUnavailable, match="is corrupt") as caught:
        open_store(HistorySettings(), tmp_path)
    assert caught.value.corrupt


def test_an_unreachable_postgres_store_fails_within_the_bound(tmp_path: Path) -> None:
    from pytest_maintcheck.sandbox.postgres import free_port

    started = time.monotonic()
    dsn = f"postgresql://maint@127.0.0.1:{free_port()}/history"
    with pytest.raises(HistoryUnavailable, match=r"history store postgresql://maint@127\.0\.0\.1"):
        open_store(HistorySettings(dsn=dsn), tmp_path)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("history: {dsn: 'postgresql://maint:hunter2@db/h'}", "history.dsn: a password is written"),
        ("history: {window: 12h}", "history.window: the history window must be 1d or longer"),
        ("history: {windw: 30d}", "did you mean 'window'"),
        ("capacity: {trendFactor: 1}", "capacity.trendFactor"),
    ],
)
def test_history_and_capacity_config_errors_are_one_message(
    tmp_path: Path, text: str, message: str
) -> None:
    from pytest_maintcheck.config import ConfigError, load_config

    path = tmp_path / "maintcheck.yaml"
    path.write_text(f"version: 1\n{text}\n")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as caught:
        load_config(path, environ={})
    assert "hunter2" not in str(caught.value)


def test_history_config_defaults_and_a_dsn_password_from_the_environment(tmp_path: Path) -> None:
    from pytest_maintcheck.config import load_config

    path = tmp_path / "maintcheck.yaml"
    path.write_text("version: 1\n")
    loaded = load_config(path, environ={})
    assert loaded.history == HistorySettings(dsn=None, window=30 * 86400.0)
    assert loaded.capacity_trend_factor == 1.5
    path.write_text(
        "version: 1\nhistory: {dsn: 'postgresql://maint:${HISTORY_PW}@db/h', window: 90d}\n"
    )
    loaded = load_config(path, environ={"HISTORY_PW": "s3cret-history"})
    assert loaded.history.window == 90 * 86400.0
    assert "s3cret-history" in loaded.secrets  # masked wherever it could be shown


def test_a_version_1_store_is_migrated_and_keeps_planned_maintenance_apart(
    settings: HistorySettings, tmp_path: Path
) -> None:
    from pytest_maintcheck.history.postgres import PostgresStore
    from pytest_maintcheck.history.sqlite import SqliteStore
    from pytest_maintcheck.history.store import MIGRATIONS, HistoryStore

    old: HistoryStore = (
        PostgresStore(settings.dsn) if settings.dsn else SqliteStore(tmp_path / STORE_NAME)
    )
    with old, old._write() as cur:  # the store as maintcheck with schema 1 left it
        cur.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for statement in MIGRATIONS[1]:
            cur.execute(statement)
        old._set_meta(cur, "schema_version", "1")
        cur.execute(
            old._sql(
                "INSERT INTO checks (run_id, check_key, target, system, environment, host, at, "
                "verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            ("20260101T000000.000Z-a", "health", "api", "S", "prod", "r", "2026-01-01T00:00:00Z",
             "pass"),
        )  # fmt: skip
        cur.execute(
            old._sql(
                "INSERT INTO runs (run_id, system, environment, host, started_at, source, "
                "checks_recorded) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            ("20260101T000000.000Z-a", "S", "prod", "r", "2026-01-01T00:00:00Z", "run", 1),
        )
    planned = StoredCheck("health", "api", "2026-01-02T00:00:00Z", "violation",
                          measurements={"errorRate": 1.0}, in_maintenance=True)  # fmt: skip
    with using(settings, tmp_path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 4
        assert store.incidents("S", "prod") is None  # migration 4: the incidents table, empty
        store.record_runs([StoredRun("20260102T000000.000Z-b", "S", "prod", "r",
                                     "2026-01-02T00:00:00Z", checks=(planned,))])  # fmt: skip
        first, second = store.runs_between("2026")
        assert [c.in_maintenance for c in first.checks] == [False]  # the default for old rows
        assert second.checks == (planned,)
        assert store.in_maintenance("S", "prod", "2026", ["health"]) == {
            ("20260102T000000.000Z-b", "health", "api")
        }
        assert store.runs_between("2026", "2026-01-02T00:00:00Z", {("S", "prod")}) == [first]
        assert store.runs_between("2026", None, {("S", "demo")}) == []
