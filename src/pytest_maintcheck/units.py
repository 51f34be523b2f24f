"""Durations and sizes as operators write them: ``500ms``, ``15m``, ``7d``, ``512MB``."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_SIZE_BYTES = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


class UnitError(ValueError):
    """A duration or size the operator wrote that we cannot read."""


def parse_duration(value: object) -> float:
    """Seconds from ``30s``-style text; a bare number is already seconds."""
    if isinstance(value, bool):
        raise UnitError(f"expected a duration like 30s, 15m, 24h or 7d, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise UnitError(f"a duration must be a finite number >= 0, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    raise UnitError(f"expected a duration like 500ms, 30s, 15m, 24h or 7d, got {value!r}")


def parse_size(value: object) -> float:
    """Bytes from ``50GB``-style text; a bare number is already bytes."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size like 512MB or 50GB, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise UnitError(f"a size must be a finite number >= 0, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return float(match.group(1)) * _SIZE_BYTES[match.group(2).lower()]
    raise UnitError(f"expected a size like 512MB or 50GB, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``850ms``, ``42s``, ``3.5h``, ``9.2d``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0" + unit, unit)
    return f"{seconds:.1f}s".replace(".0s", "s")


def format_size(num_bytes: float) -> str:
    """Decimal units, as disks and the config are written."""
    for unit, size in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if num_bytes >= size:
            return f"{num_bytes / size:.1f}{unit}"
    return f"{num_bytes:.0f}B"
