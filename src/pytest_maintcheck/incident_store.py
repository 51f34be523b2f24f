"""Where incidents live between runs: ``reports/incidents-state.json``, one file for every
system and environment, changed only under an exclusive lock and written atomically.

Run folders never change once written, but an incident does (acknowledged, a step done,
resolved): this is its mutable home, and each run's ``incidents.json`` is a snapshot of it.
A narrow interface (``IncidentStore.open(system, environment)``) so that the state can move
into the history store without its callers changing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_maintcheck.report.files import FILE_MODE, write_atomic

STATE_FILE = "incidents-state.json"
LOCK_FILE = "incidents-state.lock"  # empty; not the folder, which the index's lock holds
KEEP_RESOLVED = timedelta(days=30)  # resolved incidents stay listed this long


class StoreError(Exception):
    """The state cannot be read or locked: the message says which file and what to do."""


class Held:
    """The incidents of one system and environment, while the store's lock is held."""

    def __init__(self, store: IncidentStore, system: str, environment: str) -> None:
        self.store, self.system, self.environment = store, system, environment
        self.everything, self.notes = store.read()
        self.incidents = [i for i in self.everything if self._ours(i)]
        self.fresh = not store.path.is_file()  # nothing kept yet: earlier run folders may hold some

    def _ours(self, incident: dict[str, Any]) -> bool:
        return bool(
            incident.get("system", self.system) == self.system
            and incident.get("environment", self.environment) == self.environment
        )

    def save(self, incidents: list[dict[str, Any]], now: datetime, mode: int = FILE_MODE) -> None:
        others = [i for i in self.everything if not self._ours(i)]
        kept = [i for i in incidents if _still_listed(i, now)]
        self.store.write([*others, *kept], mode)
        self.incidents = kept


class IncidentStore:
    def __init__(self, report_dir: Path) -> None:
        self.report_dir = report_dir
        self.path = report_dir / STATE_FILE

    @contextlib.contextmanager
    def open(
        self, system: str, environment: str, wait: float = 60.0, mode: int = FILE_MODE
    ) -> Iterator[Held]:
        """Hold the lock (a run and an ``incident ack`` never overwrite each other).

        A run holds it while it publishes, which takes the index's lock on the folder.
        """
        self.report_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.report_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, mode)
        try:
            os.fchmod(fd, mode)  # one documented mode for every file in the report folder
            _lock(fd, wait, self.report_dir / LOCK_FILE)
            yield Held(self, system, environment)
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every kept incident, and a note when the file is broken (then runs read the newest
        run folder's snapshot instead, so no open incident is dropped)."""
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

    def write(self, incidents: list[dict[str, Any]], mode: int) -> None:
        text = json.dumps({"version": 1, "incidents": incidents}, indent=2, ensure_ascii=False)
        write_atomic(self.path, text + "\n", mode)

    def all(self) -> list[dict[str, Any]]:
        incidents, notes = self.read()
        if notes:
            raise StoreError(notes[0])
        return incidents


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
