"""Review findings on corrective maintenance (--maintcheck-apply), against a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_repair
from pytest_maintcheck.probes.pg_maintenance import IndexStats
from pytest_maintcheck.sandbox import SandboxDatabase


def test_failed_reindex_in_a_mixed_case_schema_is_reported_and_its_debris_dropped(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Ward" is not ward: the leftover lookup once cast the name with ::regnamespace, which
    # folds it to lower case, so the lookup raised and the check died with a traceback
    with pg_db.connect() as conn:
        conn.execute('CREATE SCHEMA "Ward"')
        conn.execute('CREATE TABLE "Ward".visits (id int PRIMARY KEY, ticket int)')
        conn.execute('INSERT INTO "Ward".visits SELECT g, g % 50 FROM generate_series(1, 200) g')
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute('CREATE UNIQUE INDEX CONCURRENTLY uq ON "Ward".visits (ticket)')
    index = IndexStats(
        "Ward", "uq", '"Ward".visits', "postgres", False, True, 0, 0, "", False, True
    )
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    outcome = pg_repair.apply_repairs(
        DatabaseMaintenanceTarget("primary"),
        Database("primary", pg_db.dsn),
        [pg_repair.reindex(index)],
        "postgres",
    )
    assert outcome.performed[-1:] == ["DROP INDEX CONCURRENTLY Ward.uq_ccnew (left by it)"]
    assert outcome.failed
    assert 'REINDEX INDEX CONCURRENTLY "Ward".uq failed' in outcome.failed[0]
    with pg_db.connect() as conn:
        left = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'uq%'").fetchall()
    assert left == [("uq",)]
