"""PostgreSQL connections for the checks: read-only, bounded, and never printing a password."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pytest_maintcheck.config import redact_dsn
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.redact import printable

T = TypeVar("T")

# statement_timeout is enforced by the server: a stopped backend or a dropped network leaves
# the client waiting forever. Keepalives notice a dead peer while we wait for an answer;
# tcp_user_timeout one that stops acknowledging what we sent.
KEEPALIVE_IDLE = 10  # seconds of silence before the first probe
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
TCP_USER_TIMEOUT_MS = 30_000
# what the outer bound allows beyond connect_timeout + statement_timeout x statements
BOUND_GRACE = 5.0


# The shared error type under its first name: every probe error is a MeasurementError.
ProbeError = MeasurementError

# What libpq says, lower-cased, to why it could not connect; the first match wins.
_CONNECT_CAUSES: tuple[tuple[str, Cause], ...] = (
    ("connection refused", Cause.REFUSED),
    ("timeout expired", Cause.TIMED_OUT),
    ("timed out", Cause.TIMED_OUT),
    ("failed to resolve host", Cause.NAME_NOT_RESOLVED),
    ("could not translate host name", Cause.NAME_NOT_RESOLVED),
    ("name or service not known", Cause.NAME_NOT_RESOLVED),
    ("network is unreachable", Cause.NETWORK_UNREACHABLE),
    ("no route to host", Cause.NETWORK_UNREACHABLE),
    ("authentication failed", Cause.AUTHENTICATION_FAILED),
    ("no password supplied", Cause.AUTHENTICATION_FAILED),
    ("no pg_hba.conf entry", Cause.AUTHENTICATION_FAILED),
    ('role "', Cause.AUTHENTICATION_FAILED),  # role "x" does not exist
    ("ssl", Cause.TLS_FAILED),
    ("permission denied", Cause.MISSING_PRIVILEGE),
    ("does not exist", Cause.NOT_FOUND),  # database "x" does not exist
)


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
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE,
            keepalives_interval=KEEPALIVE_INTERVAL,
            keepalives_count=KEEPALIVE_COUNT,
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        )
    except psycopg.Error as exc:
        raise MeasurementError(
            f"cannot connect to {redact_dsn(dsn)}: {describe_pg_error(exc)}",
            cause=connect_cause(exc),
            where=server_address(dsn),
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def connect_cause(exc: BaseException) -> Cause:
    """Why libpq could not connect, from its message (it raises one class for all)."""
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return Cause.MISSING_PRIVILEGE
    text = str(exc).lower()
    return next((cause for words, cause in _CONNECT_CAUSES if words in text), Cause.FAILED)


def server_address(dsn: str) -> str:
    """host:port a DSN points at (libpq's defaults filled in), printable; never its password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "the configured server"
    env = os.environ
    host = str(parts.get("host") or parts.get("hostaddr") or env.get("PGHOST") or "local socket")
    port = str(parts.get("port") or env.get("PGPORT") or 5432)
    return printable(f"{host}:{port}", 120)


def session_bound(
    connect_timeout: float, statement_timeout: float, statements: int, grace: float = BOUND_GRACE
) -> float:
    """How long a whole session may take: connecting, every statement, and a grace."""
    return connect_timeout + statement_timeout * statements + grace


def run_bounded(bound: float, what: str, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a daemon thread, given up after ``bound`` seconds.

    For the database work of a probe: the server enforces statement_timeout, so a stopped
    backend or a network gone silent leaves psycopg waiting for ever. Past the bound this
    raises ProbeError ("<what> did not answer within Ns") and abandons the thread: a daemon,
    so it holds neither the run nor the interpreter's exit.
    """
    done = threading.Event()
    outcome: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            outcome.append((True, func(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=work, name="maintcheck-pg", daemon=True).start()
    if not done.wait(bound):
        raise MeasurementError(
            f"{what} did not answer within {bound:g}s (a stopped server or a dropped network: "
            "statement_timeout cannot fire)",
            cause=Cause.TIMED_OUT,
        )
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


@dataclass
class PingResult:
    latencies_ms: list[float]
    errors: list[str]
    samples: int
    server_version: str | None = None
    failed_ms: list[float] = field(default_factory=list)  # time until each failed sample failed
    failure: MeasurementError | None = None  # the first failure, classified


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
        except MeasurementError as exc:
            _failed(result, started, exc)
            continue
        except psycopg.Error as exc:
            _failed(result, started, MeasurementError(describe_pg_error(exc), cause=Cause.FAILED))
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
    return result


def _failed(result: PingResult, started: float, exc: MeasurementError) -> None:
    result.failed_ms.append((time.perf_counter() - started) * 1000)
    result.errors.append(str(exc))
    result.failure = result.failure or exc
