"""Each daily and monthly check's measurement of its target, from its config entry: the probes
called with the target's own settings, giving the frozen measurement a judge takes.

A measurement that cannot be made raises a MeasurementError (the target's cause: refused, not
found, permission denied ...); the check lets it escape and the plugin reports "could not
measure". Judging is in pytest_maintcheck.judges (and .rules), never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_maintcheck.config import Config, Database
from pytest_maintcheck.config_operations import AtRest, SecurityPatches
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.probes import os_packages
from pytest_maintcheck.probes.dependencies import Vulnerability, load_advisories
from pytest_maintcheck.probes.encryption import (
    ConnectionTls,
    FileEnvelope,
    Repository,
    connection_tls,
    file_envelope,
    pgbackrest_repositories,
)
from pytest_maintcheck.probes.os_packages import PendingReboot
from pytest_maintcheck.probes.pg_config_review import ReviewSnapshot, review_snapshot
from pytest_maintcheck.rules.encryption import Channel

# ---------------------------------------------------------------- configuration and encryption


def configuration_of(database: Database) -> ReviewSnapshot:
    """What the configuration review reads of one database, as its least-privileged role."""
    return review_snapshot(
        database.dsn,
        connect_timeout=database.connect_timeout,
        statement_timeout=database.statement_timeout,
    )


def tls_of(channel: Channel) -> ConnectionTls:
    """Whether a libpq connection of the config negotiates TLS."""
    if channel.dsn is None:
        raise MeasurementError(f"{channel.where} has no DSN to connect with", where=channel.where)
    return connection_tls(channel.dsn, connect_timeout=channel.connect_timeout)


@dataclass(frozen=True)
class AtRestReading:
    """A pgBackRest config's repositories, or a backups entry's files and their envelopes."""

    repositories: tuple[Repository, ...] | None = None  # None: a backups entry's files
    files: tuple[FileEnvelope, ...] = ()


def at_rest_of(store: AtRest, config: Config) -> AtRestReading:
    """The repositories pgBackRest is configured with, or each backup file's first bytes."""
    if store.pgbackrest_config is not None:
        return AtRestReading(repositories=tuple(pgbackrest_repositories(store.pgbackrest_config)))
    backup = next((b for b in config.backups if b.name == store.backup), None)
    if backup is None:  # the loader refuses this; a clear error rather than a StopIteration
        raise MeasurementError(f"no backups entry named {store.backup!r}", cause=Cause.NOT_FOUND)
    files = sorted(p for p in backup.location.glob(backup.pattern) if p.is_file())
    return AtRestReading(files=tuple(file_envelope(p) for p in files))


# ---------------------------------------------------------------- security patches


@dataclass(frozen=True)
class PatchLevel:
    """This host's installed packages against OSV advisories, and a pending reboot.

    ``ecosystem`` None: no advisories are configured, so packages were not compared."""

    reboot: PendingReboot | None
    ecosystem: str | None = None
    installed: int = 0
    advisories: int = 0  # advisories read from the folder
    vulnerable: tuple[Vulnerability, ...] = ()
    problems: tuple[str, ...] = ()  # advisories that could not be read
    folder: Path | None = None


def patch_level_of(policy: SecurityPatches) -> PatchLevel:
    """dpkg's installed packages against the advisories on disk (no network)."""
    reboot = os_packages.pending_reboot(policy.reboot_flag)
    if policy.advisories is None:
        return PatchLevel(reboot)
    ecosystem = policy.ecosystem or os_packages.os_ecosystem()
    installed = os_packages.installed_packages()
    found = load_advisories(policy.advisories)
    vulnerable = os_packages.vulnerable_packages(installed, found.items, ecosystem)
    return PatchLevel(
        reboot,
        ecosystem,
        len(installed),
        len(found.items),
        tuple(vulnerable),
        tuple(found.problems),
        policy.advisories,
    )
