"""Review findings (issue 8, points 13-15): a restore runs the dump's code, and is interrupted.

A crafted dump (a materialized view whose function runs COPY ... TO PROGRAM) is restored only
as a role that cannot run server programs; a target role that could is refused with the
reason, and the program never runs. SIGTERM stops the whole pytest run like Ctrl-C (no next
restore starts), and a run killed with SIGKILL leaves a pg_restore that the next run stops at
once. Real dumps, real pg_restore processes, real signals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from psycopg import sql

from check_runs import CHECKS, run_checks
from pytest_maintcheck.probes.restore import restore_into_scratch
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from test_backup_probes import _RESTORE_SCRIPT, _restore_is_running, big_dump, small_dump
from test_backups import (
    RESTORER,
    RESTORER_PASSWORD,
    backup_entry,
    pg_dump,
    restorer,
    restorer_env,
    scratch_databases,
    stamped,
)

__all__ = ["big_dump", "restorer", "restorer_env", "small_dump"]  # fixtures, used by name


# ---------------------------------------------------------------------------- crafted dump


@pytest.fixture
def witness_dir() -> Iterator[Path]:
    """A folder the server's account (postgres or nobody) may write a file into."""
    folder = Path(tempfile.mkdtemp(prefix="maintcheck-witness-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _crafted_dump(db: SandboxDatabase, out: Path, witness: Path) -> Path:
    """A dump whose restore calls a function that writes ``witness`` on the server.

    The materialized view is made while the function is harmless; the function then becomes
    the attack, and pg_dump writes REFRESH MATERIALIZED VIEW, which calls it on restore.
    """
    with db.connect() as conn:
        conn.execute("CREATE FUNCTION ward_total() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        conn.execute("CREATE MATERIALIZED VIEW ward_totals AS SELECT public.ward_total() AS n")
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION ward_total() RETURNS int LANGUAGE plpgsql AS $f$"
                " BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal({});"
                " RETURN 1; END $f$"
            ).format(sql.Literal(f"cat > {witness}"))  # reads its stdin: no broken pipe
        )
        # the attack works when a superuser runs it: the absence of the file proves something
        conn.execute("SELECT ward_total()")
    assert witness.exists(), "the crafted function must really run its program"
    witness.unlink()
    return pg_dump(db, out)


def test_a_superuser_restore_target_is_refused_and_the_program_never_runs(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    witness_dir: Path,
) -> None:
    witness = witness_dir / "ran"
    folder = pytester.path / "backups"
    _crafted_dump(pg_db, stamped(folder, "clinical", datetime.now(UTC)), witness)
    entry = backup_entry(folder)
    del entry["checksums"]
    entry["restoreTest"] = {"target": "restore", "maxDuration": "10m"}
    config = {"version": 1, "system": "test", "backups": [entry],
              "databases": {"restore": {"dsn": pg_cluster.dsn("postgres")}}}  # fmt: skip
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    run = run_checks(pytester, config, "test_weekly_backups.py", args=["-k", "restore"])
    restore = run.by_name["test_backup_restore[clinical-nightly]"]
    assert restore["verdict"] == "violation"
    assert (
        "not attempted: refusing to restore as role sandbox_admin is a superuser"
        in (restore["message"])
    )
    assert "LOGIN CREATEDB only" in restore["findings"][0]["action"]
    assert restore["details"]["restore"]["refused"] is True
    assert not witness.exists()
    assert scratch_databases(pg_cluster) == []


def test_a_role_that_may_run_server_programs_is_refused(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    tmp_path: Path,
    witness_dir: Path,
    restorer_env: str,
) -> None:
    witness = witness_dir / "ran"
    dump = _crafted_dump(pg_db, tmp_path / "crafted.dump", witness)
    with pg_cluster.connect() as conn:
        conn.execute(f"GRANT pg_execute_server_program TO {RESTORER}")
    try:
        outcome = restore_into_scratch(dump, backup="nightly", target_dsn=restorer_env)
    finally:
        with pg_cluster.connect() as conn:
            conn.execute(f"REVOKE pg_execute_server_program FROM {RESTORER}")
    assert outcome.refused
    assert outcome.error is not None
    assert f"role {RESTORER} is a member of pg_execute_server_program" in outcome.error
    assert outcome.scratch == ""
    assert not witness.exists()


def test_a_least_privilege_restore_of_the_crafted_dump_fails_without_running_it(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    tmp_path: Path,
    witness_dir: Path,
    restorer_env: str,
) -> None:
    witness = witness_dir / "ran"
    dump = _crafted_dump(pg_db, tmp_path / "crafted.dump", witness)
    outcome = restore_into_scratch(dump, backup="nightly", target_dsn=restorer_env)
    assert not outcome.refused
    assert not outcome.restored
    assert outcome.error is not None
    assert "pg_restore failed" in outcome.error
    assert "pg_execute_server_program" in outcome.error  # the server said why
    assert not witness.exists()
    assert outcome.dropped
    assert scratch_databases(pg_cluster) == []


# ---------------------------------------------------------------------------- SIGKILL


def _pg_restores_of(dump: Path) -> list[int]:
    """Pids of pg_restore processes reading ``dump`` (orphans of a killed run included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"pg_restore") and str(dump).encode() in argv:
            found.append(int(entry.name))
    return found


def _gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def test_a_sigkilled_runs_pg_restore_is_stopped_and_dropped_by_the_next_run(
    pg_cluster: PostgresCluster, big_dump: Path, small_dump: Path, restorer_env: str
) -> None:
    env = {**os.environ, "PGPASSWORD": RESTORER_PASSWORD}
    killed = subprocess.Popen(
        [sys.executable, "-c", _RESTORE_SCRIPT, str(big_dump), restorer_env],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    orphans: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not _restore_is_running(pg_cluster):
            assert killed.poll() is None, "the restore ended before it could be killed"
            assert time.monotonic() < deadline, "pg_restore never connected"
            time.sleep(0.02)
        orphans = _pg_restores_of(big_dump)
        killed.send_signal(signal.SIGKILL)  # no cleanup can run
        killed.wait(timeout=30)
        (left,) = scratch_databases(pg_cluster)
        assert orphans
        assert not _gone(orphans, 0.5), "pg_restore must outlive its runner"
        outcome = restore_into_scratch(small_dump, backup="nightly", target_dsn=restorer_env)
        assert outcome.restored, outcome.error
        assert outcome.leftovers_dropped == [left]
        assert any(a.startswith(f"dropped leftover scratch database {left} (its runner (pid")
                   for a in outcome.performed)  # fmt: skip
        assert scratch_databases(pg_cluster) == []
        assert _gone(orphans, 30), "the orphaned pg_restore kept running"
        assert not _restore_is_running(pg_cluster)
    finally:
        for pid in orphans:  # only the processes this test started
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- SIGTERM


def test_sigterm_stops_the_run_cleans_up_and_starts_no_next_restore(
    pytester: pytest.Pytester, pg_cluster: PostgresCluster, big_dump: Path, restorer: str
) -> None:
    entries, copies = [], []
    for name in ("first", "second"):
        folder = pytester.path / name
        copies.append(stamped(folder, "clinical", datetime.now(UTC)))
        shutil.copy(big_dump, copies[-1])
        entry = backup_entry(folder, name=name)
        del entry["checksums"]
        entry["restoreTest"] = {"target": "restore", "maxDuration": "10m"}
        entries.append(entry)
    config = {"version": 1, "system": "test", "databases": {"restore": {"dsn": restorer}},
              "backups": entries}  # fmt: skip
    (pytester.path / "maintcheck.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(CHECKS / "test_weekly_backups.py"), "-v",
         "-k", "restore", "-p", "no:cacheprovider", "--rootdir", str(pytester.path),
         "--maintcheck-config", str(pytester.path / "maintcheck.yaml"),
         "--maintcheck-report-dir", str(pytester.path / "r")],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PGPASSWORD": RESTORER_PASSWORD},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _restore_is_running(pg_cluster):
            assert run.poll() is None, run.communicate()[0].decode()
            assert time.monotonic() < deadline, "pg_restore never connected"
            time.sleep(0.02)
        run.send_signal(signal.SIGTERM)  # what cron, systemd and CI send
        out = run.communicate(timeout=120)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert "test_backup_restore[first]" in out
    assert "test_backup_restore[second]" not in out, out  # no next restore was started
    assert run.returncode != 0
    assert scratch_databases(pg_cluster) == []
    assert not _restore_is_running(pg_cluster)
    assert [p for c in copies for p in _pg_restores_of(c)] == []
