"""Availability over the history window, and a metric's latest value against its own baseline.

Pure functions over stored points: no store, no pytest. The window and the number of runs
behind every figure travel with it, and a figure with too little history says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from statistics import median

from pytest_maintcheck.history.store import Point
from pytest_maintcheck.units import format_duration

MIN_RUNS = 5  # runs in the window before availability is judged on the window's figure
MIN_BASELINE = 3  # earlier runs a baseline needs


@dataclass(frozen=True)
class Uptime:
    """A service's success fraction over the window, weighted by samples."""

    value: float | None
    runs: int
    samples: int
    failures: int
    window: float  # seconds
    since: str | None  # the oldest run counted
    judged: bool  # enough history to judge the availability threshold on it
    note: str

    def to_json(self) -> dict[str, object]:
        return {
            "window": format_duration(self.window),
            "runs": self.runs,
            "samples": self.samples,
            "failures": self.failures,
            "since": self.since,
            "judged": self.judged,
            "note": self.note,
        }


def uptime(
    points: Iterable[Point],
    *,
    samples_now: int,
    failures_now: int,
    window: float,
    problem: str | None = None,
    min_runs: int = MIN_RUNS,
) -> Uptime:
    """Earlier runs' samples and error rates in the window, plus this run's."""
    runs: dict[str, dict[str, float]] = {}
    first_at: dict[str, str] = {}
    for p in points:
        if p.metric in ("samples", "errorRate"):
            runs.setdefault(p.run_id, {})[p.metric] = p.value
            first_at.setdefault(p.run_id, p.at)
    samples, failures, counted, since = samples_now, failures_now, 1, None
    for run_id, values in runs.items():
        if "errorRate" not in values:
            continue
        taken = max(round(values.get("samples", 1)), 1)  # no sample count: one sample
        samples += taken
        failures += round(taken * min(max(values["errorRate"], 0.0), 1.0))
        counted += 1
        since = min(since or first_at[run_id], first_at[run_id])
    value = (samples - failures) / samples if samples else None
    span = format_duration(window)
    if problem is not None:
        note = f"history store not read ({problem}): this run's samples only; not judged"
        return Uptime(value, 1, samples, failures, window, None, False, note)
    judged = counted >= min_runs and value is not None
    if judged:
        note = (
            f"{samples - failures} of {samples} samples succeeded in {counted} runs "
            f"over the last {span}"
        )
    else:
        note = (
            f"too little history: {counted} run(s) in the last {span} ({min_runs} needed); "
            "the figure is shown, availability is not judged on it yet"
        )
    return Uptime(value, counted, samples, failures, window, since, judged, note)


@dataclass(frozen=True)
class Trend:
    """The newest value of a series against the median of the window's earlier values."""

    latest: float | None
    baseline: float | None
    earlier: int  # values behind the baseline
    latest_at: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.latest is None or self.baseline is None or self.baseline <= 0:
            return None
        return self.latest / self.baseline

    @property
    def enough(self) -> bool:
        return self.earlier >= MIN_BASELINE and self.ratio is not None

    def to_json(self) -> dict[str, object]:
        return {
            "latest": self.latest,
            "latestAt": self.latest_at,
            "baseline": self.baseline,
            "baselineRuns": self.earlier,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
        }


def trend(series: Sequence[tuple[datetime, float]]) -> Trend:
    """Newest point against the median of the points before it."""
    ordered = sorted(series)
    if not ordered:
        return Trend(None, None, 0)
    *before, (at, latest) = ordered
    base = median(v for _, v in before) if before else None
    return Trend(latest, base, len(before), at.isoformat().replace("+00:00", "Z"))


def daily_growth(series: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Change per day between consecutive days (the last value of each UTC day)."""
    by_day: dict[object, tuple[datetime, float]] = {}
    for at, value in sorted(series):
        by_day[at.date()] = (at, value)
    days = list(by_day.values())
    out = []
    for (t0, v0), (t1, v1) in pairwise(days):
        gap = (t1 - t0).total_seconds() / 86400
        if gap > 0:
            out.append((t1, (v1 - v0) / gap))
    return out


MIN_SINCE_VERSION = 3  # runs on a new version before its figure is compared with the old one


@dataclass(frozen=True)
class VersionShift:
    """A series' median since the newest version change against its median on the version
    that ran just before it."""

    before: str  # the version that ran before the change
    since: str  # the version running since
    changed_at: datetime  # the first run that read the new version
    runs_before: int
    runs_since: int
    median_before: float
    median_since: float

    @property
    def ratio(self) -> float | None:
        return self.median_since / self.median_before if self.median_before > 0 else None

    @property
    def enough(self) -> bool:
        return (
            self.runs_since >= MIN_SINCE_VERSION
            and self.runs_before >= MIN_BASELINE
            and self.ratio is not None
        )

    def to_json(self) -> dict[str, object]:
        return {
            "before": self.before,
            "since": self.since,
            "changedAt": self.changed_at.isoformat().replace("+00:00", "Z"),
            "runsBefore": self.runs_before,
            "runsSince": self.runs_since,
            "medianBefore": self.median_before,
            "medianSince": self.median_since,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "compared": self.enough,
        }


def version_shift(series: Sequence[tuple[datetime, float, str]]) -> VersionShift | None:
    """The runs since the newest version change against the runs of the version before it
    (the unbroken stretch of it); None when one version ran all window. Runs that read no
    version are left out: which side of the change they fall on is not known."""
    known = sorted((at, value, version) for at, value, version in series if version)
    if not known:
        return None
    start = len(known)
    while start > 0 and known[start - 1][2] == known[-1][2]:
        start -= 1
    if start == 0:
        return None
    previous = known[start - 1][2]
    first = start
    while first > 0 and known[first - 1][2] == previous:
        first -= 1
    before = [value for _, value, _ in known[first:start]]
    since = [value for _, value, _ in known[start:]]
    return VersionShift(
        before=previous,
        since=known[-1][2],
        changed_at=known[start][0],
        runs_before=len(before),
        runs_since=len(since),
        median_before=median(before),
        median_since=median(since),
    )
