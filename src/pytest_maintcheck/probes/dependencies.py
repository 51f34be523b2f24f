"""Pinned packages from a lockfile against OSV advisories on disk. Never touches the network.

Lockfiles read (by file name):
- ``poetry.lock`` and ``uv.lock`` (TOML ``[[package]]`` tables with name and version),
- ``Pipfile.lock`` (JSON ``default`` and ``develop`` with ``"version": "==x"``),
- anything else as pip's requirements format: ``name==version`` and ``name===version`` pins,
  with extras, environment markers, ``--hash`` options and ``\\`` continuations. Lines that are
  not exact pins (``>=``, URLs, ``-r``/``-e`` includes) cannot be checked and are reported as
  unpinned.

Advisories: every ``*.json`` file under the folder (recursively), each one OSV object or a list
of them (the OSV project's per-ecosystem exports are one file per advisory). Withdrawn
advisories are skipped. A package is affected when its pinned version is in an affected entry's
``versions`` list or inside a range of type ECOSYSTEM or SEMVER (``introduced``/``fixed``/
``last_affected``/``limit`` events). Versions are compared with ``packaging``; names are
PEP 503 normalized; the ecosystem name is compared case-insensitively (``PyPI`` by default).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_maintcheck.errors import MeasurementError
from pytest_maintcheck.redact import printable


class DependencyProbeError(MeasurementError):
    """The lockfile or the advisories folder cannot be used; the message is safe to print."""


@dataclass(frozen=True)
class Pin:
    name: str  # as written
    version: str

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


@dataclass
class Lockfile:
    format: str
    pins: list[Pin] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Vulnerability:
    """One advisory affecting one pinned package."""

    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    severity: str | None
    fixed: str | None  # the lowest fixed version above the pin, if the advisory names one
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "version": self.version,
            "advisory": self.advisory,
            "aliases": list(self.aliases),
            "severity": self.severity,
            "fixed": self.fixed,
            "summary": self.summary,
        }


@dataclass
class Advisories:
    items: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    problems: list[str] = field(default_factory=list)
    withdrawn: int = 0


# ---------------------------------------------------------------------------- lockfiles


def read_lockfile(path: Path) -> Lockfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DependencyProbeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DependencyProbeError(f"{path} is not UTF-8 text") from None
    name = path.name.lower()
    try:
        if name in ("poetry.lock", "uv.lock"):
            return _toml_lock(name.removesuffix(".lock"), text)
        if name == "pipfile.lock":
            return _pipfile_lock(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, AttributeError, TypeError) as exc:
        raise DependencyProbeError(f"{path} cannot be parsed: {printable(exc, 160)}") from None
    return _requirements(text)


def _toml_lock(kind: str, text: str) -> Lockfile:
    lock = Lockfile(kind)
    for package in tomllib.loads(text).get("package", []):
        if package.get("name") and package.get("version"):
            lock.pins.append(Pin(str(package["name"]), str(package["version"])))
    return lock


def _pipfile_lock(text: str) -> Lockfile:
    lock = Lockfile("Pipfile.lock")
    data = json.loads(text)
    for section in ("default", "develop"):
        for name, entry in (data.get(section) or {}).items():
            version = str(entry.get("version", "")) if isinstance(entry, dict) else ""
            if version.startswith("=="):
                lock.pins.append(Pin(name, version[2:]))
            else:
                lock.unpinned.append(name)
    return lock


def _logical_lines(text: str) -> Iterator[str]:
    buffer = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        yield (buffer + line).strip()
        buffer = ""
    if buffer.strip():
        yield buffer.strip()


_OPTION = re.compile(r"\s--?[a-z][a-z-]*(?:[= ]\S+)?")


def _requirements(text: str) -> Lockfile:
    lock = Lockfile("requirements")
    for line in _logical_lines(text):
        if not line or line.startswith("-"):  # -r, -c, -e, --index-url: nothing pinned here
            if line.startswith(("-e", "--editable")):
                lock.unpinned.append(printable(line, 80))
            continue
        spec = _OPTION.sub("", " " + line).strip()  # --hash=sha256:... and friends
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            lock.unpinned.append(printable(spec, 80))
            continue
        exact = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if req.url or len(exact) != 1:
            lock.unpinned.append(req.name)
            continue
        lock.pins.append(Pin(req.name, exact[0].version))
    return lock


# ---------------------------------------------------------------------------- advisories


def load_advisories(folder: Path) -> Advisories:
    if not folder.is_dir():
        raise DependencyProbeError(f"advisories folder {folder} does not exist")
    found = Advisories()
    for path in sorted(folder.rglob("*.json")):
        found.files += 1
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else printable(exc, 100)
            found.problems.append(f"{path.name}: not readable OSV JSON ({why})")
            continue
        for item in loaded if isinstance(loaded, list) else [loaded]:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                found.problems.append(f"{path.name}: not an OSV advisory (no id)")
            elif (shape := _malformed(item)) is not None:
                found.problems.append(f"{path.name}: {printable(item['id'], 60)} {shape}")
            elif item.get("withdrawn"):
                found.withdrawn += 1
            else:
                found.items.append(item)
    return found


def _malformed(advisory: dict[str, Any]) -> str | None:
    """Why an advisory's ``affected`` entries cannot be read (OSV schema), or None."""
    affected = advisory.get("affected") or []
    if not isinstance(affected, list) or not all(isinstance(a, dict) for a in affected):
        return "is malformed: affected must be a list of objects"
    for entry in affected:
        if not isinstance(entry.get("package") or {}, dict):
            return "is malformed: affected[].package must be an object"
        if not isinstance(entry.get("versions") or [], list):
            return "is malformed: affected[].versions must be a list"
        ranges = entry.get("ranges") or []
        if not isinstance(ranges, list) or not all(
            isinstance(r, dict)
            and isinstance(r.get("events") or [], list)
            and all(isinstance(e, dict) for e in r.get("events") or [])
            for r in ranges
        ):
            return "is malformed: affected[].ranges must be objects with a list of event objects"
    return None


def _version(text: object) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...
    def __ge__(self, other: Any, /) -> bool: ...


V = TypeVar("V", bound=_Ordered)


def osv_in_range(
    version: V, events: list[dict[str, Any]], parse: Callable[[object], V | None], zero: V
) -> tuple[bool, V | None]:
    """OSV range evaluation in the ecosystem's own version order (``parse``): the last event at
    or below the version decides; also the nearest fix above it."""
    ordered: list[tuple[V, str]] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected", "limit"):
            if kind in event:
                at = zero if str(event[kind]) == "0" else parse(event[kind])
                if at is not None:
                    ordered.append((at, kind))
    ordered.sort(key=lambda e: (e[0], e[1] != "introduced"))
    affected = False
    for at, kind in ordered:
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind in ("fixed", "limit") and version >= at) or (
            kind == "last_affected" and version > at
        ):
            affected = False
    fixes = [at for at, kind in ordered if kind == "fixed" and at > version]
    return affected, (min(fixes) if fixes else None)


def _in_range(version: Version, events: list[dict[str, Any]]) -> tuple[bool, Version | None]:
    """PEP 440 order (lockfile pins)."""
    return osv_in_range(version, events, _version, Version("0"))


def severity_of(advisory: dict[str, Any], affected: dict[str, Any]) -> str | None:
    """database_specific.severity (GitHub: LOW/MODERATE/HIGH/CRITICAL), else the CVSS vector."""
    for where in (advisory.get("database_specific"), affected.get("ecosystem_specific")):
        if isinstance(where, dict) and isinstance(where.get("severity"), str):
            return printable(where["severity"].upper(), 20)
    for entry in advisory.get("severity") or affected.get("severity") or []:
        if isinstance(entry, dict) and entry.get("score"):
            return printable(f"{entry.get('type', 'score')} {entry['score']}", 120)
    return None


def vulnerabilities(
    pins: list[Pin], advisories: list[dict[str, Any]], ecosystem: str = "PyPI"
) -> list[Vulnerability]:
    """Every (pin, advisory) pair where the pinned version is affected."""
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.key, []).append(pin)
    found: list[Vulnerability] = []
    for advisory in advisories:
        for affected in advisory.get("affected") or []:
            package = affected.get("package") or {}
            if str(package.get("ecosystem", "")).lower() != ecosystem.lower():
                continue
            for pin in by_name.get(canonicalize_name(str(package.get("name", ""))), []):
                hit, fixed = _affects(pin, affected)
                if hit:
                    found.append(_vulnerability(pin, advisory, affected, fixed))
    return found


def _affects(pin: Pin, affected: dict[str, Any]) -> tuple[bool, str | None]:
    version = _version(pin.version)
    listed = [str(v) for v in affected.get("versions") or []]
    hit = pin.version in listed or (
        version is not None and any(_version(v) == version for v in listed)
    )
    fixes: list[Version] = []
    for rng in affected.get("ranges") or []:
        if version is None or rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        in_range, fix = _in_range(version, rng.get("events") or [])
        if in_range:
            hit = True
            if fix is not None:
                fixes.append(fix)
    return hit, (str(min(fixes)) if fixes else None)


def _vulnerability(
    pin: Pin, advisory: dict[str, Any], affected: dict[str, Any], fixed: str | None
) -> Vulnerability:
    aliases = tuple(printable(a, 40) for a in advisory.get("aliases") or [] if isinstance(a, str))
    return Vulnerability(
        package=pin.name,
        version=pin.version,
        advisory=printable(advisory["id"], 60),
        aliases=aliases,
        severity=severity_of(advisory, affected),
        fixed=fixed,
        summary=printable(advisory.get("summary") or "", 160),
    )
