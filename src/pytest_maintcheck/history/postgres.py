"""The shared store: one PostgreSQL database every runner of a hospital group writes to.

Same schema and SQL as the embedded store. Every statement is bounded (connect, statement and
lock timeouts), so an unreachable or busy server costs a run seconds, never the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from pytest_maintcheck.config import redact_dsn
from pytest_maintcheck.history.store import HistoryStore, HistoryUnavailable

CONNECT_TIMEOUT = 5  # seconds
STATEMENT_TIMEOUT = 10.0
LOCK_TIMEOUT = 2.0
_MIGRATION_LOCK = 0x6D61696E74  # pg_advisory_xact_lock key: 'maint'


class PostgresStore(HistoryStore):
    def __init__(self, dsn: str) -> None:
        import psycopg

        self.errors = (psycopg.Error,)
        self.where = redact_dsn(dsn)
        self.conn: Any = None
        try:
            self.conn = psycopg.connect(
                dsn,
                connect_timeout=CONNECT_TIMEOUT,
                autocommit=True,
                application_name="maintcheck-history",
                options=f"-c statement_timeout={int(STATEMENT_TIMEOUT * 1000)} "
                f"-c lock_timeout={int(LOCK_TIMEOUT * 1000)}",
            )
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None

    def unavailable(self, exc: Exception) -> HistoryUnavailable:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return HistoryUnavailable(
            f"history store {self.where} cannot be used ({redact_dsn(first)})"
        )

    def close(self) -> None:
        if self.conn is not None:
            with suppress(Exception):
                self.conn.close()
            self.conn = None

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def _cursor(self) -> Any:
        return self.conn.cursor()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self.conn.transaction():
            yield self.conn.cursor()

    def _migration_lock(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def _has_meta(self, cur: Any) -> bool:
        cur.execute("SELECT to_regclass('meta') IS NOT NULL")
        return bool(cur.fetchone()[0])
