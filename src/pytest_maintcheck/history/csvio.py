"""Measurements in and out of the store as CSV: ``maintcheck history import`` / ``export``.

Columns (a header row names them, in any order):

==============  =========  ==========================================================
column          required   meaning
==============  =========  ==========================================================
at              yes        when it was measured: 2026-10-01 or 2026-10-01T06:15:00Z
                           (ISO 8601; no zone means UTC)
check           yes        catalogue key: health, database_size, slow_queries, ...
target          yes        the service, database or entry name the check ran for
metric          yes        responseTime (ms), errorRate (0..1), samples, usage (0..1),
                           size (bytes), slowQuery (s), connections, activeSessions,
                           requests ...: the units of results.json
value           yes        a number
system          no         default: ``system`` of the config
environment     no         default: ``environment`` of the config
verdict         no         pass | degraded | violation | error
host            no         the runner; default ``import``
runId           no         rows with one runId are one run; default: one run per
                           (at, system, environment, host)
==============  =========  ==========================================================

Export writes every column for every stored number, so an export imports again unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from pytest_maintcheck.history import iso
from pytest_maintcheck.history.store import ExportRow, StoredCheck, StoredRun

COLUMNS = ("at", "system", "environment", "check", "target", "metric", "value", "verdict",
           "host", "runId")  # fmt: skip
REQUIRED = ("at", "check", "target", "metric", "value")
VERDICTS = ("", "pass", "degraded", "violation", "error")


class CsvError(ValueError):
    """A row that cannot be imported: the message names the line and the column."""


def parse_at(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class _Check:
    at: str
    verdict: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    system: str
    environment: str
    host: str
    at: str
    checks: dict[tuple[str, str], _Check] = field(default_factory=dict)


def read_runs(handle: IO[str], name: str, system: str, environment: str) -> list[StoredRun]:
    """The rows of a CSV as runs; CsvError names the first bad line."""
    reader = csv.DictReader(handle)
    header = list(reader.fieldnames or [])
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvError(
            f"{name}:1: missing column(s) {', '.join(missing)}; "
            f"the header needs {', '.join(REQUIRED)}"
        )
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise CsvError(
            f"{name}:1: unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"
        )
    runs: dict[str, _Run] = {}
    for row in reader:
        line = reader.line_num
        at, value = _at(row, name, line), _value(row, name, line)
        check_key, target, metric = (
            _text(row, c, name, line) for c in ("check", "target", "metric")
        )
        verdict = (row.get("verdict") or "").strip()
        if verdict not in VERDICTS:
            raise CsvError(
                f"{name}:{line}: verdict {verdict!r} is not one of {', '.join(VERDICTS[1:])}"
            )
        sys_ = (row.get("system") or "").strip() or system
        env = (row.get("environment") or "").strip() or environment
        host = (row.get("host") or "").strip() or "import"
        stamp = iso(at)
        run_id = (row.get("runId") or "").strip() or _run_id(at, name, sys_, env, host)
        run = runs.setdefault(run_id, _Run(sys_, env, host, stamp))
        run.at = min(run.at, stamp)
        check = run.checks.setdefault((check_key, target), _Check(stamp, verdict))
        check.verdict = verdict or check.verdict
        check.values[metric] = value
    return [_run(run_id, r, name) for run_id, r in sorted(runs.items())]


def _text(row: dict[str, str], column: str, name: str, line: int) -> str:
    text = (row.get(column) or "").strip()
    if not text:
        raise CsvError(f"{name}:{line}: {column} is empty")
    return text


def _at(row: dict[str, str], name: str, line: int) -> datetime:
    try:
        return parse_at(row.get("at") or "")
    except ValueError:
        raise CsvError(
            f"{name}:{line}: at {row.get('at')!r} is not a date or time like 2026-10-01 or "
            "2026-10-01T06:15:00Z"
        ) from None


def _value(row: dict[str, str], name: str, line: int) -> float:
    try:
        value = float((row.get("value") or "").strip())
    except ValueError:
        raise CsvError(f"{name}:{line}: value {row.get('value')!r} is not a number") from None
    if not math.isfinite(value):
        raise CsvError(f"{name}:{line}: value {row.get('value')!r} is not a finite number")
    return value


def _run_id(at: datetime, name: str, system: str, environment: str, host: str) -> str:
    """Sorts by time like a real run id; the same row imported twice gets the same id."""
    digest = hashlib.sha256(f"{name}|{system}|{environment}|{host}|{iso(at)}".encode()).hexdigest()
    return at.strftime("%Y%m%dT%H%M%S.") + f"{at.microsecond // 1000:03d}Z-import-{digest[:6]}"


def _run(run_id: str, r: _Run, name: str) -> StoredRun:
    return StoredRun(
        run_id=run_id,
        system=r.system,
        environment=r.environment,
        host=r.host,
        started_at=r.at,
        finished_at=r.at,
        source=f"import:{name}",
        checks=tuple(
            StoredCheck(check=key, target=target, at=c.at, verdict=c.verdict, measurements=c.values)
            for (key, target), c in sorted(r.checks.items())
        ),
    )


def write_rows(handle: IO[str], rows: Iterable[ExportRow]) -> int:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(_cells(row))
        count += 1
    return count


def _cells(r: ExportRow) -> Iterator[str]:
    yield from (r.at, r.system, r.environment, r.check, r.target, r.metric, repr(r.value),
                r.verdict, r.host, r.run_id)  # fmt: skip
