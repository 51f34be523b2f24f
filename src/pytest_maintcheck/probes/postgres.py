"""PostgreSQL connections for the checks: read-only, bounded, and never printing a password."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from pytest_maintcheck.config import redact_dsn
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
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE,
            keepalives_interval=KEEPALIVE_INTERVAL,
            keepalives_count=KEEPALIVE_COUNT,
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        )
    except psycopg.Error as exc:
        raise ProbeError(f"cannot connect to {redact_dsn(dsn)}: {describe_pg_error(exc)}") from None
    try:
        yield conn
    finally:
        conn.close()


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
        raise ProbeError(
            f"{what} did not answer within {bound:g}s (a stopped server or a dropped network: "
            "statement_timeout cannot fire)"
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
