"""The history a run reads before it judges: one system's points over the window, read once.

Reading is bounded like writing (the store's lock and statement timeouts); a store that cannot
be read gives an empty window that names the problem, and the figures built on it say so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_maintcheck.config import Config
from pytest_maintcheck.history import parse_time, using, window_start
from pytest_maintcheck.history.store import HistoryUnavailable, Point
from pytest_maintcheck.history.trends import Uptime, uptime

if TYPE_CHECKING:
    from pytest_maintcheck.run import RunState

log = logging.getLogger("pytest_maintcheck.history")

# what the monthly capacity review reads: p95 and usage (health), size, slow queries, sessions
CAPACITY_CHECKS = ("health", "database_size", "slow_queries", "connections")
CAPACITY_METRICS = ("responseTime", "usage", "requests", "size", "slowQuery", "connections",
                    "activeSessions")  # fmt: skip


@dataclass
class Window:
    """Points of one system and environment since ``since``, keyed by check identity."""

    since: str
    window: float  # seconds
    points: list[Point] = field(default_factory=list)
    problem: str | None = None
    maintenance: set[tuple[str, str, str]] = field(default_factory=set)  # (run, check, target)
    versions: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (run, check, target)
    _by_check: dict[tuple[str, str], list[Point]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for p in self.points:
            self._by_check.setdefault((p.check, p.target), []).append(p)

    def of(self, check: str, target: str) -> list[Point]:
        return self._by_check.get((check, target), [])

    def series(self, check: str, target: str, metric: str) -> list[tuple[datetime, float]]:
        return [(parse_time(p.at), p.value) for p in self.of(check, target) if p.metric == metric]

    def versioned(self, check: str, target: str, metric: str) -> list[tuple[datetime, float, str]]:
        """The series with the running version each run read ("" where it read none)."""
        return [
            (parse_time(p.at), p.value, self.versions.get((p.run_id, check, target), ""))
            for p in self.of(check, target)
            if p.metric == metric
        ]

    def uptime(self, service: str, samples_now: int, failures_now: int) -> Uptime:
        """The service's success fraction over the window, this run's samples included;
        samples taken in a planned maintenance window are left out."""
        counted = [
            p for p in self.of("health", service) if (p.run_id, p.check, p.target)
            not in self.maintenance
        ]  # fmt: skip
        return uptime(
            counted,
            samples_now=samples_now,
            failures_now=failures_now,
            window=self.window,
            problem=self.problem,
        )


def read_window(state: RunState, checks: Sequence[str], metrics: Sequence[str] = ()) -> Window:
    """The points of ``checks`` over the configured window, read once at the run's start
    (``state.started_at`` is the run's now); never raises."""
    assert state.config is not None  # collection refused a run without a config
    if not state.records:  # --setup-only makes the fixtures: it neither opens nor creates a store
        since = window_start(state.started_at, state.config.history.window)
        return Window(since, state.config.history.window)
    return read_points(
        state.config, state.report_dir, state.started_at, checks, metrics, state.file_mode
    )


def read_points(
    config: Config,
    report_dir: Path,
    now: datetime,
    checks: Sequence[str],
    metrics: Sequence[str] = (),
    mode: int = 0o600,
) -> Window:
    """The points of ``checks`` of ``config``'s system over its window before ``now``."""
    since = window_start(now, config.history.window)
    try:
        with using(config.history, report_dir, mode) as store:
            points = store.points(config.system, config.environment, since, checks, metrics)
            planned = store.in_maintenance(config.system, config.environment, since, checks)
            versions = store.versions(config.system, config.environment, since, checks)
    except HistoryUnavailable as exc:
        log.warning("maintcheck history: %s; figures use this run only", exc)
        return Window(since, config.history.window, problem=str(exc))
    return Window(since, config.history.window, points, maintenance=planned, versions=versions)
