"""Latency arithmetic shared by the probes."""

from __future__ import annotations

import math
from collections.abc import Sequence


def p95(values_ms: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile; None when nothing was measured."""
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return ordered[rank - 1]
