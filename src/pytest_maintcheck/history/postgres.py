"""The shared store: one PostgreSQL database every runner of a hospital group writes to.

Same schema and SQL as the embedded store. Every statement is bounded (connect, statement and
lock timeouts), so an unreachable or busy server costs a run seconds, never the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from pytest_maintcheck.config import redact_dsn
from pytest_maintcheck.history.store import HistoryStore, HistoryUnavailable

CONNECT_TIMEOUT = 5  # seconds
STATEMENT_TIMEOUT = 10.0
LOCK_TIMEOUT = 2.0
_MIGRATION_LOCK = 0x6D61696E74  # pg_advisory_xact_lock key: 'maint'
_INCIDENTS = "maintcheck-incidents"  # pg_advisory_lock's first key (hashed), the system second


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

    @contextmanager
    def incident_lock(self, system: str, environment: str, wait: float) -> Iterator[None]:
        """A session advisory lock keyed by system and environment, tried until ``wait`` runs
        out: a run holds it for minutes of notifying, longer than lock_timeout allows."""
        key = (_INCIDENTS, f"{system}\n{environment}")
        deadline = time.monotonic() + wait
        try:
            while not self._try_lock(key):
                if time.monotonic() > deadline:
                    from pytest_maintcheck.incident_store import StoreError

                    raise StoreError(
                        f"the incidents of {system} ({environment}) in history store "
                        f"{self.where} are held by another run or incident command for over "
                        f"{wait:.0f}s; try again when it has finished"
                    )
                time.sleep(0.1)
        except self.errors as exc:
            raise self.unavailable(exc) from None
        try:
            yield
        finally:
            with suppress(Exception):  # closing the connection releases it too
                self.conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", key)

    def _try_lock(self, key: tuple[str, str]) -> bool:
        row = self.conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", key
        ).fetchone()
        return bool(row[0])

    def _has_meta(self, cur: Any) -> bool:
        cur.execute("SELECT to_regclass('meta') IS NOT NULL")
        return bool(cur.fetchone()[0])
