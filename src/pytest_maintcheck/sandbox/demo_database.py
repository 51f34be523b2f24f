"""Demo part: maintenance problems in the clinical database, for the weekly database checks.

Adds a table full of dead tuples with autovacuum off on it, an invalid index (a unique index
built CONCURRENTLY over duplicate values), an idle-in-transaction session held open for the
run, and pg_stat_statements with one slow statement. The table belongs to role ``ecg_owner``,
granted to the monitoring role: the grant the checks name, so ``maintcheck demo --apply``
shows the table vacuumed and the index rebuilt.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from pytest_maintcheck.sandbox.demo import DemoContext

TABLE_OWNER = "ecg_owner"


def maintenance_problems(ctx: DemoContext) -> None:
    """Dead tuples, an invalid index, an idle transaction and a slow statement in `clinical`."""
    assert ctx.database is not None, "runs after the clinical_database part"
    monitor = ctx.config["databases"]["primary"]["dsn"].split("//", 1)[1].split("@", 1)[0]
    with ctx.database.connect() as conn:
        conn.execute(f"CREATE ROLE {TABLE_OWNER} NOLOGIN")
        conn.execute(f"GRANT {TABLE_OWNER} TO {monitor}")
        conn.execute(
            "CREATE TABLE ecg_samples (id serial PRIMARY KEY, recording_id int NOT NULL, "
            "value float8 NOT NULL) WITH (autovacuum_enabled = false)"
        )
        conn.execute(f"ALTER TABLE ecg_samples OWNER TO {TABLE_OWNER}")
        conn.execute(
            "INSERT INTO ecg_samples (recording_id, value) "
            "SELECT g % 5000, random() FROM generate_series(1, 20000) g"
        )
        # fails on the duplicates and leaves the index behind, invalid
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY ecg_samples_recording_uq "
                "ON ecg_samples (recording_id)"
            )
        # the duplicates go, so a REINDEX (--apply) can succeed; 15,000 dead tuples stay
        conn.execute("DELETE FROM ecg_samples WHERE id > 5000")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_sleep(0.6)")  # a slow statement for pg_stat_statements
        conn.execute("SELECT pg_stat_force_next_flush()")
    idle = ctx.database.connect(application_name="ecg-import")
    ctx.stack.callback(idle.close)
    idle.autocommit = False
    idle.execute("SELECT count(*) FROM patients")  # now idle in transaction until the end
    ctx.section("databaseMaintenance", []).append(
        {
            "database": "primary",
            # the held transaction is under a second old in a demo; production keeps 5m
            "thresholds": {"longTransaction": {"warn": "0s", "fail": "1h"}},
        }
    )
