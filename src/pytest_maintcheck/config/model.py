"""The frozen config: what ``maintcheck.yaml`` says, checked, with defaults filled in.

Built by loading.py; nothing here reads a file or talks to a target system.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_maintcheck.notify import AlertSettings

if TYPE_CHECKING:
    from pytest_maintcheck.change_config import ChangeManagement
    from pytest_maintcheck.config_operations import (
        ConfigReview,
        Encryption,
        Host,
        Pooler,
        SecurityPatches,
    )
from pytest_maintcheck.config.defaults import DEFAULTS
from pytest_maintcheck.redact import redact_dsn
from pytest_maintcheck.verdict import Threshold
from pytest_maintcheck.windows import MaintenanceWindow

Path_ = tuple[str | int, ...]


class ConfigError(Exception):
    """A config the run cannot start with: one message naming file, line and key."""

    def __init__(self, file: Path | str, line: int | None, path: Path_, message: str) -> None:
        self.file, self.line, self.path, self.message = str(file), line, path, message
        where = f"{self.file}:{line}" if line else self.file
        key = format_path(path)
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------------------- frozen config


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of one target, defaults filled in."""

    items: tuple[Threshold, ...] = ()

    def get(self, metric: str) -> Threshold | None:
        return next((t for t in self.items if t.metric == metric), None)


@dataclass(frozen=True)
class Database:
    name: str
    dsn: str  # as written; may hold no password (the loader refuses one)
    connect_timeout: float = DEFAULTS.connect_timeout
    statement_timeout: float = DEFAULTS.statement_timeout

    @property
    def safe_dsn(self) -> str:
        return redact_dsn(self.dsn)


@dataclass(frozen=True)
class HealthCheck:
    service: str
    type: str
    endpoints: tuple[str, ...]
    interval: float = DEFAULTS.health_interval
    samples: int = DEFAULTS.health_samples_otherwise  # an API's; see Defaults.health_samples_for
    timeout: float = DEFAULTS.health_timeout
    ca_file: Path | None = None
    severity: str | None = None
    thresholds: Thresholds = Thresholds()
    alert_channels: tuple[str, ...] = ()
    escalation: tuple[str, ...] = ()
    version_pointer: str | None = None  # RFC 6901 pointer to the running version in the body

    @property
    def endpoint(self) -> str:
        return self.endpoints[0]


@dataclass(frozen=True)
class DatabaseMaintenanceTarget:
    database: str
    min_dead_tuples: int = DEFAULTS.min_dead_tuples
    timeout: float = DEFAULTS.maintenance_timeout
    severity: str | None = None
    thresholds: Thresholds = Thresholds()
    repair_timeout: float = DEFAULTS.repair_timeout
    lock_timeout: float = DEFAULTS.lock_timeout


@dataclass(frozen=True)
class RestoreTest:
    target: str | None = None
    max_duration: float = DEFAULTS.restore_max_duration
    expect_tables: tuple[str, ...] = ()
    min_rows: tuple[tuple[str, int], ...] = ()
    jobs: int = DEFAULTS.restore_jobs
    # physical restores (pgbackrest, barman): None is `latest`, the end of the archived WAL
    target_time: datetime | None = None
    dbname: str | None = None  # where expectTables live; default the source DSN's, else postgres
    user: str | None = None  # the role queried as; default the source DSN's, else postgres
    scratch_dir: Path | None = None  # where the scratch data directory goes; default: temp


@dataclass(frozen=True)
class Rotation:
    daily: int = 0
    weekly: int = 0
    monthly: int = 0


@dataclass(frozen=True)
class Backup:
    name: str
    kind: str  # pg_dump | files | pgbackrest | barman
    location: Path = Path()  # pg_dump and files only
    pattern: str = ""
    database: str | None = None
    max_age: float = DEFAULTS.backup_max_age
    checksums: str | None = None
    size_change: Threshold | None = None
    restore_test: RestoreTest | None = None
    rotation: Rotation | None = None
    severity: str | None = None
    stanza: str | None = None  # pgbackrest
    tool_config: Path | None = None  # pgbackrest --config
    server: str | None = None  # barman
    timeout: float = DEFAULTS.backup_tool_timeout  # each pgbackrest/barman command, not the restore

    @property
    def physical(self) -> bool:
        return self.kind in PHYSICAL_KINDS


PHYSICAL_KINDS = ("pgbackrest", "barman")


@dataclass(frozen=True)
class ReplicationTarget:
    """Standbys a primary must have (or a standby's own receiver), lag and slot limits."""

    database: str
    standbys: int | None = None  # how many streaming standbys a primary must have
    standby_names: tuple[str, ...] = ()  # their application_name, when listed by name
    replay_lag: Threshold | None = None
    replay_lag_bytes: Threshold | None = None
    slot_retained: Threshold | None = None
    severity: str | None = None


@dataclass(frozen=True)
class ArchivingTarget:
    database: str
    archive_max_age: Threshold | None = None
    severity: str | None = None


@dataclass(frozen=True)
class Certificate:
    name: str
    host: str | None = None
    port: int = DEFAULTS.certificate_port
    file: Path | None = None
    server_name: str | None = None
    ca_file: Path | None = None
    timeout: float = DEFAULTS.certificate_timeout
    severity: str | None = None
    thresholds: Thresholds = Thresholds()
    public_ca: bool | None = None  # None: public unless caFile is set (see counts_as_public)


@dataclass(frozen=True)
class AccessSource:
    name: str
    postgres: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class ServiceAccount:
    """An account that is not a person: reviewed for its owner and privileges only."""

    name: str
    owner: str
    justification: str


@dataclass(frozen=True)
class AccessReview:
    sources: tuple[AccessSource, ...] = ()
    roster: Path | None = None
    inactive: Threshold | None = None
    privileged_roles: tuple[str, ...] = ()
    approved_privileged: tuple[str, ...] = ()
    require_mfa: bool = False
    severity: str | None = None
    service_accounts: tuple[ServiceAccount, ...] = ()

    def service_account(self, username: str) -> ServiceAccount | None:
        """The declaration of username (compared case-insensitively), if it has one."""
        key = username.strip().casefold()
        return next((s for s in self.service_accounts if s.name.strip().casefold() == key), None)


@dataclass(frozen=True)
class OffHours:
    start: str
    end: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class SessionPolicy:
    database: str
    max_idle: float = DEFAULTS.session_max_idle
    max_lifetime: float = DEFAULTS.session_max_lifetime
    query: str | None = None


@dataclass(frozen=True)
class SecurityMonitoring:
    auth_log: Path | None = None
    window: float = DEFAULTS.monitoring_window
    failed_logins: Thresholds = Thresholds()
    off_hours: OffHours | None = None
    sessions: SessionPolicy | None = None


@dataclass(frozen=True)
class Dependency:
    name: str
    lockfile: Path
    advisories: Path
    ecosystem: str = "PyPI"


@dataclass(frozen=True)
class Policy:
    name: str
    file: Path
    review_every: float
    last_reviewed: date | None = None


@dataclass(frozen=True)
class WrittenThreshold:
    """A site check's threshold as the config wrote it; judged once the check says its unit."""

    name: str
    raw: object
    line: int | None


@dataclass(frozen=True)
class SiteTarget:
    """One target of a site's own check: ``siteChecks.<check>.targets[i]``.

    ``thresholds`` holds the written thresholds parsed with the metrics the check declares
    (its direction and unit); the plugin fills it in when it collects the check.
    """

    check: str
    name: str
    severity: str | None = None
    database: str | None = None  # a databases key, checked to exist
    timeout: float = DEFAULTS.site_check_timeout
    params: Mapping[str, Any] = field(default_factory=dict)  # free values for the check
    thresholds: Thresholds = Thresholds()
    written: tuple[WrittenThreshold, ...] = ()
    line: int | None = None
    folder: Path = Path()  # the config's folder

    def path(self, param: str) -> Path:
        """``params[param]`` as a path; a relative one is taken from the config's folder."""
        value = self.params.get(param)
        if not isinstance(value, str) or not value:
            raise KeyError(f"{self.check}[{self.name}]: params.{param} (a path) is not set")
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.folder / p


@dataclass(frozen=True)
class MetricCheck:
    """A numeric check without Python: one number from SQL or a JSON endpoint, judged."""

    name: str
    suite: str
    threshold: Threshold
    title: str = ""
    database: str | None = None  # with sql
    sql: str | None = None
    http: str | None = None  # with pointer
    pointer: str = ""
    ca_file: Path | None = None
    timeout: float = DEFAULTS.metric_check_timeout
    severity: str | None = None
    action: str | None = None

    @property
    def source(self) -> str:
        """Where the number comes from, for messages (never a DSN)."""
        if self.sql is not None:
            return f"SQL on database {self.database!r}"
        return f"{self.http} at {self.pointer or '(the whole body)'}"


@dataclass(frozen=True)
class HistorySettings:
    """Where run history lives (None: SQLite in the report folder) and how far back it looks."""

    dsn: str | None = None
    window: float = DEFAULTS.history_window


@dataclass(frozen=True)
class Waiver:
    check: str
    justification: str
    expires: date

    def matches(self, name: str, nodeid: str) -> bool:
        """``test_x[target]`` names a test; a nodeid or its tail names it too."""
        return self.check in (name, nodeid) or nodeid.endswith("::" + self.check)


@dataclass(frozen=True)
class Probing:
    """How hard the health fleet probe may press: connections open at once to one host:port
    (past its listen backlog, connects are dropped and retried a second later) and probes in
    flight at once in all."""

    connections_per_host: int = DEFAULTS.connections_per_host
    concurrency: int = DEFAULTS.concurrency


@dataclass(frozen=True)
class Signing:
    """Where the Ed25519 key that signs each run's log comes from: a file or a variable."""

    key_file: Path | None = None
    key_env: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Config:
    """The whole config, validated; built once per run and passed down."""

    path: Path
    version: int = 1
    system: str = ""
    environment: str = ""
    databases: Mapping[str, Database] = field(default_factory=dict)
    health_checks: tuple[HealthCheck, ...] = ()
    database_maintenance: tuple[DatabaseMaintenanceTarget, ...] = ()
    backups: tuple[Backup, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    access_review: AccessReview | None = None
    security_monitoring: SecurityMonitoring | None = None
    dependencies: tuple[Dependency, ...] = ()
    policies: tuple[Policy, ...] = ()
    site_checks: Mapping[str, tuple[SiteTarget, ...]] = field(default_factory=dict)
    metrics: tuple[MetricCheck, ...] = ()
    replication: tuple[ReplicationTarget, ...] = ()
    archiving: tuple[ArchivingTarget, ...] = ()
    capacity_days_to_full: Threshold | None = None
    probing: Probing = Probing()
    capacity_trend_factor: float = 1.5  # a latest value this many times its baseline: a warning
    history: HistorySettings = HistorySettings()
    waivers: tuple[Waiver, ...] = ()
    alert_webhooks: Mapping[str, str] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)
    prometheus_textfile: Path | None = None
    signing: Signing | None = None
    alerts: AlertSettings = field(default_factory=AlertSettings)
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    secrets: frozenset[str] = frozenset()
    # the names the config gives things (services, databases, system ...): never masked as a
    # secret, even when a secret happens to equal one
    public_names: frozenset[str] = frozenset()
    # issue 14's sections, built in config_operations.py
    config_review: tuple[ConfigReview, ...] = ()
    hosts: tuple[Host, ...] = ()
    pooling: tuple[Pooler, ...] = ()
    security_patches: SecurityPatches | None = None
    encryption: Encryption | None = None
    change_management: ChangeManagement | None = None  # issue 17, built in change_config.py

    def database(self, name: str) -> Database:
        return self.databases[name]

    def owner_for(self, incident_type: str) -> str:
        return self.owners.get(incident_type) or self.owners.get("default") or "on-call engineer"
