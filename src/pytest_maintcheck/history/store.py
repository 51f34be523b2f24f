"""The history store: every run's checks, their verdicts and every number they measured.

One schema, two engines (SQLite in the report folder, PostgreSQL for a fleet). The SQL here is
written once with ``?`` placeholders and portable types (ISO 8601 UTC text for times, which
sorts as time does); each engine says how to connect, lock and turn its errors into
:class:`HistoryUnavailable`. The schema is versioned in the ``meta`` table and migrated by the
first run that opens an older store.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

SCHEMA_VERSION = 4
STORE_NAME = "history.sqlite"  # the embedded store, in the report folder

# version -> statements taking a store from version - 1 to version; never edit a shipped step
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, system TEXT NOT NULL, environment TEXT NOT NULL,
            host TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
            duration DOUBLE PRECISION, status TEXT, suites TEXT, counts TEXT, source TEXT NOT NULL,
            checks_recorded INTEGER NOT NULL)""",
        """CREATE TABLE checks (
            run_id TEXT NOT NULL, check_key TEXT NOT NULL, target TEXT NOT NULL,
            system TEXT NOT NULL, environment TEXT NOT NULL, host TEXT NOT NULL,
            at TEXT NOT NULL, verdict TEXT NOT NULL, severity TEXT, nodeid TEXT,
            thresholds TEXT, PRIMARY KEY (run_id, check_key, target))""",
        """CREATE TABLE measurements (
            run_id TEXT NOT NULL, check_key TEXT NOT NULL, target TEXT NOT NULL,
            metric TEXT NOT NULL, system TEXT NOT NULL, environment TEXT NOT NULL,
            host TEXT NOT NULL, at TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (run_id, check_key, target, metric))""",
        "CREATE INDEX measurements_series ON measurements (system, environment, check_key, at)",
        "CREATE INDEX checks_series ON checks (system, environment, check_key, target, at)",
        "CREATE INDEX runs_started ON runs (started_at)",
    ),
    # a check run in a planned maintenance window: kept, but left out of availability
    2: ("ALTER TABLE checks ADD COLUMN in_maintenance INTEGER NOT NULL DEFAULT 0",),
    # issue 17: the change a run belongs to (JSON), each service's running version, and the
    # few facts a later run reads back (a restored backup's name and time)
    3: (
        "ALTER TABLE runs ADD COLUMN change TEXT",
        "ALTER TABLE checks ADD COLUMN version TEXT",
        "ALTER TABLE checks ADD COLUMN evidence TEXT",
    ),
    # issue 10/12: open incidents kept per system and environment (every runner of a fleet
    # shares them); ``record`` is the IncidentResponse as JSON, ``position`` its list order
    4: (
        """CREATE TABLE incidents (
            system TEXT NOT NULL, environment TEXT NOT NULL, id TEXT NOT NULL,
            check_key TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
            position INTEGER NOT NULL, record TEXT NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (system, environment, id))""",
    ),
}


class HistoryUnavailable(Exception):
    """The store could not be read or written: unreachable, locked past the bound, corrupt."""

    def __init__(self, message: str, *, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


@dataclass(frozen=True)
class StoredCheck:
    """One check of one run, identified by catalogue key and target, never by nodeid."""

    check: str
    target: str
    at: str
    verdict: str
    severity: str = ""
    nodeid: str = ""
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    measurements: Mapping[str, float] = field(default_factory=dict)
    in_maintenance: bool = False  # in a planned maintenance window: not in availability
    version: str = ""  # the running version a health check read (versionPointer)
    evidence: Mapping[str, Any] = field(default_factory=dict)  # e.g. the backup a restore used


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    system: str
    environment: str
    host: str
    started_at: str
    finished_at: str = ""
    duration: float | None = None
    status: str = ""
    suites: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    source: str = "run"  # run | history.jsonl | import:<file> | demo-seed
    checks: tuple[StoredCheck, ...] = ()
    checks_recorded: bool = True
    change: Mapping[str, Any] | None = None  # the MaintenanceLog's change: id, version, baseline

    def summary(self) -> dict[str, Any]:
        """The line reports/index.html shows for this run."""
        return {
            "runId": self.run_id,
            "startedAt": self.started_at,
            "duration": self.duration,
            "system": self.system,
            "environment": self.environment,
            "suites": list(self.suites),
            "status": self.status,
            "counts": dict(self.counts),
        }


class Point(NamedTuple):
    """One measured number of one check in one run (a tuple: a year of them is read at once)."""

    check: str
    target: str
    metric: str
    at: str
    value: float
    run_id: str


@dataclass(frozen=True)
class ExportRow:
    run_id: str
    system: str
    environment: str
    host: str
    at: str
    check: str
    target: str
    metric: str
    value: float
    verdict: str


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """The engine's own errors leave a store method as one HistoryUnavailable."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, HistoryStore)
        try:
            return method(*args, **kwargs)
        except HistoryUnavailable:
            raise
        except store.caught as exc:
            raise store.unavailable(exc) from None

    return guarded


class HistoryStore(ABC):
    """What the plugin, the capacity review and the CLI ask of a store."""

    where: str  # for messages: a path, or a DSN without its password
    errors: tuple[type[Exception], ...] = ()  # what the engine raises; see unavailable()

    @property
    def caught(self) -> tuple[type[Exception], ...]:
        """What a store method turns into HistoryUnavailable."""
        return (*self.errors, OSError)

    @abstractmethod
    def unavailable(self, exc: Exception) -> HistoryUnavailable:
        """The engine's error as one message: what failed, where, and what happens next."""

    # -- engine ----------------------------------------------------------------------------

    @abstractmethod
    def _cursor(self) -> Any: ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A transaction holding the store's write lock; a cursor inside it."""

    @abstractmethod
    def close(self) -> None: ...

    def _sql(self, text: str) -> str:
        return text

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------

    def schema_version(self, cur: Any | None = None) -> int:
        cur = cur or self._cursor()
        if not self._has_meta(cur):
            return 0
        cur.execute(self._sql("SELECT value FROM meta WHERE key = ?"), ("schema_version",))
        row = cur.fetchone()
        return int(row[0]) if row else 0

    @abstractmethod
    def _has_meta(self, cur: Any) -> bool: ...

    @_guarded
    def migrate(self) -> None:
        """Bring the store to SCHEMA_VERSION; a store from a newer maintcheck is refused."""
        if self._check_version(self.schema_version()) == SCHEMA_VERSION:
            return  # the usual case reads one row and takes no write lock
        with self._write() as cur:
            self._migration_lock(cur)
            current = self._check_version(self.schema_version(cur))  # another run may have won
            if current == 0:
                cur.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    cur.execute(statement)
                self._set_meta(cur, "schema_version", str(version))

    def _migration_lock(self, cur: Any) -> None:  # noqa: B027 (most engines need none)
        """Where the write transaction alone does not keep two migrating runs apart."""

    def _check_version(self, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise HistoryUnavailable(
                f"history store {self.where} has schema version {version}, newer than this "
                f"maintcheck knows ({SCHEMA_VERSION}); upgrade maintcheck on this runner"
            )
        return version

    def _set_meta(self, cur: Any, key: str, value: str) -> None:
        cur.execute(
            self._sql(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            (key, value),
        )

    @_guarded
    def meta(self, key: str) -> str | None:
        cur = self._cursor()
        cur.execute(self._sql("SELECT value FROM meta WHERE key = ?"), (key,))
        row = cur.fetchone()
        return None if row is None else str(row[0])

    @_guarded
    def set_meta(self, key: str, value: str) -> None:
        with self._write() as cur:
            self._set_meta(cur, key, value)

    # -- writing ---------------------------------------------------------------------------

    @_guarded
    def record_runs(self, runs: Iterable[StoredRun]) -> int:
        """Write runs in one transaction; a run written before is replaced, never doubled."""
        count = 0
        with self._write() as cur:
            for run in runs:
                self._record(cur, run)
                count += 1
        return count

    def _record(self, cur: Any, run: StoredRun) -> None:
        for table in ("measurements", "checks"):
            cur.execute(self._sql(f"DELETE FROM {table} WHERE run_id = ?"), (run.run_id,))  # noqa: S608
        cur.execute(
            self._sql(
                "INSERT INTO runs (run_id, system, environment, host, started_at, finished_at, "
                "duration, status, suites, counts, source, checks_recorded, change) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "system = excluded.system, environment = excluded.environment, "
                "host = excluded.host, started_at = excluded.started_at, "
                "finished_at = excluded.finished_at, duration = excluded.duration, "
                "status = excluded.status, suites = excluded.suites, counts = excluded.counts, "
                "source = excluded.source, checks_recorded = excluded.checks_recorded, "
                "change = excluded.change"
            ),
            (
                run.run_id, run.system, run.environment, run.host, run.started_at,
                run.finished_at, run.duration, run.status, json.dumps(list(run.suites)),
                json.dumps(dict(run.counts)), run.source, int(run.checks_recorded),
                None if run.change is None else json.dumps(dict(run.change), default=str),
            ),
        )  # fmt: skip
        checks = [
            (run.run_id, c.check, c.target, run.system, run.environment, run.host, c.at,
             c.verdict, c.severity, c.nodeid, json.dumps(dict(c.thresholds), default=str),
             int(c.in_maintenance), c.version or None,
             json.dumps(dict(c.evidence), default=str) if c.evidence else None)
            for c in run.checks
        ]  # fmt: skip
        if checks:
            cur.executemany(
                self._sql(
                    "INSERT INTO checks (run_id, check_key, target, system, environment, host, "
                    "at, verdict, severity, nodeid, thresholds, in_maintenance, version, evidence) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                checks,
            )
        values = [
            (run.run_id, c.check, c.target, metric, run.system, run.environment, run.host,
             c.at, float(value))
            for c in run.checks
            for metric, value in c.measurements.items()
        ]  # fmt: skip
        if values:
            cur.executemany(
                self._sql(
                    "INSERT INTO measurements (run_id, check_key, target, metric, system, "
                    "environment, host, at, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                values,
            )

    # -- reading ---------------------------------------------------------------------------

    @_guarded
    def recorded_run_ids(self, since: str) -> set[str]:
        """Runs from ``since`` (a run id or time; both sort as time) whose checks are stored."""
        cur = self._cursor()
        cur.execute(
            self._sql("SELECT run_id FROM runs WHERE run_id >= ? AND checks_recorded = 1"),
            (since,),
        )
        return {str(row[0]) for row in cur.fetchall()}

    @_guarded
    def points(
        self,
        system: str,
        environment: str,
        since: str,
        checks: Sequence[str],
        metrics: Sequence[str] = (),
    ) -> list[Point]:
        """The numbers the named checks measured since ``since`` for one system (only the
        named ``metrics``, when given), oldest first."""
        if not checks:
            return []
        marks = ", ".join("?" for _ in checks)
        only = f" AND metric IN ({', '.join('?' for _ in metrics)})" if metrics else ""
        cur = self._cursor()
        cur.execute(
            self._sql(
                "SELECT check_key, target, metric, at, value, run_id FROM measurements "  # noqa: S608 (only ? marks)
                f"WHERE system = ? AND environment = ? AND at >= ? AND check_key IN ({marks})"
                f"{only} ORDER BY at, run_id"
            ),
            (system, environment, since, *checks, *metrics),
        )
        return [Point._make(row) for row in cur.fetchall()]

    @_guarded
    def in_maintenance(
        self, system: str, environment: str, since: str, checks: Sequence[str]
    ) -> set[tuple[str, str, str]]:
        """(run id, check, target) of the named checks run in a planned maintenance window
        since ``since``: their samples are left out of availability."""
        if not checks:
            return set()
        marks = ", ".join("?" for _ in checks)
        cur = self._cursor()
        cur.execute(
            self._sql(
                "SELECT run_id, check_key, target FROM checks WHERE system = ? AND "  # noqa: S608 (only ? marks)
                f"environment = ? AND at >= ? AND in_maintenance = 1 AND check_key IN ({marks})"
            ),
            (system, environment, since, *checks),
        )
        return {(str(r[0]), str(r[1]), str(r[2])) for r in cur.fetchall()}

    @_guarded
    def versions(
        self, system: str, environment: str, since: str, checks: Sequence[str]
    ) -> dict[tuple[str, str, str], str]:
        """(run id, check, target) -> the running version the named checks read since
        ``since`` (checks that read none are left out)."""
        if not checks:
            return {}
        marks = ", ".join("?" for _ in checks)
        cur = self._cursor()
        cur.execute(
            self._sql(
                "SELECT run_id, check_key, target, version FROM checks WHERE system = ? AND "  # noqa: S608 (only ? marks)
                f"environment = ? AND at >= ? AND version IS NOT NULL AND check_key IN ({marks})"
            ),
            (system, environment, since, *checks),
        )
        return {(str(r[0]), str(r[1]), str(r[2])): str(r[3]) for r in cur.fetchall() if r[3]}

    @_guarded
    def runs_between(
        self,
        since: str,
        until: str | None = None,
        systems: Collection[tuple[str, str]] | None = None,
    ) -> list[StoredRun]:
        """Runs that started in [since, until), with their checks and numbers, oldest first;
        ``systems``: only these (system, environment) pairs."""
        cur = self._cursor()
        where, args = "started_at >= ?", [since]
        if until is not None:
            where, args = where + " AND started_at < ?", [*args, until]
        cur.execute(
            self._sql(
                "SELECT run_id, system, environment, host, started_at, finished_at, "  # noqa: S608 (only ? marks)
                f"duration, status, suites, counts, source FROM runs WHERE {where} "
                "ORDER BY started_at, run_id"
            ),
            args,
        )
        runs = [_run_of(row) for row in cur.fetchall()]
        if systems is not None:
            wanted = set(systems)
            runs = [r for r in runs if (r.system, r.environment) in wanted]
        checks: dict[str, list[StoredCheck]] = {}
        for start in range(0, len(runs), 500):  # bounded parameter lists
            chunk = [r.run_id for r in runs[start : start + 500]]
            for run_id, check in self._checks_of(cur, chunk):
                checks.setdefault(run_id, []).append(check)
        return [replace(r, checks=tuple(checks.get(r.run_id, ()))) for r in runs]

    def _checks_of(self, cur: Any, run_ids: Sequence[str]) -> Iterator[tuple[str, StoredCheck]]:
        marks = ", ".join("?" for _ in run_ids)
        cur.execute(
            self._sql(
                "SELECT run_id, check_key, target, metric, value FROM measurements "  # noqa: S608 (only ? marks)
                f"WHERE run_id IN ({marks})"
            ),
            list(run_ids),
        )
        numbers: dict[tuple[str, str, str], dict[str, float]] = {}
        for run_id, check, target, metric, value in cur.fetchall():
            numbers.setdefault((str(run_id), str(check), str(target)), {})[str(metric)] = float(
                value
            )
        cur.execute(
            self._sql(
                "SELECT run_id, check_key, target, at, verdict, severity, nodeid, thresholds, "  # noqa: S608 (only ? marks)
                f"in_maintenance, version FROM checks WHERE run_id IN ({marks}) "
                "ORDER BY run_id, check_key, target"
            ),
            list(run_ids),
        )
        for row in cur.fetchall():
            key = (str(row[0]), str(row[1]), str(row[2]))
            yield key[0], StoredCheck(
                check=key[1], target=key[2], at=str(row[3]), verdict=str(row[4]),
                severity=str(row[5] or ""), nodeid=str(row[6] or ""),
                thresholds=json.loads(row[7] or "{}"), measurements=numbers.get(key, {}),
                in_maintenance=bool(row[8]), version=str(row[9] or ""),
            )  # fmt: skip

    @_guarded
    def summaries(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The index line of each named run the store holds."""
        out: dict[str, dict[str, Any]] = {}
        cur = self._cursor()
        ids = list(run_ids)
        for start in range(0, len(ids), 500):  # bounded parameter lists
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            cur.execute(
                self._sql(
                    "SELECT run_id, system, environment, host, started_at, finished_at, "  # noqa: S608 (only ? marks)
                    "duration, status, suites, counts, source FROM runs "
                    f"WHERE run_id IN ({marks})"
                ),
                chunk,
            )
            for row in cur.fetchall():
                out[str(row[0])] = _run_of(row).summary()
        return out

    def export_rows(self) -> Iterator[ExportRow]:
        """Every stored number with its run, oldest first."""
        try:
            yield from self._export_rows()
        except self.caught as exc:
            raise self.unavailable(exc) from None

    def _export_rows(self) -> Iterator[ExportRow]:
        cur = self._cursor()
        cur.execute(
            "SELECT m.run_id, m.system, m.environment, m.host, m.at, m.check_key, m.target, "
            "m.metric, m.value, coalesce(c.verdict, '') FROM measurements m "
            "LEFT JOIN checks c ON c.run_id = m.run_id AND c.check_key = m.check_key "
            "AND c.target = m.target ORDER BY m.at, m.run_id, m.check_key, m.target, m.metric"
        )
        while rows := cur.fetchmany(2000):
            for r in rows:
                run_id, system, environment, host, at, check, target, metric = map(str, r[:8])
                yield ExportRow(
                    run_id, system, environment, host, at, check, target, metric, float(r[8]),
                    str(r[9]),
                )  # fmt: skip

    # -- change management (issue 17) -------------------------------------------------------

    @_guarded
    def runs_before(
        self, system: str, environment: str, before: str, limit: int = 50
    ) -> list[StoredRun]:
        """The newest runs of one system whose checks are stored, started before ``before``
        (newest first, without their checks)."""
        cur = self._cursor()
        cur.execute(
            self._sql(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE system = ? AND environment = ? "  # noqa: S608 (a constant)
                "AND started_at < ? AND checks_recorded = 1 ORDER BY started_at DESC, run_id DESC "
                "LIMIT ?"
            ),
            (system, environment, before, limit),
        )
        return [_run_of(row) for row in cur.fetchall()]

    @_guarded
    def run(self, run_id: str) -> StoredRun | None:
        """One run with its checks and their measurements; None when the store lacks it."""
        cur = self._cursor()
        cur.execute(self._sql(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"), (run_id,))  # noqa: S608 (a constant)
        row = cur.fetchone()
        if row is None:
            return None
        measured: dict[tuple[str, str], dict[str, float]] = {}
        cur.execute(
            self._sql("SELECT check_key, target, metric, value FROM measurements WHERE run_id = ?"),
            (run_id,),
        )
        for check, target, metric, value in cur.fetchall():
            measured.setdefault((str(check), str(target)), {})[str(metric)] = float(value)
        cur.execute(
            self._sql(
                "SELECT check_key, target, at, verdict, severity, nodeid, thresholds, version, "
                "evidence FROM checks WHERE run_id = ? ORDER BY check_key, target"
            ),
            (run_id,),
        )
        checks = tuple(
            StoredCheck(
                check=str(c[0]), target=str(c[1]), at=str(c[2]), verdict=str(c[3]),
                severity=str(c[4] or ""), nodeid=str(c[5] or ""),
                thresholds=json.loads(c[6] or "{}"),
                measurements=measured.get((str(c[0]), str(c[1])), {}),
                version=str(c[7] or ""), evidence=json.loads(c[8] or "{}"),
            )
            for c in cur.fetchall()
        )  # fmt: skip
        return replace(_run_of(row), checks=checks)

    @_guarded
    def checks_since(
        self, system: str, environment: str, check: str, since: str
    ) -> list[StoredCheck]:
        """One check's stored results (every target) since ``since``, newest first, with
        their version and evidence (not their measurements)."""
        cur = self._cursor()
        cur.execute(
            self._sql(
                "SELECT check_key, target, at, verdict, severity, nodeid, version, evidence "
                "FROM checks WHERE system = ? AND environment = ? AND check_key = ? AND at >= ? "
                "ORDER BY at DESC, run_id DESC"
            ),
            (system, environment, check, since),
        )
        return [
            StoredCheck(
                check=str(c[0]), target=str(c[1]), at=str(c[2]), verdict=str(c[3]),
                severity=str(c[4] or ""), nodeid=str(c[5] or ""), version=str(c[6] or ""),
                evidence=json.loads(c[7] or "{}"),
            )
            for c in cur.fetchall()
        ]  # fmt: skip

    # -- incidents (issue 12's lifecycle, kept per system and environment) -------------------

    def incident_lock(
        self, system: str, environment: str, wait: float
    ) -> AbstractContextManager[None] | None:
        """A lock every runner of this store shares, held while one system's incidents are
        read, carried forward and kept; None: the report folder's lock is enough (the
        embedded store lives in that folder)."""
        return None

    @_guarded
    def incidents(self, system: str, environment: str) -> list[dict[str, Any]] | None:
        """The kept incidents of one system and environment, in their order; None when none
        were ever kept for it (then a run reads the newest run folder's snapshot)."""
        if self.meta(_kept(system, environment)) is None:
            return None
        cur = self._cursor()
        cur.execute(
            self._sql(
                "SELECT record FROM incidents WHERE system = ? AND environment = ? "
                "ORDER BY position"
            ),
            (system, environment),
        )
        return [_incident(row[0]) for row in cur.fetchall()]

    @_guarded
    def all_incidents(self) -> list[dict[str, Any]]:
        """Every system's kept incidents."""
        cur = self._cursor()
        cur.execute("SELECT record FROM incidents ORDER BY system, environment, position")
        return [_incident(row[0]) for row in cur.fetchall()]

    @_guarded
    def keep_incidents(
        self, system: str, environment: str, incidents: Sequence[Mapping[str, Any]], at: str
    ) -> None:
        """Replace one system's incidents in one transaction (the caller holds incident_lock)."""
        by_id = {str(i.get("id")): i for i in incidents}  # one row per id: the last one wins
        rows = [
            (system, environment, key, str(i.get("check") or ""), str(i.get("target") or ""),
             "resolved" if (i.get("timeline") or {}).get("resolved") else "open", n,
             json.dumps(i, ensure_ascii=False, default=str), at)
            for n, (key, i) in enumerate(by_id.items())
        ]  # fmt: skip
        with self._write() as cur:
            cur.execute(
                self._sql("DELETE FROM incidents WHERE system = ? AND environment = ?"),
                (system, environment),
            )
            if rows:
                cur.executemany(
                    self._sql(
                        "INSERT INTO incidents (system, environment, id, check_key, target, "
                        "status, position, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    rows,
                )
            self._set_meta(cur, _kept(system, environment), at)

    @_guarded
    def run_count(self) -> int:
        cur = self._cursor()
        cur.execute("SELECT count(*) FROM runs")
        return int(cur.fetchone()[0])


def _incident(text: str) -> dict[str, Any]:
    """One kept record; ValueError when it was edited into something else."""
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError(f"an incident row holds {type(record).__name__}, not a record")
    return record


def _kept(system: str, environment: str) -> str:
    """The meta key saying a system's incidents are kept here (even when none is open)."""
    return f"incidents-kept:{system}\n{environment}"


_RUN_COLUMNS = (
    "run_id, system, environment, host, started_at, finished_at, duration, status, suites, "
    "counts, source, change"
)


def _run_of(row: Sequence[Any]) -> StoredRun:
    return StoredRun(
        run_id=str(row[0]),
        system=str(row[1]),
        environment=str(row[2]),
        host=str(row[3]),
        started_at=str(row[4]),
        finished_at=str(row[5] or ""),
        duration=None if row[6] is None else float(row[6]),
        status=str(row[7] or ""),
        suites=tuple(json.loads(row[8] or "[]")),
        counts=json.loads(row[9] or "{}"),
        source=str(row[10]),
        change=json.loads(row[11]) if len(row) > 11 and row[11] else None,
    )
