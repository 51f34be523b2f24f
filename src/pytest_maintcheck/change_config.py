"""The ``changeManagement`` section: the deploy gate's rollback point and impact assessment.

Frozen objects built by ``config.loading._Builder`` (which validates the schema first); kept
here so issue 17's section does not crowd the config package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_maintcheck.config import Path_
    from pytest_maintcheck.config.loading import _Builder

DEFAULT_SHIFT_FACTOR = 1.5
DEFAULT_ROLLBACK_MAX_AGE = 24 * 3600.0


@dataclass(frozen=True)
class RollbackPoint:
    """Each named database needs a backup younger than ``max_age`` whose restore test passed."""

    databases: tuple[str, ...]
    max_age: float = DEFAULT_ROLLBACK_MAX_AGE


@dataclass(frozen=True)
class ChangeManagement:
    rollback_point: RollbackPoint | None = None
    # a metric this many times its baseline value (either way) is a shift worth reporting
    shift_factor: float = DEFAULT_SHIFT_FACTOR


def build_change_management(b: _Builder, raw: Mapping[str, Any]) -> ChangeManagement | None:
    section = raw.get("changeManagement")
    if section is None:
        return None
    point = section.get("rollbackPoint")
    return ChangeManagement(
        rollback_point=None if point is None else _rollback_point(b, point, raw),
        shift_factor=float(section.get("shiftFactor", DEFAULT_SHIFT_FACTOR)),
    )


def _rollback_point(b: _Builder, point: dict[str, Any], raw: Mapping[str, Any]) -> RollbackPoint:
    path: Path_ = ("changeManagement", "rollbackPoint")
    names = tuple(
        b.database_ref((*path, "databases", i), name) for i, name in enumerate(point["databases"])
    )
    for i, name in enumerate(names):
        if name in names[:i]:
            raise b.fail((*path, "databases", i), f"{name!r} is named twice")
    restorable = {
        entry.get("database")
        for entry in raw.get("backups", [])
        if entry.get("kind") == "pg_dump" and entry.get("restoreTest")
    }
    for i, name in enumerate(names):
        if name not in restorable:
            raise b.fail(
                (*path, "databases", i),
                f"no backups entry of kind pg_dump with a restoreTest has database: {name}; "
                "without one the gate can never find a verified rollback point",
            )
    return RollbackPoint(
        databases=names,
        max_age=b.duration((*path, "maxAge"), point.get("maxAge"), DEFAULT_ROLLBACK_MAX_AGE),
    )
