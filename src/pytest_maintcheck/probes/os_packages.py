"""Installed Debian/Ubuntu packages (dpkg-query) against OSV advisories in a folder, offline.

OSV's Debian and Ubuntu advisories name *source* packages (``openssl``, ``glibc``) with source
versions, in ecosystems ``Debian:12`` or ``Ubuntu:22.04:LTS``; versions are ordered the way
dpkg orders them (python-debian). The folder is read with the same loader as the lockfile
check (probes.dependencies).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from pytest_maintcheck.errors import MeasurementError
from pytest_maintcheck.probes.dependencies import Vulnerability, osv_in_range, severity_of
from pytest_maintcheck.redact import printable

DPKG_FORMAT = (
    "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n"
)
DPKG_TIMEOUT = 60.0
OS_RELEASE = Path("/etc/os-release")


class PackageProbeError(MeasurementError):
    """The package list or the OS could not be read; the message is safe to print. Escaping
    the check, it is a could-not-measure finding."""


@dataclass(frozen=True)
class InstalledPackage:
    name: str  # the binary package
    version: str
    source: str  # the source package advisories name
    source_version: str


def installed_packages(timeout: float = DPKG_TIMEOUT) -> list[InstalledPackage]:
    """Every package dpkg says is installed (status ``ii``)."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", DPKG_FORMAT],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise PackageProbeError(
            "dpkg-query not found: this is not a Debian or Ubuntu host"
        ) from None
    except subprocess.TimeoutExpired:
        raise PackageProbeError(f"dpkg-query did not finish within {timeout:g}s") from None
    if done.returncode != 0:
        raise PackageProbeError(f"dpkg-query failed: {printable(done.stderr.strip(), 200)}")
    found = []
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 5 and parts[4].startswith("ii"):
            name, version, source, source_version = parts[:4]
            found.append(InstalledPackage(name, version, source or name, source_version or version))
    return found


def os_ecosystem(os_release: Path = OS_RELEASE) -> str:
    """OSV's ecosystem for this OS release: ``Debian:12``, ``Ubuntu:22.04``."""
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackageProbeError(f"cannot read {os_release}: {exc.strerror or exc}") from None
    fields = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            fields[key.strip()] = value.strip().strip("\"'")
    distro, release = fields.get("ID", ""), fields.get("VERSION_ID", "")
    names = {"debian": "Debian", "ubuntu": "Ubuntu"}
    if distro not in names or not release:
        raise PackageProbeError(
            f"{os_release} names {printable(distro or 'no ID', 40)} {printable(release, 20)}: "
            "only Debian and Ubuntu releases are known; set securityPatches.ecosystem"
        )
    return f"{names[distro]}:{release}"


def ecosystem_matches(advisory_ecosystem: str, ours: str) -> bool:
    """``Ubuntu:22.04:LTS`` advises ``Ubuntu:22.04``; Ubuntu Pro (ESM) advisories only a host
    whose ecosystem says Pro; every other ecosystem matches exactly."""
    theirs = advisory_ecosystem.strip()
    if theirs == ours:
        return True
    distro, _, release = ours.partition(":")
    parts = theirs.split(":")
    return parts[0] == distro == "Ubuntu" and release in parts[1:] and "Pro" not in parts


def _version(text: object) -> Version | None:
    try:
        return Version(str(text))
    except ValueError:
        return None


def in_range(version: Version, events: list[dict[str, Any]]) -> tuple[bool, Version | None]:
    """OSV range events in dpkg's order (the evaluation is the lockfiles' one)."""
    return osv_in_range(version, events, _version, Version("0"))


def vulnerable_packages(
    packages: Iterable[InstalledPackage], advisories: list[dict[str, Any]], ecosystem: str
) -> list[Vulnerability]:
    """Every (installed source package, advisory) pair whose installed version is affected."""
    by_source: dict[str, InstalledPackage] = {}
    for p in packages:
        by_source.setdefault(p.source, p)  # binaries of one source share its version
    found: list[Vulnerability] = []
    for advisory in advisories:
        for affected in advisory.get("affected") or []:
            package = affected.get("package") or {}
            if not ecosystem_matches(str(package.get("ecosystem", "")), ecosystem):
                continue
            installed = by_source.get(str(package.get("name", "")))
            version = _version(installed.source_version) if installed else None
            if installed is None or version is None:
                continue
            hit = installed.source_version in [str(v) for v in affected.get("versions") or []]
            fixes: list[Version] = []
            for rng in affected.get("ranges") or []:
                if rng.get("type") != "ECOSYSTEM":
                    continue
                inside, fix = in_range(version, rng.get("events") or [])
                hit = hit or inside
                if inside and fix is not None:
                    fixes.append(fix)
            if hit:
                found.append(_vulnerability(installed, advisory, affected, fixes))
    return found


def _vulnerability(
    installed: InstalledPackage,
    advisory: dict[str, Any],
    affected: dict[str, Any],
    fixes: list[Version],
) -> Vulnerability:
    aliases = tuple(printable(a, 40) for a in advisory.get("aliases") or [] if isinstance(a, str))
    return Vulnerability(
        package=installed.source,
        version=installed.source_version,
        advisory=printable(advisory["id"], 60),
        aliases=aliases,
        severity=severity_of(advisory, affected),
        fixed=str(min(fixes)) if fixes else None,
        summary=printable(advisory.get("summary") or advisory.get("details") or "", 160),
    )


@dataclass(frozen=True)
class PendingReboot:
    packages: tuple[str, ...]


def pending_reboot(flag: Path) -> PendingReboot | None:
    """/var/run/reboot-required (written by Debian/Ubuntu's update-notifier hooks), and the
    packages that asked for it (reboot-required.pkgs beside it)."""
    if not flag.exists():
        return None
    listed = flag.with_name(flag.name + ".pkgs")
    try:
        names = (
            listed.read_text(encoding="utf-8", errors="replace").split() if listed.exists() else []
        )
    except OSError:
        names = []
    return PendingReboot(tuple(printable(n, 60) for n in dict.fromkeys(names)))


def server_release(version_num: int) -> tuple[int, int]:
    """(major, minor) from server_version_num: 150008 is 15.8 (10 and later)."""
    return version_num // 10000, version_num % 10000
