"""Review findings: a timeout the operator writes can never switch a bound off."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_maintcheck.config import ConfigError, load_config
from pytest_maintcheck.probes.postgres import connect
from pytest_maintcheck.sandbox import SandboxDatabase

DB = (
    "version: 1\ndatabases:\n  primary: {{dsn: 'postgresql://maint@db/clinical', {key}: {value}}}\n"
)


@pytest.mark.parametrize(
    ("key", "value"),
    [("statementTimeout", "0"), ("statementTimeout", "0s"), ("connectTimeout", "0ms"),
     ("statementTimeout", ".inf"), ("statementTimeout", ".nan")],
)  # fmt: skip
def test_a_zero_or_endless_timeout_is_a_config_error(tmp_path: Path, key: str, value: str) -> None:
    # PostgreSQL reads statement_timeout=0 as "no timeout": a hung query would hang the run
    path = tmp_path / "maintcheck.yaml"
    path.write_text(DB.format(key=key, value=value), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert f"databases.primary.{key}" in str(caught.value)


def test_lock_and_repair_timeouts_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "maintcheck.yaml"
    path.write_text(
        "version: 1\ndatabases: {primary: {dsn: 'postgresql://maint@db/clinical'}}\n"
        "databaseMaintenance: [{database: primary, repairTimeout: 0}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="repairTimeout"):
        load_config(path, environ={})


def test_a_sub_millisecond_statement_timeout_still_bounds_the_session(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # int(0.0004 * 1000) == 0 once sent statement_timeout=0, i.e. unbounded statements
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    with connect(pg_db.dsn, statement_timeout=0.0004) as conn:
        row = conn.execute("SELECT current_setting('statement_timeout')").fetchone()
    assert row is not None
    assert row[0] != "0"
