"""Review finding: pg_restore that cannot run, hangs, or fails on row data.

A pg_restore that cannot be started, or a ``pg_restore --list`` that times out, is one clear
error in the outcome, not a traceback. A failed restore's message never carries the server's
DETAIL/CONTEXT lines or a value from the failing row (patient data), whatever the layout of
pg_restore's stderr.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pytest_maintcheck.probes.restore import (
    RestoreError,
    find_client_tool,
    restore_into_scratch,
    toc_without_extensions,
)
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase
from test_backups import (
    RESTORER,
    RESTORER_PASSWORD,
    pg_dump,
    restorer_env,
    scratch_databases,
)

__all__ = ["restorer_env"]  # the fixture, used by name

PATIENT = "Alice Secretname"


def _script(path: Path, text: str) -> Path:
    path.write_text("#!/bin/bash\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _dump_rejected_on_restore(db: SandboxDatabase, out: Path, how: str) -> Path:
    """A dump whose COPY fails on restore, on a row naming a patient.

    The CHECK calls a function that accepts every row while ``maint.loading`` is on (as when
    the rows were written) and, on restore, either rejects the row (``check``: DETAIL and
    CONTEXT quote it) or casts the name to int (``cast``: the error message itself quotes it).
    """
    otherwise = "false" if how == "check" else "t::int > 0"
    with db.connect() as conn:
        conn.execute(
            "CREATE FUNCTION allowed(t text) RETURNS bool LANGUAGE sql AS $$ SELECT CASE "
            "WHEN coalesce(current_setting('maint.loading', true), 'off') = 'on' THEN true "
            f"ELSE {otherwise} END $$"
        )
        conn.execute("CREATE TABLE patients (id int, name text CHECK (public.allowed(name)))")
        conn.execute("SET maint.loading = on")
        conn.execute("INSERT INTO patients VALUES (1, %s)", (PATIENT,))
    return pg_dump(db, out)


def test_a_pg_restore_that_cannot_be_started_is_a_clear_error(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase, tmp_path: Path, restorer_env: str
) -> None:
    dump = pg_dump(pg_db, tmp_path / "clinical.dump")
    missing = tmp_path / "no-such-bin" / "pg_restore"
    outcome = restore_into_scratch(
        dump, backup="nightly", target_dsn=restorer_env, pg_restore=missing
    )
    assert outcome.error == f"cannot run {missing}: No such file or directory"
    assert not outcome.restored
    assert outcome.dropped
    assert scratch_databases(pg_cluster) == []


def test_a_pg_restore_list_that_cannot_be_started_is_a_clear_error(
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dump = pg_dump(pg_db, tmp_path / "clinical.dump")
    not_executable = tmp_path / "pg_restore"
    not_executable.write_text("#!/bin/sh\n")  # no x bit: exec fails with EACCES
    pg_cluster.create_role(RESTORER, RESTORER_PASSWORD)
    try:
        with pg_cluster.connect() as conn:
            conn.execute(f"ALTER ROLE {RESTORER} CREATEDB")
        monkeypatch.setenv("PGPASSWORD", RESTORER_PASSWORD)
        # not a superuser: untrusted extensions are left out through pg_restore --list first
        outcome = restore_into_scratch(
            dump,
            backup="nightly",
            target_dsn=pg_cluster.dsn("postgres", user=RESTORER),
            pg_restore=not_executable,
        )
    finally:
        pg_cluster.drop_role(RESTORER)
    assert outcome.error == f"cannot run {not_executable}: Permission denied"
    assert outcome.dropped
    assert scratch_databases(pg_cluster) == []


def test_a_pg_restore_list_that_hangs_is_stopped_with_a_clear_error(
    pg_db: SandboxDatabase, tmp_path: Path
) -> None:
    dump = pg_dump(pg_db, tmp_path / "clinical.dump")
    hanging = _script(tmp_path / "pg_restore", "exec sleep 60\n")  # a stuck read of the dump
    with pytest.raises(RestoreError) as caught:
        toc_without_extensions(hanging, dump, {"pg_stat_statements"}, tmp_path / "l", timeout=0.5)
    assert str(caught.value) == (
        "pg_restore --list clinical.dump did not finish within 0.5 s and was stopped"
    )


def test_a_row_the_restore_rejects_is_named_without_its_data(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase, tmp_path: Path, restorer_env: str
) -> None:
    dump = _dump_rejected_on_restore(pg_db, tmp_path / "bad.dump", "check")
    outcome = restore_into_scratch(dump, backup="nightly", target_dsn=restorer_env)
    assert outcome.error is not None
    assert outcome.error.startswith('pg_restore failed (exit 1): COPY failed for table "patients"')
    assert "violates check constraint" in outcome.error
    assert "Alice" not in outcome.error
    assert scratch_databases(pg_cluster) == []


def test_stderr_without_an_error_line_never_yields_a_context_line(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase, tmp_path: Path, restorer_env: str
) -> None:
    """pg_restore before version 12 (and a translated one) has no "pg_restore: error:" line:
    its messages read "pg_restore: [archiver (db)] ...". Only PostgreSQL 15's client is
    installed here, so a wrapper runs the real pg_restore and gives its real stderr that older
    prefix; the last stderr line is then the CONTEXT line quoting the row."""
    dump = _dump_rejected_on_restore(pg_db, tmp_path / "bad.dump", "check")
    real = find_client_tool("pg_restore")
    old_style = _script(
        tmp_path / "pg_restore",
        f'"{real}" "$@" 2>&1 >/dev/null'
        " | sed -e 's/^pg_restore: error: /pg_restore: [archiver (db)] /' >&2\n"
        'exit "${PIPESTATUS[0]}"\n',
    )
    # one job: with more, a last "a worker process died unexpectedly" line follows CONTEXT
    outcome = restore_into_scratch(
        dump, backup="nightly", target_dsn=restorer_env, pg_restore=old_style, jobs=1
    )
    assert outcome.error is not None
    assert "Alice" not in outcome.error
    assert "CONTEXT" not in outcome.error
    assert 'COPY failed for table "patients"' in outcome.error
    assert scratch_databases(pg_cluster) == []


def test_a_value_quoted_by_the_error_message_itself_is_hidden(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase, tmp_path: Path, restorer_env: str
) -> None:
    dump = _dump_rejected_on_restore(pg_db, tmp_path / "bad.dump", "cast")
    outcome = restore_into_scratch(dump, backup="nightly", target_dsn=restorer_env)
    assert outcome.error is not None
    assert 'invalid input syntax for type integer: "…"' in outcome.error
    assert "Alice" not in outcome.error
    assert scratch_databases(pg_cluster) == []
