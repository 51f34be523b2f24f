"""Corrective maintenance, only with --maintcheck-apply: VACUUM (ANALYZE), ANALYZE, REINDEX.

Never VACUUM FULL (it locks the table for its whole run). Every statement runs with a
lock_timeout and a statement_timeout. A repair the role may not do is not attempted: it comes
back as refused, with the grant that is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pytest_maintcheck.config import Database, DatabaseMaintenanceTarget
from pytest_maintcheck.probes.pg_maintenance import (
    NAME_LIMIT,
    IndexStats,
    TableStats,
    quote_ident,
    sql_name,
)
from pytest_maintcheck.probes.postgres import ProbeError, connect, describe_pg_error
from pytest_maintcheck.redact import printable


@dataclass(frozen=True)
class Repair:
    """One statement to run: task is vacuum, analyze or reindex (DatabaseMaintenance.tasks)."""

    task: str
    subject: str  # schema.name, printable (for messages)
    schema: str
    name: str
    owner: str
    allowed: bool

    @property
    def statement(self) -> sql.Composed:
        target = sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(self.name)])
        verb = {
            "vacuum": "VACUUM (ANALYZE)",
            "analyze": "ANALYZE",
            "reindex": "REINDEX INDEX CONCURRENTLY",
        }[self.task]
        return sql.SQL(verb + " {}").format(target)

    @property
    def shown(self) -> str:
        """The statement as SQL an operator can paste (identifiers quoted as it ran)."""
        verb = {
            "vacuum": "VACUUM (ANALYZE)",
            "analyze": "ANALYZE",
            "reindex": "REINDEX INDEX CONCURRENTLY",
        }
        return f"{verb[self.task]} {sql_name(self.schema, self.name)}"


def vacuum(table: TableStats) -> Repair:
    return Repair(
        "vacuum", table.qualified, table.schema, table.name, table.owner, table.can_maintain
    )


def analyze(table: TableStats) -> Repair:
    return Repair(
        "analyze", table.qualified, table.schema, table.name, table.owner, table.can_maintain
    )


def reindex(index: IndexStats) -> Repair:
    return Repair(
        "reindex", index.qualified, index.schema, index.name, index.owner, index.can_maintain
    )


@dataclass
class RepairOutcome:
    performed: list[str] = field(default_factory=list)  # MaintenanceLog actions
    tasks: dict[str, bool] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # each names the grant that is missing
    failed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {"performed": self.performed, "refused": self.refused, "failed": self.failed}


def missing_grant(repair: Repair, user: str) -> str:
    shown = printable(user, NAME_LIMIT)
    role = printable(quote_ident(user), NAME_LIMIT)
    owner = printable(quote_ident(repair.owner), NAME_LIMIT)
    return (
        f"{repair.shown} not done: role {shown} does not own {repair.subject} "
        f"(owner {repair.owner}); missing grant: GRANT {owner} TO {role} "
        f"(on PostgreSQL 16+: GRANT pg_maintain TO {role})"
    )


def apply_repairs(
    target: DatabaseMaintenanceTarget,
    database: Database,
    repairs: Sequence[Repair],
    user: str,
) -> RepairOutcome:
    """Run the allowed repairs one by one, each bounded; refuse the rest with the grant."""
    outcome = RepairOutcome()
    todo = []
    for repair in repairs:
        if repair.allowed:
            todo.append(repair)
        else:
            outcome.refused.append(missing_grant(repair, user))
    if not todo:
        return outcome
    try:
        with connect(
            database.dsn,
            connect_timeout=database.connect_timeout,
            statement_timeout=target.repair_timeout,
            read_only=False,
            application_name="pytest-maintcheck repair",
        ) as conn:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(
                    sql.Literal(f"{max(1, int(target.lock_timeout * 1000))}ms")  # 0 would be none
                )
            )
            for repair in todo:
                _run(conn, repair, outcome)
    except ProbeError as exc:
        outcome.failed.append(f"repair session: {exc}")
    except psycopg.Error as exc:  # the session broke (SET, or the server went away)
        outcome.failed.append(f"repair session: {describe_pg_error(exc)}")
    return outcome


def _run(conn: psycopg.Connection[tuple[object, ...]], repair: Repair, out: RepairOutcome) -> None:
    try:
        conn.execute(repair.statement)
    except psycopg.Error as exc:
        out.failed.append(f"{repair.shown} failed: {describe_pg_error(exc)}")
        if repair.task == "reindex":
            _drop_leftover(conn, repair, out)
        return
    out.performed.append(repair.shown)
    out.tasks[repair.task] = True
    if repair.task == "vacuum":
        out.tasks["analyze"] = True  # VACUUM (ANALYZE) did both


def _drop_leftover(
    conn: psycopg.Connection[tuple[object, ...]], repair: Repair, out: RepairOutcome
) -> None:
    """A failed REINDEX CONCURRENTLY leaves an invalid <name>_ccnew behind: remove our debris."""
    # the schema by name: ::regnamespace would fold "Ward" to ward and raise
    try:
        leftover = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname LIKE %s AND NOT i.indisvalid",
            (repair.schema, repair.name[:50] + "_ccnew%"),
        ).fetchall()
    except psycopg.Error as exc:
        out.failed.append(f"looking for debris of {repair.shown}: {describe_pg_error(exc)}")
        return
    for (name,) in leftover:
        shown = printable(f"{repair.schema}.{name}", NAME_LIMIT)
        try:
            conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                    sql.SQL(".").join([sql.Identifier(repair.schema), sql.Identifier(str(name))])
                )
            )
            out.performed.append(f"DROP INDEX CONCURRENTLY {shown} (left by it)")
        except psycopg.Error as exc:
            out.failed.append(f"dropping {shown}: {describe_pg_error(exc)}")
