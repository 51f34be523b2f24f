"""Growth projections: a robust line through a series, and the days until it reaches a limit.

Theil-Sen: the slope is the median of the slopes between every pair of points, so one odd day
(a restore, a purge, a probe that read a half-mounted disk) does not bend the line. A series
that is too short, flat or shrinking is said so plainly; no date is guessed for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from statistics import median

MIN_POINTS = 5  # fewer measurements than this, or spread over less than MIN_SPAN_DAYS: too short
MIN_SPAN_DAYS = 2.0
HORIZON_DAYS = 3650.0  # past ten years a projection says "not within ten years", not a date
FLAT_SHARE = 1e-3
MAX_POINTS = 150  # longer series are thinned to one median per bin first (pairs grow with n^2)


@dataclass(frozen=True)
class Line:
    slope: float  # units per day
    intercept: float  # value at day 0


def theil_sen(days: Sequence[float], values: Sequence[float]) -> Line:
    """Median of pairwise slopes; intercept the median of value - slope * day."""
    slopes = [
        (values[j] - values[i]) / (days[j] - days[i])
        for i in range(len(days))
        for j in range(i + 1, len(days))
        if days[j] != days[i]
    ]
    slope = median(slopes) if slopes else 0.0
    intercept = median(v - slope * d for d, v in zip(days, values, strict=True))
    return Line(slope, intercept)


@dataclass(frozen=True)
class Projection:
    """Where a series is heading: ``days`` to the limit, or why there is no date."""

    state: str  # filling | flat | shrinking | too-short | beyond-horizon | at-limit
    points: int
    span_days: float
    slope_per_day: float | None = None
    current: float | None = None  # the fitted value at the newest point
    limit: float | None = None
    days: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "points": self.points,
            "spanDays": round(self.span_days, 2),
            "slopePerDay": self.slope_per_day,
            "current": self.current,
            "limit": self.limit,
            "daysToLimit": None if self.days is None else round(self.days, 1),
        }


def project(series: Sequence[tuple[datetime, float]], limit: float) -> Projection:
    """Days until the robust line through ``series`` reaches ``limit`` (growth assumed)."""
    ordered = sorted(series)
    if not ordered:
        return Projection("too-short", 0, 0.0, limit=limit)
    first = ordered[0][0]
    days = [(at - first).total_seconds() / 86400 for at, _ in ordered]
    values = [v for _, v in ordered]
    span = days[-1] - days[0]
    if len(ordered) < MIN_POINTS or span < MIN_SPAN_DAYS:
        return Projection("too-short", len(ordered), span, limit=limit)
    line = theil_sen(*_thinned(days, values))
    current = line.intercept + line.slope * days[-1]  # at the newest point, not its bin's
    fitted = Projection("filling", len(ordered), span, line.slope, current, limit)
    if current >= limit:
        return replace(fitted, state="at-limit", days=0.0)
    # flat: over the span measured, the line moved less than a thousandth of the room left
    if line.slope == 0 or abs(line.slope) * span < (limit - current) * FLAT_SHARE:
        return replace(fitted, state="flat")
    if line.slope < 0:
        return replace(fitted, state="shrinking")
    remaining = (limit - current) / line.slope
    if remaining > HORIZON_DAYS:
        return replace(fitted, state="beyond-horizon")
    return replace(fitted, days=remaining)


def _thinned(days: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """At most MAX_POINTS points: the median of each equal-time bin (robust, like the fit)."""
    if len(days) <= MAX_POINTS:
        return days, values
    width = (days[-1] - days[0]) / MAX_POINTS or 1.0
    bins: dict[int, list[tuple[float, float]]] = {}
    for d, v in zip(days, values, strict=True):
        bins.setdefault(min(int((d - days[0]) / width), MAX_POINTS - 1), []).append((d, v))
    kept = [(median(d for d, _ in b), median(v for _, v in b)) for _, b in sorted(bins.items())]
    return [d for d, _ in kept], [v for _, v in kept]


def describe(p: Projection, what: str, show: Callable[[float], str] = "{:g}".format) -> str:
    """One sentence for an operator: the states without a date say why there is none."""
    if p.state == "too-short" or p.current is None or p.limit is None:
        return (
            f"{what}: no projection: {p.points} measurement(s) over {p.span_days:.1f} days "
            f"(at least {MIN_POINTS} over {MIN_SPAN_DAYS:g} days needed)"
        )
    slope = show(abs(p.slope_per_day or 0.0))
    over = f"over {p.span_days:.0f} days ({p.points} measurements)"
    if p.state == "flat":
        return f"{what}: flat at {show(p.current)} {over}; not filling up, no date projected"
    if p.state == "shrinking":
        return f"{what}: shrinking by {slope}/day {over}; not filling up, no date projected"
    if p.state == "beyond-horizon":
        return (
            f"{what}: growing {slope}/day from {show(p.current)} {over}; "
            f"{show(p.limit)} not reached within {HORIZON_DAYS / 365:.0f} years"
        )
    if p.state == "at-limit":
        return f"{what}: already at {show(p.current)}, the limit is {show(p.limit)}"
    return (
        f"{what}: growing {slope}/day from {show(p.current)} {over}; "
        f"reaches {show(p.limit)} in {p.days:.0f} days"
    )
