"""PostgreSQL connections for the checks: read-only, bounded, and never printing a password."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from pytest_maintcheck.config import redact_dsn
from pytest_maintcheck.redact import printable


class ProbeError(Exception):
    """A measurement that could not be made; the message is safe to print."""


def describe_pg_error(exc: BaseException) -> str:
    """psycopg's message with any DSN password masked and control codes shown."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        text = f"missing privilege: {text}"
    return printable(redact_dsn(text), 300)


@contextmanager
def connect(
    dsn: str,
    *,
    connect_timeout: float = 10.0,
    statement_timeout: float = 30.0,
    read_only: bool = True,
    application_name: str = "pytest-maintcheck",
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection whose every statement is bounded; read-only unless repair was allowed."""
    # at least 1 ms: PostgreSQL reads 0 as "no timeout"
    options = (
        f"-c statement_timeout={max(1, math.ceil(statement_timeout * 1000))} -c lock_timeout=5000"
    )
    if read_only:
        options += " -c default_transaction_read_only=on"
    try:
        conn = psycopg.connect(
            dsn,
            connect_timeout=max(1, round(connect_timeout)),
            options=options,
            application_name=application_name,
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise ProbeError(f"cannot connect to {redact_dsn(dsn)}: {describe_pg_error(exc)}") from None
    try:
        yield conn
    finally:
        conn.close()


@dataclass
class PingResult:
    latencies_ms: list[float]
    errors: list[str]
    samples: int
    server_version: str | None = None


def ping(dsn: str, samples: int = 1, timeout: float = 5.0) -> PingResult:
    """Connect and run ``SELECT 1`` in a read-only session, timed end to end."""
    result = PingResult([], [], 0)
    for _ in range(samples):
        result.samples += 1
        started = time.perf_counter()
        try:
            with connect(dsn, connect_timeout=timeout, statement_timeout=timeout) as conn:
                row = conn.execute("SELECT current_setting('server_version'), 1").fetchone()
                result.server_version = str(row[0]) if row else None
        except ProbeError as exc:
            result.errors.append(str(exc))
            continue
        except psycopg.Error as exc:
            result.errors.append(describe_pg_error(exc))
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
    return result
