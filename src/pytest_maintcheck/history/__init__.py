"""Run history: the store every run writes to, and the figures read back from it.

``open_store`` gives the configured store (SQLite in the report folder, or PostgreSQL from
``history.dsn``), migrated to the current schema. Anything that goes wrong with it is one
:class:`HistoryUnavailable` with a message an operator can act on; callers turn that into a
finding and carry on: a store never costs a run its own records.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history.store import STORE_NAME, HistoryStore, HistoryUnavailable

__all__ = ["STORE_NAME", "HistoryStore", "HistoryUnavailable", "iso", "open_store", "using"]


def open_store(settings: HistorySettings, report_dir: Path, mode: int = 0o600) -> HistoryStore:
    """The configured store, its schema brought up to date."""
    store: HistoryStore
    if settings.dsn:
        from pytest_maintcheck.history.postgres import PostgresStore

        store = PostgresStore(settings.dsn)
    else:
        from pytest_maintcheck.history.sqlite import SqliteStore

        store = SqliteStore(report_dir / STORE_NAME, mode)
    try:
        store.migrate()
    except HistoryUnavailable:
        store.close()
        raise
    except store.caught as exc:
        store.close()
        raise store.unavailable(exc) from None
    return store


@contextmanager
def using(settings: HistorySettings, report_dir: Path, mode: int = 0o600) -> Iterator[HistoryStore]:
    """An open store; every engine error inside the block becomes HistoryUnavailable."""
    store = open_store(settings, report_dir, mode)
    try:
        yield store
    except HistoryUnavailable:
        raise
    except store.caught as exc:
        raise store.unavailable(exc) from None
    finally:
        store.close()


def iso(moment: datetime) -> str:
    """The store's time format: ISO 8601 UTC with Z, which sorts as time does."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def window_start(now: datetime, window: float) -> str:
    return iso(now - timedelta(seconds=window))


@functools.lru_cache(maxsize=4096)  # every check of a run shares its time: parsed once
def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def number(value: Any) -> float | None:
    """A stored measurement: a finite int or float, never a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
