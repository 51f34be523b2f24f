"""The embedded store: one SQLite file in the report folder, in WAL mode.

WAL lets a run read while another writes; writers take the lock with BEGIN IMMEDIATE and wait
at most ``busy_timeout`` for it, so a store held by another process costs a run two seconds,
never the run.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pytest_maintcheck.history.store import STORE_NAME, HistoryStore, HistoryUnavailable

__all__ = ["STORE_NAME", "SqliteStore", "move_aside"]
BUSY_TIMEOUT = 2.0  # seconds a run waits for another's lock before it gives up on the store


class SqliteStore(HistoryStore):
    errors = (sqlite3.Error,)

    def __init__(self, path: Path, mode: int = 0o600, timeout: float = BUSY_TIMEOUT) -> None:
        self.path, self.where, self.timeout = path, str(path), timeout
        self.conn: sqlite3.Connection | None = None
        created = False
        try:
            created = _create(path, mode)
            self.conn = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses no commit
        except (sqlite3.Error, OSError) as exc:
            self.close()
            if created:  # a full disk: no empty store file is left behind
                _remove_if_empty(path)
            raise self.unavailable(exc) from None

    def unavailable(self, exc: Exception) -> HistoryUnavailable:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return HistoryUnavailable(
                f"history store {self.where} stayed locked by another process for more than "
                f"{self.timeout:g}s ({text})"
            )
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text
        ):
            return HistoryUnavailable(
                f"history store {self.where} is corrupt ({text})", corrupt=True
            )
        if isinstance(exc, OSError):
            text = exc.strerror or text
        return HistoryUnavailable(f"history store {self.where} cannot be used ({text})")

    def close(self) -> None:
        if self.conn is not None:
            with suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None

    def _cursor(self) -> Any:
        assert self.conn is not None
        return self.conn.cursor()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        cur = self._cursor()
        cur.execute("BEGIN IMMEDIATE")  # the write lock now, not halfway through
        try:
            yield cur
        except BaseException:
            with suppress(sqlite3.Error):
                cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _has_meta(self, cur: Any) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
        return cur.fetchone() is not None


def _create(path: Path, mode: int) -> bool:
    """An empty file with the run's mode: SQLite would use the umask, and gives the -wal and
    -shm files the mode of the database file. True when this call made the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    except FileExistsError:
        return False
    os.chmod(path, mode)
    return True


def _remove_if_empty(path: Path) -> None:
    """The file _create made, while SQLite has written nothing into it (no page, no WAL)."""
    with suppress(OSError):
        if path.stat().st_size == 0 and not path.with_name(path.name + "-wal").exists():
            path.unlink()


def move_aside(path: Path, stamp: str) -> Path:
    """A corrupt store is kept for inspection, under a name no run opens."""
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        with suppress(FileNotFoundError):
            os.replace(path.with_name(path.name + suffix), aside.with_name(aside.name + suffix))
    return aside
