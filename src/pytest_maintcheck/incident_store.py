"""Where incidents live between runs: the history store's ``incidents`` table (SQLite in the
report folder, or the fleet's PostgreSQL), one row per incident of a system and environment.

Run folders never change once written, but an incident does (acknowledged, a step done,
resolved): this is its mutable home, and each run's ``incidents.json`` is a snapshot of it.
A run or an ``incident`` command holds a lock while it reads, changes and keeps one system's
incidents, so two runners never lose an update: the report folder's
``incidents-state.lock`` for the embedded store (it lives in that folder), a PostgreSQL
advisory lock keyed by system and environment for the shared one.

``reports/incidents-state.json`` (the state before the store kept it) is imported once and
renamed ``*.imported``. A store that cannot be reached never costs a run its incidents: they
are kept in that file for the run, with a notice, and imported when the store is back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import HistoryStore, HistoryUnavailable, iso, open_store
from pytest_maintcheck.report.files import FILE_MODE, write_atomic

STATE_FILE = "incidents-state.json"
LOCK_FILE = "incidents-state.lock"  # empty; not the folder, which the index's lock holds
IMPORTED = ".imported"  # the state file's suffix once the store holds its incidents
KEEP_RESOLVED = timedelta(days=30)  # resolved incidents stay listed this long

Keep = Callable[[list[dict[str, Any]], datetime, int], None]


class StoreError(Exception):
    """The state cannot be read or locked: the message says which file and what to do."""


class Held:
    """The incidents of one system and environment, while the lock is held.

    ``notes``: the state is broken (read the newest run instead); ``notices``: what the
    operator should know (the store was unreachable, the old file was imported).
    """

    def __init__(
        self,
        system: str,
        environment: str,
        incidents: list[dict[str, Any]] | None,
        keep: Keep,
        notes: list[str] | None = None,
        notices: list[str] | None = None,
    ) -> None:
        self.system, self.environment = system, environment
        self.fresh = incidents is None  # nothing kept yet: earlier run folders may hold some
        self.incidents = incidents or []
        self.notes, self.notices = notes or [], notices or []
        self._keep = keep

    def save(self, incidents: list[dict[str, Any]], now: datetime, mode: int = FILE_MODE) -> None:
        kept = [i for i in incidents if _still_listed(i, now)]
        self._keep(kept, now, mode)
        self.incidents = kept


class IncidentStore:
    def __init__(self, report_dir: Path, history: HistorySettings | None = None) -> None:
        self.report_dir = report_dir
        self.path = report_dir / STATE_FILE
        self.history = history if history is not None else HistorySettings()

    @contextlib.contextmanager
    def open(
        self, system: str, environment: str, wait: float = 60.0, mode: int = FILE_MODE
    ) -> Iterator[Held]:
        """Hold the lock (a run and an ``incident ack`` never overwrite each other).

        A run holds it while it publishes, which takes the index's lock on the folder.
        """
        with contextlib.ExitStack() as stack:
            try:
                held = self._in_store(stack, system, environment, wait, mode)
            except HistoryUnavailable as exc:
                stack.close()  # the store's connection and lock, if it got that far
                stack.enter_context(self._file_lock(wait, mode))
                held = self._in_file(system, environment, unreachable=str(exc))
            yield held

    def _in_store(
        self, stack: contextlib.ExitStack, system: str, environment: str, wait: float, mode: int
    ) -> Held:
        store = open_store(self.history, self.report_dir, mode)
        stack.callback(store.close)
        lock = store.incident_lock(system, environment, wait)
        stack.enter_context(lock if lock is not None else self._file_lock(wait, mode))
        notices = self._import(store, system, environment)

        def keep(incidents: list[dict[str, Any]], now: datetime, mode: int) -> None:
            try:
                store.keep_incidents(system, environment, incidents, iso(now))
            except HistoryUnavailable as exc:  # lost mid-run: the file keeps them instead
                self._in_file(system, environment, str(exc)).save(incidents, now, mode)
                held.notices.append(_fallback_notice(exc, self.path))

        try:
            kept, notes = store.incidents(system, environment), []
        except (ValueError, RecursionError) as exc:  # a hand edit: the runs' snapshots instead
            kept, notes = None, [_broken(store, system, environment, exc)]
        held = Held(system, environment, kept, keep, notes, notices)
        return held

    def _in_file(self, system: str, environment: str, unreachable: str = "") -> Held:
        """The file-based state: while the store cannot be reached (marked to be imported)."""
        everything, notes = self.read()

        def ours(incident: dict[str, Any]) -> bool:
            return bool(
                incident.get("system", system) == system
                and incident.get("environment", environment) == environment
            )

        def keep(incidents: list[dict[str, Any]], now: datetime, mode: int) -> None:
            others = [i for i in everything if not ours(i)]
            self.write([*others, *incidents], mode, fallback=bool(unreachable))

        exists = self.path.is_file()
        notices = [_fallback_notice(unreachable, self.path)] if unreachable else []
        mine = [i for i in everything if ours(i)] if exists else None
        return Held(system, environment, mine, keep, notes, notices)

    def _import(self, store: HistoryStore, system: str, environment: str) -> list[str]:
        """The state file's incidents into the store, once: each system the store keeps nothing
        for (every one when the file was kept while the store was unreachable)."""
        if not self.path.is_file():
            return []
        everything, notes = self.read()
        if notes:
            return [f"{notes[0]}; not imported into history store {store.where}"]
        newer = _fallback(self.path)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for i in everything:
            key = (str(i.get("system", system)), str(i.get("environment", environment)))
            groups.setdefault(key, []).append({**i, "system": key[0], "environment": key[1]})
        stamp = iso(datetime.now(UTC))
        for (s, e), incidents in groups.items():
            if newer or store.incidents(s, e) is None:
                store.keep_incidents(s, e, incidents, stamp)
        os.replace(self.path, self.path.with_name(self.path.name + IMPORTED))
        return [
            f"incident state {self.path} imported into history store {store.where} "
            f"(kept as {self.path.name}{IMPORTED})"
        ]

    def current(self, system: str, environment: str) -> list[dict[str, Any]] | None:
        """One system's kept incidents without taking the lock (the status page); None when
        nothing is kept or the state is broken: then read the newest run folder's snapshot."""
        try:
            with contextlib.closing(open_store(self.history, self.report_dir)) as store:
                kept = store.incidents(system, environment)
                if kept is not None and not _fallback(self.path):
                    return kept
        except (ValueError, RecursionError):
            return None
        except HistoryUnavailable:
            pass
        held = self._in_file(system, environment)
        return None if held.notes or held.fresh else held.incidents

    def read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every incident in the state file, and a note when the file is broken (then runs
        read the newest run folder's snapshot instead, so no open incident is dropped)."""
        if not self.path.is_file():
            return [], []
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            incidents = loaded["incidents"]
            if not isinstance(incidents, list):
                raise TypeError("incidents is not a list")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            return [], [f"{self.path}: unreadable ({str(exc)[:120]}); read the newest run instead"]
        return [i for i in incidents if isinstance(i, dict)], []

    def write(self, incidents: list[dict[str, Any]], mode: int, fallback: bool = False) -> None:
        state: dict[str, Any] = {"version": 1, "incidents": incidents}
        if fallback:
            state["keptWhileStoreUnreachable"] = True  # imported over the store's copy
        text = json.dumps(state, indent=2, ensure_ascii=False)
        write_atomic(self.path, text + "\n", mode)

    def all(self) -> list[dict[str, Any]]:
        """Every system's incidents: the store's, and the state file's not imported yet."""
        incidents, notes = self.read()
        if notes:
            raise StoreError(notes[0])
        try:
            with contextlib.closing(open_store(self.history, self.report_dir)) as store:
                newer = _fallback(self.path)
                pending = [
                    i
                    for i in incidents
                    if newer
                    or store.incidents(str(i.get("system")), str(i.get("environment"))) is None
                ]
                replaced = {(str(i.get("system")), str(i.get("environment"))) for i in pending}
                kept = [
                    i
                    for i in store.all_incidents()
                    if (str(i.get("system")), str(i.get("environment"))) not in replaced
                ]
                return [*kept, *pending]
        except HistoryUnavailable:
            return incidents
        except (ValueError, RecursionError) as exc:
            raise StoreError(
                f"the incidents kept in the history store are unreadable ({exc})"
            ) from None

    @contextlib.contextmanager
    def _file_lock(self, wait: float, mode: int) -> Iterator[None]:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.report_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, mode)
        try:
            os.fchmod(fd, mode)  # one documented mode for every file in the report folder
            _lock(fd, wait, self.report_dir / LOCK_FILE)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _fallback(path: Path) -> bool:
    """The state file was kept while the store was unreachable: it is newer than the store."""
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("keptWhileStoreUnreachable"))
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def _broken(store: HistoryStore, system: str, environment: str, exc: Exception) -> str:
    return (
        f"history store {store.where}: the incidents of {system} ({environment}) are unreadable "
        f"({str(exc)[:120]}); read the newest run instead"
    )


def _fallback_notice(problem: object, path: Path) -> str:
    return (
        f"{problem}; incidents are kept in {path} for now and imported into the store by the "
        "first run that reaches it"
    )


def _lock(fd: int, wait: float, where: Path) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreError(
                    f"{where} is held by another run or incident command for over {wait:.0f}s; "
                    "try again when it has finished"
                ) from None
            time.sleep(0.1)


def _still_listed(incident: dict[str, Any], now: datetime) -> bool:
    resolved = str(incident.get("timeline", {}).get("resolved") or "")
    if not resolved:
        return True
    try:
        when = datetime.fromisoformat(resolved.replace("Z", "+00:00"))
    except ValueError:
        return False
    return now - when.astimezone(UTC) < KEEP_RESOLVED
