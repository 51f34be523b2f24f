"""A site's own checks: their declarations, validated, and their config targets bound to them.

Plain Python; ``pytest_maintcheck.api`` wraps :func:`declare` in a pytest marker and
``site_hooks`` wires it into collection. A declaration is checked when its module is imported,
but a fault is kept and reported when collection ends, so it is a usage error (exit 4) naming
the file and line rather than a collection traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_maintcheck.catalogue import (
    CHECKS,
    INCIDENT_TYPES,
    RECOVERY_STEPS,
    SEVERITIES,
    SUITES,
    Category,
    CheckSpec,
)
from pytest_maintcheck.config import ConfigError, SiteTarget, Thresholds
from pytest_maintcheck.units import UnitError
from pytest_maintcheck.verdict import UNITS, Metric, Threshold, ThresholdError

KEY = re.compile(r"^[a-z][a-z0-9_]*$")  # as the bundled keys; also a siteChecks key
METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_BUNDLED_CATEGORIES = {spec.category.name: spec.category for spec in CHECKS.values()}


_Fail = Callable[[str], "DeclarationError"]  # a message in, the error to raise out


class DeclarationError(Exception):
    """A site check declared wrongly; the message names the file and line."""

    def __init__(self, location: str, message: str) -> None:
        self.location, self.message = location, message
        super().__init__(f"{location}: {message}")


@dataclass(frozen=True)
class SiteCheck:
    """A site check's catalogue entry, the metrics it measures, and where it was declared."""

    spec: CheckSpec
    metrics: Mapping[str, Metric]
    defaults: Mapping[str, Threshold]  # thresholds used where the config gives none
    location: str


@dataclass(frozen=True)
class InvalidDeclaration:
    """What a faulty declaration leaves on its check, to be reported at collection's end."""

    error: DeclarationError


def declare(
    key: object,
    *,
    location: str,
    suite: object = None,
    title: object = None,
    severity: object = None,
    category: object = None,
    requirements: object = (),
    incident_type: object = None,
    action: object = None,
    runbook: object = (),
    metrics: object = (),
    thresholds: object = None,
) -> SiteCheck:
    """Validate every field of a site check's declaration; DeclarationError on the first fault."""

    def fail(message: str) -> DeclarationError:
        return DeclarationError(location, f"site check {key!r}: {message}")

    if not isinstance(key, str) or not KEY.match(key):
        raise DeclarationError(
            location, f"site check key {key!r} must be lower_snake_case (a-z, 0-9, _)"
        )
    if key in CHECKS:
        raise fail(f"clashes with the bundled check {key!r} ({CHECKS[key].title}); rename it")
    missing = [
        name
        for name, value in (
            ("suite", suite),
            ("title", title),
            ("severity", severity),
            ("category", category),
            ("incident_type", incident_type),
            ("action", action),
        )
        if value is None
    ]
    if missing:
        raise fail(f"incomplete declaration: give {', '.join(missing)}")
    _one_of(fail, "suite", suite, SUITES)
    _one_of(fail, "severity", severity, SEVERITIES)
    _one_of(fail, "incident_type", incident_type, INCIDENT_TYPES)
    for name, value in (("title", title), ("action", action)):
        if not isinstance(value, str) or not value.strip():
            raise fail(f"{name} must be a non-empty text")
    made_category = _category(fail, category, _texts(fail, "requirements", requirements))
    steps = _texts(fail, "runbook", runbook) or RECOVERY_STEPS
    declared = _metrics(fail, metrics)
    spec = CheckSpec(
        key=key,
        suite=str(suite),
        title=str(title),
        severity=str(severity),
        category=made_category,
        incident_type=str(incident_type),
        action=str(action),
        runbook=steps,
    )
    defaults = _defaults(fail, thresholds, declared)
    return SiteCheck(spec, declared, defaults, location)


def _one_of(fail: _Fail, name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise fail(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _texts(fail: _Fail, name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise fail(f"{name} must be a list of texts, got {value!r}")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(f"{name} must be a list of non-empty texts")
    return tuple(str(v) for v in value)


def _category(fail: _Fail, category: object, requirements: tuple[str, ...]) -> Category:
    """A Category as given (clauses added), or a name: a bundled category's, or a new one."""
    if isinstance(category, Category):
        extra = tuple(r for r in requirements if r not in category.requirements)
        return Category(category.name, category.requirements + extra)
    if not isinstance(category, str) or not category.strip():
        raise fail("category must be a Category or a non-empty name")
    bundled = _BUNDLED_CATEGORIES.get(category)
    if bundled is not None:
        return _category(fail, bundled, requirements)
    if not requirements:
        raise fail(
            f"category {category!r} is new: give requirements, the clauses it evidences "
            "(e.g. 'HIPAA 164.312(b) audit controls', 'NIST SP 800-53 SI-4')"
        )
    return Category(category, requirements)


def _metrics(fail: _Fail, metrics: object) -> dict[str, Metric]:
    if isinstance(metrics, Metric):
        metrics = (metrics,)
    if not isinstance(metrics, Sequence) or not all(isinstance(m, Metric) for m in metrics):
        raise fail("metrics must be a list of Metric(name, unit, higher_is_worse=...)")
    declared: dict[str, Metric] = {}
    for m in metrics:
        if not METRIC_NAME.match(m.name):
            raise fail(f"metric name {m.name!r} must be a plain name like queueLength")
        if m.name in declared:
            raise fail(f"metric {m.name!r} is declared twice")
        if m.unit not in UNITS:
            raise fail(f"metric {m.name!r}: unit must be one of {', '.join(UNITS)}, got {m.unit!r}")
        declared[m.name] = m
    return declared


def _defaults(fail: _Fail, raw: object, declared: Mapping[str, Metric]) -> dict[str, Threshold]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise fail("thresholds must map a declared metric to a number or {warn, fail}")
    made: dict[str, Threshold] = {}
    for name, value in raw.items():
        if name not in declared:
            raise fail(f"thresholds: {name!r} is not one of its metrics ({_names(declared)})")
        try:
            made[name] = Threshold.parse(name, value, declared[name])
        except (ThresholdError, UnitError) as exc:
            raise fail(f"thresholds: {exc}") from None
    return made


def _names(declared: Mapping[str, Metric]) -> str:
    return ", ".join(declared) or "it declares none"


# ---------------------------------------------------------------------------- targets


def bind_target(config_path: Path, target: SiteTarget, check: SiteCheck) -> SiteTarget:
    """The target with its written thresholds parsed in the check's metrics' units and way.

    A threshold for a metric the check does not declare is a config error, as an unknown key
    is anywhere else.
    """
    thresholds = dict(check.defaults)
    for written in target.written:
        path = ("siteChecks", target.check, "targets", target.name, "thresholds", written.name)
        definition = check.metrics.get(written.name)
        if definition is None:
            close = difflib.get_close_matches(written.name, list(check.metrics), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                config_path,
                written.line,
                path,
                f"unknown threshold: {target.check} measures {_names(check.metrics)}{hint}",
            )
        try:
            thresholds[written.name] = Threshold.parse(written.name, written.raw, definition)
        except (ThresholdError, UnitError) as exc:
            raise ConfigError(config_path, written.line, path, str(exc)) from None
    return dataclasses.replace(target, thresholds=Thresholds(tuple(thresholds.values())))


def spec_of(declared: object) -> CheckSpec:
    """The catalogue entry a ``maintcheck`` marker names: a bundled key or a site check."""
    if isinstance(declared, SiteCheck):
        return declared.spec
    if isinstance(declared, InvalidDeclaration):
        raise declared.error
    if isinstance(declared, str) and declared in CHECKS:
        return CHECKS[declared]
    raise KeyError(f"check {declared!r} is not in the catalogue")


def is_bundled(spec: CheckSpec) -> bool:
    return CHECKS.get(spec.key) is spec


__all__ = [
    "DeclarationError",
    "InvalidDeclaration",
    "SiteCheck",
    "bind_target",
    "declare",
    "is_bundled",
    "spec_of",
]
