"""Review finding: names read from a probed system reach messages as they are.

A quoted identifier may hold a newline or a terminal escape code, so a role, schema, table or
index name could fake a line of output or recolour a terminal. Every such name goes through
printable(): control codes shown as \\xNN.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from psycopg import sql

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes import pg_maintenance as pgm
from pytest_maintcheck.probes import pg_repair
from pytest_maintcheck.probes.access import postgres_accounts
from pytest_maintcheck.sandbox import PostgresCluster, SandboxDatabase

HOSTILE = "\nPASS all checks\x1b[32m"  # a faked output line, in green
SHOWN = "\\x0aPASS all checks\\x1b[32m"


def _clean(text: str) -> bool:
    return "\n" not in text and "\x1b" not in text


@pytest.fixture
def hostile_role(pg_cluster: PostgresCluster) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    login, group = f"evil_{tag}{HOSTILE}", f"group_{tag}{HOSTILE}"
    with pg_cluster.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))
    try:
        yield login, group
    finally:
        pg_cluster.drop_role(login)
        pg_cluster.drop_role(group)


def test_role_names_from_pg_roles_are_printable(
    pg_db: SandboxDatabase, hostile_role: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    login, group = hostile_role
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    found = postgres_accounts("db-roles", pg_db.dsn, connect_timeout=5, statement_timeout=5)
    (account,) = [a for a in found.accounts if a.username.startswith(login.split("\n")[0])]
    assert account.username == login.replace(HOSTILE, SHOWN)
    assert account.roles == (group.replace(HOSTILE, SHOWN),)
    assert all(_clean(a.username) and all(map(_clean, a.roles)) for a in found.accounts)


@pytest.fixture
def hostile_tables(pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Schema, table and an invalid unique index (a failed CREATE INDEX CONCURRENTLY), all
    named with a newline and an escape code."""
    names = {"schema": f"ward{HOSTILE}", "table": f"pat{HOSTILE}", "index": f"idx{HOSTILE}"}
    table = sql.Identifier(names["schema"], names["table"])
    with pg_db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(names["schema"])))
        conn.execute(sql.SQL("CREATE TABLE {} (mrn int)").format(table))
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g % 10 FROM generate_series(1, 50) g").format(table)
        )
        with pytest.raises(Exception, match="could not create unique index"):
            conn.execute(
                sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} (mrn)").format(
                    sql.Identifier(names["index"]), table
                )
            )
        conn.execute(sql.SQL("ANALYZE {}").format(table))
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    return names


def test_schema_table_and_index_names_in_the_snapshot_are_printable(
    pg_db: SandboxDatabase, hostile_tables: dict[str, str]
) -> None:
    snap = pgm.take_snapshot(DatabaseMaintenanceTarget("primary"), Database("primary", pg_db.dsn))
    (table,) = [t for t in snap.tables if t.schema == hostile_tables["schema"]]
    assert table.name == hostile_tables["table"]  # the real name, for the SQL that repairs it
    assert table.qualified == f"ward{SHOWN}.pat{SHOWN}"
    (index,) = pgm.invalid_indexes(snap)
    assert index.qualified == f"ward{SHOWN}.idx{SHOWN}"
    assert index.table == f'"ward{SHOWN}"."pat{SHOWN}"'
    assert _clean(pg_repair.vacuum(table).shown)
    assert _clean(pg_repair.missing_grant(pg_repair.reindex(index), snap.user))
    everything = [t.qualified for t in snap.tables] + [i.table for i in snap.indexes]
    everything += [f.name for f in snap.oldest_frozen] + [t["table"] for t in snap.largest_tables()]
    everything += [i["index"] for i in snap.largest_indexes()]
    assert all(map(_clean, everything))


def test_repair_messages_name_hostile_objects_printably(
    pg_db: SandboxDatabase, hostile_tables: dict[str, str]
) -> None:
    target, database = DatabaseMaintenanceTarget("primary"), Database("primary", pg_db.dsn)
    snap = pgm.take_snapshot(target, database)
    (index,) = pgm.invalid_indexes(snap)
    # the duplicates are still there: REINDEX fails and leaves a _ccnew index it then drops
    done = pg_repair.apply_repairs(target, database, [pg_repair.reindex(index)], snap.user)
    assert done.failed
    assert done.failed[0].startswith(
        f'REINDEX INDEX CONCURRENTLY "ward{SHOWN}"."idx{SHOWN}" failed: '
    )
    assert any(
        line.startswith(f"DROP INDEX CONCURRENTLY ward{SHOWN}.idx") for line in done.performed
    )
    assert all(map(_clean, done.failed + done.performed + done.refused))
