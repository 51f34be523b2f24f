"""Each daily and monthly check's measurement of its target, from its config entry: the probes
called with the target's own settings, giving the frozen measurement a judge takes.

A measurement that cannot be made raises a MeasurementError (the target's cause: refused, not
found, permission denied ...); the check lets it escape and the plugin reports "could not
measure". Judging is in pytest_maintcheck.judges (and .rules), never here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pytest_maintcheck.config import (
    AccessReview,
    AccessSource,
    Certificate,
    Config,
    Database,
    Dependency,
    Policy,
    SecurityMonitoring,
    SessionPolicy,
)
from pytest_maintcheck.config_operations import AtRest, SecurityPatches
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.judges.security import FailedLoginReading
from pytest_maintcheck.probes import access, certificates, os_packages
from pytest_maintcheck.probes.access import Roster, SourceResult
from pytest_maintcheck.probes.authlog import (
    AccessPatterns,
    AccountNames,
    OffHoursWindow,
    scan_access_patterns,
    scan_failed_logins,
    username_key,
)
from pytest_maintcheck.probes.certificates import CertificateReport
from pytest_maintcheck.probes.dependencies import (
    Advisories,
    Lockfile,
    Vulnerability,
    load_advisories,
    read_lockfile,
    vulnerabilities,
)
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
from pytest_maintcheck.probes.policies import PolicyStatus, policy_status
from pytest_maintcheck.probes.sessions import SessionScan, app_sessions, pg_sessions
from pytest_maintcheck.rules.encryption import Channel
from pytest_maintcheck.verdict import Threshold

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


# ---------------------------------------------------------------- security monitoring


def burst_size(per_account: Threshold | None) -> int:
    """A "burst" is as many consecutive failures as the per-account warning level."""
    levels = (
        [x for x in (per_account.warn, per_account.fail) if x is not None] if per_account else []
    )
    return max(1, int(min(levels, default=5)))


def failed_logins_of(
    monitoring: SecurityMonitoring, config: Config, now: datetime
) -> FailedLoginReading:
    """The authentication log over the window; with failures, the known accounts' names."""
    if monitoring.auth_log is None:
        raise MeasurementError("securityMonitoring.authLog is not set")
    scan = scan_failed_logins(
        monitoring.auth_log,
        now=now,
        window=monitoring.window,
        burst=burst_size(monitoring.failed_logins.get("perAccount")),
    )
    if not scan.failures:
        return FailedLoginReading(monitoring.auth_log, scan)
    names, unread = known_accounts(config)
    return FailedLoginReading(monitoring.auth_log, scan, names, tuple(unread))


def access_patterns_of(monitoring: SecurityMonitoring, now: datetime) -> AccessPatterns:
    """Successful logins over the window: new sources per account, off-hours logins."""
    if monitoring.auth_log is None:
        raise MeasurementError("securityMonitoring.authLog is not set")
    off = monitoring.off_hours
    return scan_access_patterns(
        monitoring.auth_log,
        now=now,
        window=monitoring.window,
        off_hours=OffHoursWindow.parse(off.start, off.end, off.timezone) if off else None,
    )


def sessions_of(policy: SessionPolicy, config: Config, now: datetime) -> SessionScan:
    """Open sessions: the application's own query, else pg_stat_activity."""
    db = config.database(policy.database)
    if policy.query:
        return app_sessions(
            db.dsn,
            policy.query,
            now=now,
            connect_timeout=db.connect_timeout,
            statement_timeout=db.statement_timeout,
        )
    return pg_sessions(
        db.dsn, connect_timeout=db.connect_timeout, statement_timeout=db.statement_timeout
    )


def known_accounts(config: Config) -> tuple[AccountNames, list[str]]:
    """Known accounts: the roster, every access-review source and the declared service
    accounts; what could not be read is named, and its usernames show as unknown."""
    known: set[str] = set()
    problems: list[str] = []
    review = config.access_review
    if review is not None:
        known.update(access.normalize(s.name) for s in review.service_accounts)
        try:
            if review.roster is not None:
                known.update(access.read_roster(review.roster).status)
        except MeasurementError as exc:
            problems.append(f"roster: {exc}")
        for source, found in accounts_of(review, config):
            if isinstance(found, MeasurementError):
                problems.append(f"source {source.name}: {found}")
            else:
                known.update(a.key for a in found.accounts)
    return AccountNames(frozenset(known), username_key(os.environ, config.system)), problems


# ---------------------------------------------------------------- access review


def accounts_of(
    review: AccessReview, config: Config
) -> list[tuple[AccessSource, SourceResult | MeasurementError]]:
    """Each source's accounts, or why it could not be read: the others are still reviewed."""
    found: list[tuple[AccessSource, SourceResult | MeasurementError]] = []
    for source in review.sources:
        try:
            found.append((source, _source_accounts(source, config)))
        except MeasurementError as exc:
            found.append((source, exc.about(source.postgres or source.name)))
    return found


def _source_accounts(source: AccessSource, config: Config) -> SourceResult:
    if source.postgres is not None:
        db = config.database(source.postgres)
        return access.postgres_accounts(
            source.name,
            db.dsn,
            connect_timeout=db.connect_timeout,
            statement_timeout=db.statement_timeout,
        )
    if source.file is None:  # the loader requires one of the two
        raise MeasurementError(f"source {source.name} names neither postgres nor file")
    return access.file_accounts(source.name, source.file)


@dataclass(frozen=True)
class AccessReading:
    """The roster, and each source's accounts or the error that kept it unread."""

    roster: Roster | None  # None: accessReview names no roster
    sources: tuple[tuple[AccessSource, SourceResult | MeasurementError], ...] = ()


def access_of(review: AccessReview, config: Config) -> AccessReading:
    """The roster first: without it no account can be reviewed, so no source is read."""
    if review.roster is None:
        return AccessReading(None)
    try:
        roster = access.read_roster(review.roster)
    except MeasurementError as exc:
        raise exc.reworded(f"roster: {exc.detail}") from None
    return AccessReading(roster, tuple(accounts_of(review, config)))


# ---------------------------------------------------------------- certificates, dependencies


def certificate_of(certificate: Certificate, now: datetime) -> CertificateReport:
    """The chain a server presents (or a PEM file holds), verified at ``now``."""
    c = certificate
    if c.host is not None:
        return certificates.examine_endpoint(
            c.host, c.port, server_name=c.server_name, ca_file=c.ca_file, timeout=c.timeout, now=now
        )
    if c.file is None:  # the loader requires one of the two
        raise MeasurementError(f"certificate {c.name} names neither host nor file")
    return certificates.examine_file(c.file, server_name=c.server_name, ca_file=c.ca_file, now=now)


@dataclass(frozen=True)
class DependencyAudit:
    """A lockfile's pins against an OSV advisories folder."""

    lock: Lockfile
    advisories: Advisories
    vulnerable: tuple[Vulnerability, ...]


def dependencies_of(dependency: Dependency) -> DependencyAudit:
    lock = read_lockfile(dependency.lockfile)
    found = load_advisories(dependency.advisories)
    vulnerable = vulnerabilities(lock.pins, found.items, dependency.ecosystem)
    return DependencyAudit(lock, found, tuple(vulnerable))


def policy_of(policy: Policy) -> PolicyStatus:
    """The policy file and its last review date (front matter, else the config)."""
    return policy_status(policy.file, policy.last_reviewed)
