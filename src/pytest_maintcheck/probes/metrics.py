"""One number from a SQL query or a JSON endpoint: the probes behind ``metrics`` entries.

Both raise ProbeError with a message safe to print when the source did not give exactly one
number; the caller turns that into "could not measure".
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg

from pytest_maintcheck.config import Config, MetricCheck
from pytest_maintcheck.probes.http import ClientPool, fetch
from pytest_maintcheck.probes.postgres import (
    ProbeError,
    connect,
    describe_pg_error,
    run_bounded,
    session_bound,
)
from pytest_maintcheck.redact import printable

__all__ = [
    "MetricReading",
    "ProbeError",
    "as_number",
    "read_json_number",
    "read_metric",
    "read_sql_number",
    "resolve_pointer",
]


def as_number(value: object, what: str) -> float:
    """``value`` as a finite float, or ProbeError saying what came back instead."""
    if value is None:
        raise ProbeError(f"{what} is NULL/null, not a number")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        shown = printable(repr(value), 60)
        raise ProbeError(f"{what} is {type(value).__name__} {shown}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ProbeError(f"{what} is {number}, not a finite number")
    return number


# ---------------------------------------------------------------------------- SQL


def read_sql_number(
    dsn: str, sql: str, *, statement_timeout: float, connect_timeout: float = 10.0
) -> float:
    """Run one statement in a read-only transaction; it must return one row of one number.

    The statement is sent as a prepared statement, so a second command after a semicolon
    (``COMMIT; DELETE ...``) is refused by the server instead of escaping the transaction.
    """
    bound = session_bound(connect_timeout, statement_timeout, 2)
    return run_bounded(
        bound, "the metric query", _query_number, dsn, sql, statement_timeout, connect_timeout
    )


def _query_number(dsn: str, sql: str, statement_timeout: float, connect_timeout: float) -> float:
    with connect(
        dsn, connect_timeout=connect_timeout, statement_timeout=statement_timeout, read_only=True
    ) as conn:
        try:
            with conn.transaction(), conn.cursor() as cur:
                conn.execute("SET TRANSACTION READ ONLY")
                cur.execute(sql, prepare=True)
                if cur.description is None:
                    raise ProbeError("the query returned no rows at all (it is not a SELECT)")
                columns = len(cur.description)
                rows = cur.fetchmany(2)
        except psycopg.errors.QueryCanceled:
            raise ProbeError(
                f"the query did not finish within its statement timeout ({statement_timeout:g}s)"
            ) from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ProbeError(f"the query tried to write: {describe_pg_error(exc)}") from None
        except psycopg.Error as exc:
            raise ProbeError(f"the query failed: {describe_pg_error(exc)}") from None
    if columns != 1:
        raise ProbeError(f"the query returned {columns} columns; it must return exactly one")
    if len(rows) != 1:
        count = "no rows" if not rows else "more than one row"
        raise ProbeError(f"the query returned {count}; it must return exactly one")
    return as_number(rows[0][0], "the query's value")


# ---------------------------------------------------------------------------- HTTP JSON


def resolve_pointer(document: object, pointer: str) -> object:
    """RFC 6901: ``/a/0/b~1c`` walks objects by key and arrays by index."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise ProbeError(f"JSON Pointer {pointer!r} must be empty or start with '/'")
    here = document
    walked = ""
    for token in pointer[1:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        walked += "/" + token
        if isinstance(here, dict):
            if key not in here:
                raise ProbeError(f"the body has nothing at {walked}")
            here = here[key]
        elif isinstance(here, list):
            if not key.isdigit() or (key != "0" and key.startswith("0")) or int(key) >= len(here):
                raise ProbeError(f"the body has nothing at {walked} (an array of {len(here)})")
            here = here[int(key)]
        else:
            raise ProbeError(f"the body has nothing at {walked} (a {type(here).__name__} above)")
    return here


def read_json_number(url: str, pointer: str, *, timeout: float, ca_file: Path | None) -> float:
    """GET ``url`` (TLS verified, no redirects, 1 MiB at most) and read a number at ``pointer``."""
    return asyncio.run(_json_number(url, pointer, timeout, ca_file))


async def _json_number(url: str, pointer: str, timeout: float, ca_file: Path | None) -> float:
    pool = ClientPool()
    try:
        try:
            client = pool.get(ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeError(f"cannot use caFile {ca_file}: {printable(exc, 120)}") from None
        _elapsed, response, error = await fetch(client, url, timeout)
    finally:
        await pool.aclose()
    if error is not None or response is None:
        raise ProbeError(f"GET {printable(url, 200)} failed: {error or 'no answer'}")
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        kind = printable(response.headers.get("content-type", "no content type"), 60)
        raise ProbeError(f"the body of {printable(url, 200)} is not JSON ({kind})") from None
    where = pointer or "(the whole body)"
    return as_number(resolve_pointer(body, pointer), f"the value at {where}")


# ---------------------------------------------------------------------------- a metrics entry


@dataclass(frozen=True)
class MetricReading:
    """What one ``metrics`` entry's source gave: its number, or why there is none."""

    value: float | None
    problem: str | None = None


def read_metric(metric: MetricCheck, config: Config) -> MetricReading:
    """Read the number from its source; anything but one number is a problem, said plainly.

    A metric's source is the site's own query or endpoint: a bad answer is a finding about
    that source (its words name it), so it is kept here rather than raised."""
    try:
        if metric.sql is not None:
            database = config.database(str(metric.database))
            return MetricReading(
                read_sql_number(
                    database.dsn,
                    metric.sql,
                    statement_timeout=metric.timeout,
                    connect_timeout=database.connect_timeout,
                )
            )
        return MetricReading(
            read_json_number(
                str(metric.http), metric.pointer, timeout=metric.timeout, ca_file=metric.ca_file
            )
        )
    except ProbeError as exc:
        return MetricReading(None, str(exc))
