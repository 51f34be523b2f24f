"""Load ``maintcheck.yaml`` once, validate every section, and freeze it.

Every error names the file, the line and the key path, and suggests the nearest known key for
a typo. Nothing here talks to a target system.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_maintcheck.catalogue import CHECKS
from pytest_maintcheck.notify import AlertSettings, parse_alerts
from pytest_maintcheck.units import UnitError, parse_duration

if TYPE_CHECKING:
    import jsonschema
    import yaml

    from pytest_maintcheck.change_config import ChangeManagement
    from pytest_maintcheck.config_operations import (
        ConfigReview,
        Encryption,
        Host,
        Pooler,
        SecurityPatches,
    )
from pytest_maintcheck.verdict import Metric, Threshold, ThresholdError
from pytest_maintcheck.windows import MaintenanceWindow, parse_windows

Path_ = tuple[str | int, ...]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")
_SECRET_KEYS = re.compile(r"(password|passwd|secret|token|webhook|apikey|api_key|dsn)", re.I)
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")
# keys whose literal values name things (the masking of secrets leaves these names alone)
_NAME_KEYS = frozenset(
    {"service", "name", "system", "environment", "database", "postgres", "target", "check"}
)
# a real config is a few levels deep and a few thousand values; these stop alias bombs and
# deep nesting long before they cost memory, time or a RecursionError
MAX_NESTING = 64
MAX_VALUES = 100_000


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
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0

    @property
    def safe_dsn(self) -> str:
        return redact_dsn(self.dsn)


@dataclass(frozen=True)
class HealthCheck:
    service: str
    type: str
    endpoints: tuple[str, ...]
    interval: float = 60.0
    samples: int = 5
    timeout: float = 5.0
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
    min_dead_tuples: int = 1000
    timeout: float = 30.0
    severity: str | None = None
    thresholds: Thresholds = Thresholds()
    repair_timeout: float = 900.0  # statement_timeout of each VACUUM/ANALYZE/REINDEX (--apply)
    lock_timeout: float = 5.0  # how long a repair may wait for a lock before giving up


@dataclass(frozen=True)
class RestoreTest:
    target: str | None = None
    max_duration: float = 1800.0
    expect_tables: tuple[str, ...] = ()
    min_rows: tuple[tuple[str, int], ...] = ()
    jobs: int = 2
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
    max_age: float = 26 * 3600.0
    checksums: str | None = None
    size_change: Threshold | None = None
    restore_test: RestoreTest | None = None
    rotation: Rotation | None = None
    severity: str | None = None
    stanza: str | None = None  # pgbackrest
    tool_config: Path | None = None  # pgbackrest --config
    server: str | None = None  # barman
    timeout: float = 120.0  # each pgbackrest/barman command (not the restore)

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
    port: int = 443
    file: Path | None = None
    server_name: str | None = None
    ca_file: Path | None = None
    timeout: float = 10.0
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
    max_idle: float = 900.0
    max_lifetime: float = 12 * 3600.0
    query: str | None = None


@dataclass(frozen=True)
class SecurityMonitoring:
    auth_log: Path | None = None
    window: float = 24 * 3600.0
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
    timeout: float = 30.0
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
    timeout: float = 5.0  # a statement_timeout for sql; the whole GET for http
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
    window: float = 30 * 86400.0


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

    connections_per_host: int = 6
    concurrency: int = 256


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


# ---------------------------------------------------------------------------- defaults

DEFAULT_THRESHOLDS: dict[str, dict[str, object]] = {
    "health": {"responseTime": {"warn": 1000, "fail": 5000}, "errorRate": {"warn": 0, "fail": 0.5}},
    "storage": {"usage": {"warn": 0.8, "fail": 0.9}, "inodeUsage": {"warn": 0.8, "fail": 0.9}},
    "database": {
        "deadTupleRatio": {"warn": 0.1, "fail": 0.2},
        "vacuumAge": {"warn": "7d", "fail": "14d"},
        "analyzeAge": {"warn": "7d", "fail": "14d"},
        "connectionUsage": {"warn": 0.75, "fail": 0.9},
        "wraparoundAge": {"warn": 500_000_000, "fail": 1_000_000_000},
        "cacheHitRatio": {"warn": 0.95, "fail": 0.90},
        "longTransaction": {"warn": "5m", "fail": "1h"},
        "size": {"warn": "50GB", "fail": "80GB"},
        "slowQuery": {"warn": "500ms", "fail": "2s"},
    },
    "certificate": {
        "daysToExpiry": {"warn": 30, "fail": 7},
        # each daysToExpiry level is capped at this share of the certificate's own lifetime:
        # ACME clients renew when a third is left
        "lifetimeLeft": {"warn": 1 / 3, "fail": 0.1},
        "minKeyBits": 2048,
    },
    "failedLogins": {
        "perAccount": {"warn": 5, "fail": 10},
        "perSource": {"warn": 20, "fail": 50},
        "ratio": {"warn": 0.2, "fail": 0.5},
    },
}
DEFAULT_SIZE_CHANGE: dict[str, object] = {"warn": 0.2, "fail": 0.5}  # a backup that halved fails


# ---------------------------------------------------------------------------- loading


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate, validate and freeze a config file; raise ConfigError on any fault."""
    path = Path(path)
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, (), "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, (), f"cannot read config: {exc}") from None
    reader = _Reader(path, env)
    raw = reader.read(text)
    if not isinstance(raw, dict):
        raise ConfigError(path, 1, (), "the config must be a mapping of sections (version: 1, ...)")
    _validate_schema(raw, reader)
    return _Builder(path, raw, reader).build()


class _Reader:
    """YAML to plain values, remembering the line of every key, with ${VAR} interpolation."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        import yaml  # imported when a config is read: the plugin loads in every pytest run

        self.path, self.env = path, env
        self.lines: dict[Path_, int] = {}
        self.written: dict[Path_, str] = {}  # each text value as written, before ${VAR}
        self.secrets: set[str] = set()
        self.public: set[str] = set()
        self._constructor = yaml.SafeLoader("")
        self._values = 0

    def read(self, text: str) -> Any:
        import yaml

        try:
            self._check_nesting(text)
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark else None
            raise ConfigError(self.path, line, (), f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(self.path, None, (), f"not valid YAML: {exc}") from None
        if node is None:
            return None
        return self._value(node, ())

    def _check_nesting(self, text: str) -> None:
        """Walk the event stream (flat, no recursion) and refuse nesting deeper than a config."""
        import yaml

        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    line = event.start_mark.line + 1 if event.start_mark else None
                    raise ConfigError(
                        self.path, line, (), f"nested deeper than {MAX_NESTING} levels"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1

    def line(self, path: Sequence[str | int]) -> int | None:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def _value(self, node: yaml.Node, path: Path_) -> Any:
        import yaml

        self.lines.setdefault(path, node.start_mark.line + 1)
        self._values += 1  # aliases are expanded here, so this bounds an alias bomb
        if self._values > MAX_VALUES:
            raise ConfigError(
                self.path,
                node.start_mark.line + 1,
                path,
                f"more than {MAX_VALUES} values once aliases (*name) are expanded; "
                "write the shared part out or use fewer aliases",
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(
                        self.path, key_node.start_mark.line + 1, path, "keys must be plain names"
                    )
                if key in out:
                    raise ConfigError(
                        self.path, key_node.start_mark.line + 1, (*path, key), "duplicate key"
                    )
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self.public.add(str(key))
                out[key] = self._value(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._value(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates stay text; the builder parses the ones it expects
        if node.tag != "tag:yaml.org,2002:str":
            return self._constructor.construct_object(node)
        self.written[path] = node.value
        if "$" not in node.value:
            if path and path[-1] in _NAME_KEYS:
                self.public.add(node.value)
            return node.value
        value = self._interpolate(node.value, path)
        if node.style is None and _NUMBER.match(value):
            return float(value) if "." in value else int(value)
        return value

    def _interpolate(self, text: str, path: Path_) -> str:
        key = str(path[-1]) if path else ""

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in self.env:
                value = self.env[name]
            elif default is not None:
                value = default
            else:
                raise ConfigError(
                    self.path,
                    self.line(path),
                    path,
                    f"environment variable {name} is not set "
                    f"(write ${{{name}:-default}} for a default)",
                )
            secret_name = _SECRET_KEYS.search(key) or _SECRET_KEYS.search(name)
            if value and (secret_name or _in_secret_field(text[: match.start()], text)):
                self.secrets.add(value)
            return value

        return _VAR.sub(replace, text)


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema shipped with the package; the validator below uses this same file."""
    text = resources.files("pytest_maintcheck").joinpath("schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _validate_schema(raw: dict[str, Any], reader: _Reader) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(
        validator.iter_errors(raw),
        key=lambda e: (reader.line(list(e.absolute_path)) or 0, -len(e.absolute_path)),
    )
    if not errors:
        return
    error = errors[0]
    path: Path_ = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        key = extra[0] if extra else "?"
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
        raise ConfigError(
            reader.path, reader.line((*path, key)), (*path, key), f"unknown key{hint}"
        )
    # a value the schema refused may hold a secret: it is quoted in the message
    message = redact_dsn(redact_urls(_explain(error)))
    for secret in sorted((s for s in reader.secrets if len(s) >= 4), key=len, reverse=True):
        message = message.replace(secret, _MASK)
    raise ConfigError(reader.path, reader.line(path), path, message)


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)  # type: ignore[union-attr]
        return f"must be one of {allowed}, got {error.instance!r}"
    if error.validator == "anyOf":
        return f"{error.instance!r} is not a valid value here ({_hint(error)})"
    if error.validator == "const":
        return f"must be {error.validator_value!r}"
    if error.validator == "type":
        return f"expected {error.validator_value}, got {type(error.instance).__name__}"
    return str(error.message)


def _hint(error: jsonschema.ValidationError) -> str:
    ref = json.dumps(error.schema)
    if "duration" in ref or "ms|s|m|h|d|w" in ref:
        return "a duration like 500ms, 30s, 15m, 24h or 7d"
    if "KMGT" in ref:
        return "a size like 512MB or 50GB"
    return "a number, or {warn: X, fail: Y}"


class _Builder:
    """Plain validated values to frozen objects; semantic checks that a schema cannot say."""

    def __init__(self, path: Path, raw: dict[str, Any], reader: _Reader) -> None:
        self.path, self.raw, self.reader = path, raw, reader
        self.base = path.parent
        self.secrets = set(reader.secrets)

    def fail(self, path: Path_, message: str) -> ConfigError:
        return ConfigError(self.path, self.reader.line(path), path, message)

    def file(self, value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p

    def duration(self, path: Path_, raw: object, default: float) -> float:
        if raw is None:
            return default
        try:
            seconds = parse_duration(raw)
        except UnitError as exc:
            raise self.fail(path, str(exc)) from None
        # PostgreSQL reads statement_timeout=0 as "none": a bound must stay a bound
        if seconds <= 0 and str(path[-1]).lower().endswith(("timeout", "duration")):
            raise self.fail(path, "a timeout must be more than 0 (0 would mean no timeout)")
        return seconds

    def threshold(
        self, path: Path_, metric: str, raw: object, definition: Metric | None = None
    ) -> Threshold | None:
        if raw is None:
            return None
        try:
            return Threshold.parse(metric, raw, definition)
        except (ThresholdError, UnitError) as exc:
            raise self.fail(path, str(exc)) from None

    def thresholds(self, path: Path_, given: Mapping[str, Any] | None, defaults: str) -> Thresholds:
        merged: dict[str, object] = dict(DEFAULT_THRESHOLDS.get(defaults, {}))
        merged.update(given or {})
        items = []
        for name, raw in merged.items():
            made = self.threshold((*path, name), name, raw)
            if made is not None:
                items.append(made)
        return Thresholds(tuple(items))

    def database_ref(self, path: Path_, name: str) -> str:
        if name not in self.raw.get("databases", {}):
            known = list(self.raw.get("databases", {}))
            close = difflib.get_close_matches(name, known, n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else (
                    f"; defined: {', '.join(known)}"
                    if known
                    else "; the databases section is empty"
                )
            )
            raise self.fail(path, f"no database named {name!r} in databases{hint}")
        return name

    def build(self) -> Config:
        raw = self.raw
        databases = {n: self._database(n, d) for n, d in raw.get("databases", {}).items()}
        health = tuple(self._health(i, h) for i, h in enumerate(raw.get("healthChecks", [])))
        self._unique("healthChecks", [h.service for h in health], "service")
        maint = tuple(
            self._maintenance(i, m) for i, m in enumerate(raw.get("databaseMaintenance", []))
        )
        backups = tuple(self._backup(i, b) for i, b in enumerate(raw.get("backups", [])))
        self._unique("backups", [b.name for b in backups], "name")
        certs = tuple(self._certificate(i, c) for i, c in enumerate(raw.get("certificates", [])))
        self._unique("certificates", [c.name for c in certs], "name")
        deps = tuple(
            Dependency(
                d["name"],
                self.file(d["lockfile"]) or Path(),
                self.file(d["advisories"]) or Path(),
                d.get("ecosystem", "PyPI"),
            )
            for d in raw.get("dependencies", [])
        )
        policies = tuple(self._policy(i, p) for i, p in enumerate(raw.get("policies", [])))
        site_checks = {
            key: self._site_check(key, entry) for key, entry in raw.get("siteChecks", {}).items()
        }
        metrics = tuple(self._metric(i, m, databases) for i, m in enumerate(raw.get("metrics", [])))
        self._unique("metrics", [m.name for m in metrics], "name")
        replication = tuple(
            self._replication(i, r) for i, r in enumerate(raw.get("replication", ()))
        )
        archiving = tuple(self._archiving(i, a) for i, a in enumerate(raw.get("archiving", ())))
        self._unique("replication", [r.database for r in replication], "database")
        self._unique("archiving", [a.database for a in archiving], "database")
        waivers = tuple(self._waiver(i, w) for i, w in enumerate(raw.get("waivers", [])))
        webhooks = {
            name: ch["webhook"]
            for name, ch in raw.get("alerts", {}).get("channels", {}).items()
            if "webhook" in ch
        }
        self.secrets.update(v for v in webhooks.values() if v)
        alerts = parse_alerts(
            raw.get("alerts", {}), raw.get("healthChecks", []), self.fail, self.duration
        )
        self.secrets.update(c.target for c in alerts.channels.values() if c.target)
        capacity = raw.get("capacity", {})
        from pytest_maintcheck.config_operations import build_operations

        operations = build_operations(self, raw)
        from pytest_maintcheck.change_config import build_change_management

        change_management = build_change_management(self, raw)
        return Config(
            path=self.path,
            version=raw["version"],
            system=raw.get("system", ""),
            environment=raw.get("environment", ""),
            databases=databases,
            health_checks=health,
            database_maintenance=maint,
            backups=backups,
            certificates=certs,
            access_review=self._access_review(raw.get("accessReview")),
            security_monitoring=self._security(raw.get("securityMonitoring")),
            dependencies=deps,
            policies=policies,
            site_checks=site_checks,
            metrics=metrics,
            replication=replication,
            archiving=archiving,
            capacity_days_to_full=self.threshold(
                ("capacity", "daysToFull"),
                "daysToFull",
                capacity.get("daysToFull", {"warn": 90, "fail": 30}),
            ),
            probing=Probing(
                raw.get("probing", {}).get("connectionsPerHost", Probing.connections_per_host),
                raw.get("probing", {}).get("concurrency", Probing.concurrency),
            ),
            capacity_trend_factor=float(capacity.get("trendFactor", 1.5)),
            history=self._history(raw.get("history", {})),
            waivers=waivers,
            alert_webhooks=webhooks,
            owners=dict(raw.get("owners", {})),
            prometheus_textfile=self.file(raw.get("reporting", {}).get("prometheusTextfile")),
            signing=self._signing(raw.get("signing")),
            alerts=alerts,
            maintenance_windows=parse_windows(raw.get("maintenanceWindows", []), self.fail),
            secrets=frozenset(s for s in self.secrets if len(s) >= 4),
            public_names=frozenset(self.reader.public),
            **operations,
            change_management=change_management,
        )

    def _signing(self, raw: dict[str, Any] | None) -> Signing | None:
        if raw is None:
            return None
        key = "keyFile" if "keyFile" in raw else "keyEnv"
        line = self.reader.line(("signing", key))
        return Signing(self.file(raw.get("keyFile")), raw.get("keyEnv"), line)

    def _history(self, h: dict[str, Any]) -> HistorySettings:
        dsn = h.get("dsn")
        if dsn is not None and dsn_password(dsn):
            written = dsn_password(self.reader.written.get(("history", "dsn"), "")) or ""
            if "$" not in written:
                raise self.fail(
                    ("history", "dsn"),
                    "a password is written in the DSN; put it in PGPASSWORD, ~/.pgpass or "
                    "${ENV_VAR} instead, so it never sits in the config",
                )
            self.secrets.add(dsn_password(dsn) or "")
        window = self.duration(("history", "window"), h.get("window"), 30 * 86400.0)
        if window < 86400:
            raise self.fail(("history", "window"), "the history window must be 1d or longer")
        return HistorySettings(dsn=dsn, window=window)

    def _unique(self, section: str, names: list[str], key: str) -> None:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise self.fail((section, i, key), f"{name!r} is used twice; names must be unique")
            seen.add(name)

    def _database(self, name: str, d: dict[str, Any]) -> Database:
        path: Path_ = ("databases", name, "dsn")
        dsn = d["dsn"]
        password = dsn_password(dsn)
        if password:
            written = dsn_password(self.reader.written.get(path, "")) or ""
            if "$" not in written:  # in the file, not from ${VAR}
                raise self.fail(
                    path,
                    "a password (password=, sslpassword=, user:password@) is written in the "
                    "DSN; put it in PGPASSWORD, ~/.pgpass or ${ENV_VAR} instead, so it never "
                    "sits in the config",
                )
            self.secrets.add(password)
        return Database(
            name,
            dsn,
            self.duration(("databases", name, "connectTimeout"), d.get("connectTimeout"), 10.0),
            self.duration(("databases", name, "statementTimeout"), d.get("statementTimeout"), 30.0),
        )

    def _health(self, i: int, h: dict[str, Any]) -> HealthCheck:
        path: Path_ = ("healthChecks", i)
        if ("endpoint" in h) == ("endpoints" in h):
            raise self.fail(path, "give exactly one of endpoint or endpoints")
        endpoints = tuple(h["endpoints"]) if "endpoints" in h else (h["endpoint"],)
        kind = h["type"]
        for j, endpoint in enumerate(endpoints):
            where: Path_ = (*path, "endpoints", j) if "endpoints" in h else (*path, "endpoint")
            if kind in ("api", "authentication"):
                parts = urlsplit(endpoint)
                shown = redact_url(endpoint)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise self.fail(where, f"expected an http(s) URL, got {shown!r}")
                try:
                    parts.port  # noqa: B018 (reading it validates it)
                except ValueError:
                    raise self.fail(where, f"the port in {shown!r} is not 1-65535") from None
                self._refuse_written_credentials(where)
            elif kind == "database":
                if "://" not in endpoint and "=" not in endpoint:
                    self.database_ref(where, endpoint)
                elif dsn_password(endpoint):
                    raise self.fail(where, "a password is written in the DSN; use PGPASSWORD")
        defaults = "storage" if kind == "storage" else "health"
        alerts = h.get("alerts", {})
        return HealthCheck(
            service=h["service"],
            type=kind,
            endpoints=endpoints,
            interval=float(h.get("interval", 60)),
            samples=int(h.get("samples", 1 if kind in ("database", "storage") else 3)),
            timeout=self.duration((*path, "timeout"), h.get("timeout"), 5.0),
            ca_file=self.file(h.get("caFile")),
            severity=h.get("severity"),
            thresholds=self.thresholds((*path, "thresholds"), h.get("thresholds"), defaults),
            alert_channels=tuple(alerts.get("channels", ())),
            escalation=tuple(alerts.get("escalation", ())),
            version_pointer=self._version_pointer(path, kind, h.get("versionPointer")),
        )

    def _version_pointer(self, path: Path_, kind: str, pointer: str | None) -> str | None:
        if pointer is not None and kind != "api":
            raise self.fail((*path, "versionPointer"), "only an api health check has a body")
        return pointer

    def _refuse_written_credentials(self, where: Path_) -> None:
        """A password or token written into a URL in the file is refused, as in a DSN."""
        written = urlsplit(self.reader.written.get(where, ""))
        if written.password and "$" not in written.password:
            raise self.fail(
                where,
                "a password is written in the URL (user:password@); put it in an environment "
                "variable and write ${VAR} instead, so it never sits in the config",
            )
        for given in (written.query, written.fragment):
            for part in given.split("&"):
                key, _, value = part.partition("=")
                if value and "$" not in value and is_credential_key(key):
                    raise self.fail(
                        where,
                        f"a credential is written in the URL ({key}=...); put it in an "
                        "environment variable and write ${VAR} instead, so it never sits in "
                        "the config",
                    )

    def _maintenance(self, i: int, m: dict[str, Any]) -> DatabaseMaintenanceTarget:
        path: Path_ = ("databaseMaintenance", i)
        given = dict(m.get("thresholds", {}))
        min_dead = int(given.pop("minDeadTuples", 1000))
        return DatabaseMaintenanceTarget(
            database=self.database_ref((*path, "database"), m["database"]),
            min_dead_tuples=min_dead,
            timeout=self.duration((*path, "timeout"), m.get("timeout"), 30.0),
            severity=m.get("severity"),
            thresholds=self.thresholds((*path, "thresholds"), given, "database"),
            repair_timeout=self.duration((*path, "repairTimeout"), m.get("repairTimeout"), 900.0),
            lock_timeout=self.duration((*path, "lockTimeout"), m.get("lockTimeout"), 5.0),
        )

    def _backup(self, i: int, b: dict[str, Any]) -> Backup:
        path: Path_ = ("backups", i)
        database = b.get("database")
        if database is not None:
            self.database_ref((*path, "database"), database)
        restore = None
        if "restoreTest" in b and b["kind"] in PHYSICAL_KINDS:
            restore = self._physical_restore((*path, "restoreTest"), b["restoreTest"])
        elif "restoreTest" in b:
            r = b["restoreTest"]
            if b["kind"] != "pg_dump":
                raise self.fail((*path, "restoreTest"), "restoreTest needs kind: pg_dump")
            for key in ("targetTime", "dbname", "user", "scratchDir"):
                if key in r:
                    raise self.fail((*path, "restoreTest", key), f"{key} is for physical backups")
            target = r.get("target", database)
            if target is None:
                raise self.fail((*path, "restoreTest", "target"), "give target (a databases key)")
            self.database_ref((*path, "restoreTest", "target"), target)
            restore = RestoreTest(
                target=target,
                max_duration=self.duration(
                    (*path, "restoreTest", "maxDuration"), r.get("maxDuration"), 1800.0
                ),
                expect_tables=tuple(r.get("expectTables", ())),
                min_rows=tuple(sorted(r.get("minRows", {}).items())),
                jobs=int(r.get("jobs", 2)),
            )
        rotation = Rotation(**b["rotation"]) if "rotation" in b else None
        return Backup(
            name=b["name"],
            kind=b["kind"],
            location=self.file(b.get("location")) or Path(),
            pattern=b.get("pattern", ""),
            database=database,
            max_age=self.duration((*path, "maxAge"), b.get("maxAge"), 26 * 3600.0),
            checksums=b.get("checksums"),
            size_change=self.threshold(
                (*path, "sizeChange"), "sizeChange", b.get("sizeChange", DEFAULT_SIZE_CHANGE)
            ),
            restore_test=restore,
            rotation=rotation,
            severity=b.get("severity"),
            stanza=b.get("stanza"),
            tool_config=self.file(b.get("config")),
            server=b.get("server"),
            timeout=self.duration((*path, "timeout"), b.get("timeout"), 120.0),
        )

    def _physical_restore(self, path: Path_, r: dict[str, Any]) -> RestoreTest:
        """A pgbackrest/barman restoreTest: a scratch data directory, never a databases target."""
        if "target" in r or "jobs" in r:
            key = "target" if "target" in r else "jobs"
            raise self.fail(
                (*path, key), f"{key} is for pg_dump; a physical restore gets its own server"
            )
        when = r.get("targetTime", "latest")
        target_time = None
        if when != "latest":
            try:
                target_time = datetime.fromisoformat(str(when))
            except ValueError:
                target_time = None
            if target_time is None or target_time.tzinfo is None:
                raise self.fail(
                    (*path, "targetTime"),
                    "expected latest or a time with its zone like 2026-05-01T03:00:00Z, "
                    f"got {when!r}",
                )
        return RestoreTest(
            max_duration=self.duration((*path, "maxDuration"), r.get("maxDuration"), 1800.0),
            expect_tables=tuple(r.get("expectTables", ())),
            min_rows=tuple(sorted(r.get("minRows", {}).items())),
            target_time=target_time,
            dbname=r.get("dbname"),
            user=r.get("user"),
            scratch_dir=self.file(r.get("scratchDir")),
        )

    def _replication(self, i: int, r: dict[str, Any]) -> ReplicationTarget:
        path: Path_ = ("replication", i)
        standbys = r.get("standbys")
        names = tuple(standbys) if isinstance(standbys, list) else ()
        return ReplicationTarget(
            database=self.database_ref((*path, "database"), r["database"]),
            standbys=len(names) if names else standbys,
            standby_names=names,
            replay_lag=self.threshold(
                (*path, "replayLag"), "replayLag", r.get("replayLag", {"warn": "30s", "fail": "5m"})
            ),
            replay_lag_bytes=self.threshold(
                (*path, "replayLagBytes"),
                "replayLagBytes",
                r.get("replayLagBytes", {"warn": "1GB", "fail": "16GB"}),
            ),
            slot_retained=self.threshold(
                (*path, "slotRetained"),
                "slotRetained",
                r.get("slotRetained", {"warn": "5GB", "fail": "20GB"}),
            ),
            severity=r.get("severity"),
        )

    def _archiving(self, i: int, a: dict[str, Any]) -> ArchivingTarget:
        path: Path_ = ("archiving", i)
        return ArchivingTarget(
            database=self.database_ref((*path, "database"), a["database"]),
            archive_max_age=self.threshold(
                (*path, "archiveMaxAge"), "archiveMaxAge", a.get("archiveMaxAge", "15m")
            ),
            severity=a.get("severity"),
        )

    def _certificate(self, i: int, c: dict[str, Any]) -> Certificate:
        path: Path_ = ("certificates", i)
        if ("host" in c) == ("file" in c):
            raise self.fail(path, "give exactly one of host (host:port) or file (a PEM file)")
        host, port = None, 443
        if "host" in c:
            host, _, port_text = c["host"].rpartition(":")
            if not host or not port_text.isdigit():
                host, port_text = c["host"], "443"
            host = host.strip("[]")
            port = int(port_text)
            if not 0 < port < 65536:
                raise self.fail((*path, "host"), f"port {port} is out of range")
        return Certificate(
            name=c["name"],
            host=host,
            port=port,
            file=self.file(c.get("file")),
            server_name=c.get("serverName"),
            ca_file=self.file(c.get("caFile")),
            timeout=self.duration((*path, "timeout"), c.get("timeout"), 10.0),
            severity=c.get("severity"),
            thresholds=self.thresholds((*path, "thresholds"), c.get("thresholds"), "certificate"),
            public_ca=c.get("publicCa"),
        )

    def _access_review(self, a: dict[str, Any] | None) -> AccessReview | None:
        if a is None:
            return None
        sources = []
        for i, s in enumerate(a.get("sources", [])):
            where: Path_ = ("accessReview", "sources", i)
            if ("postgres" in s) == ("file" in s):
                raise self.fail(where, "give exactly one of postgres (a databases key) or file")
            if "postgres" in s:
                self.database_ref((*where, "postgres"), s["postgres"])
            sources.append(AccessSource(s["name"], s.get("postgres"), self.file(s.get("file"))))
        return AccessReview(
            sources=tuple(sources),
            roster=self.file(a.get("roster")),
            inactive=self.threshold(
                ("accessReview", "inactive"),
                "inactive",
                a.get("inactive", {"warn": "60d", "fail": "90d"}),
            ),
            privileged_roles=tuple(a.get("privilegedRoles", ())),
            approved_privileged=tuple(a.get("approvedPrivileged", ())),
            require_mfa=bool(a.get("requireMfa", False)),
            severity=a.get("severity"),
            service_accounts=self._service_accounts(a.get("serviceAccounts", [])),
        )

    def _service_accounts(self, declared: list[dict[str, Any]]) -> tuple[ServiceAccount, ...]:
        seen: set[str] = set()
        out = []
        for i, s in enumerate(declared):
            key = s["name"].strip().casefold()
            if key in seen:
                raise self.fail(
                    ("accessReview", "serviceAccounts", i, "name"),
                    f"{s['name']!r} is declared twice",
                )
            seen.add(key)
            out.append(ServiceAccount(s["name"].strip(), s["owner"].strip(), s["justification"]))
        return tuple(out)

    def _security(self, s: dict[str, Any] | None) -> SecurityMonitoring | None:
        if s is None:
            return None
        path: Path_ = ("securityMonitoring",)
        off = s.get("offHours")
        if off is not None:
            tz = off.get("timezone", "UTC")
            try:
                from zoneinfo import ZoneInfo

                ZoneInfo(tz)
            except (ValueError, KeyError, OSError):
                raise self.fail(
                    (*path, "offHours", "timezone"), f"unknown time zone {tz!r}"
                ) from None
        sessions = None
        if "sessions" in s:
            se = s["sessions"]
            sessions = SessionPolicy(
                database=self.database_ref((*path, "sessions", "database"), se["database"]),
                max_idle=self.duration((*path, "sessions", "maxIdle"), se.get("maxIdle"), 900.0),
                max_lifetime=self.duration(
                    (*path, "sessions", "maxLifetime"), se.get("maxLifetime"), 43200.0
                ),
                query=se.get("query"),
            )
        return SecurityMonitoring(
            auth_log=self.file(s.get("authLog", {}).get("file")),
            window=self.duration((*path, "window"), s.get("window"), 86400.0),
            failed_logins=self.thresholds(
                (*path, "failedLogins"), s.get("failedLogins"), "failedLogins"
            ),
            off_hours=OffHours(off["start"], off["end"], off.get("timezone", "UTC"))
            if off
            else None,
            sessions=sessions,
        )

    def _policy(self, i: int, p: dict[str, Any]) -> Policy:
        path: Path_ = ("policies", i)
        last = None
        if "lastReviewed" in p:
            last = self._date((*path, "lastReviewed"), p["lastReviewed"])
        return Policy(
            p["name"],
            self.file(p["file"]) or Path(),
            self.duration((*path, "reviewEvery"), p["reviewEvery"], 365 * 86400.0),
            last,
        )

    def _site_check(self, key: str, entry: dict[str, Any]) -> tuple[SiteTarget, ...]:
        path: Path_ = ("siteChecks", key)
        if key in CHECKS:
            raise self.fail(
                path,
                f"{key!r} is a bundled check ({CHECKS[key].title}); a site check needs a key "
                "of its own (its thresholds live in the bundled check's section)",
            )
        targets = []
        for i, t in enumerate(entry["targets"]):
            where: Path_ = (*path, "targets", i)
            if "database" in t:
                self.database_ref((*where, "database"), t["database"])
            written = tuple(
                WrittenThreshold(name, raw, self.reader.line((*where, "thresholds", name)))
                for name, raw in t.get("thresholds", {}).items()
            )
            targets.append(
                SiteTarget(
                    check=key,
                    name=t["name"],
                    severity=t.get("severity"),
                    database=t.get("database"),
                    timeout=self.duration((*where, "timeout"), t.get("timeout"), 30.0),
                    params=dict(t.get("params", {})),
                    written=written,
                    line=self.reader.line(where),
                    folder=self.base,
                )
            )
        self._unique_in(path, "targets", [t.name for t in targets])
        return tuple(targets)

    def _metric(self, i: int, m: dict[str, Any], databases: Mapping[str, Database]) -> MetricCheck:
        path: Path_ = ("metrics", i)
        if ("sql" in m) == ("http" in m):
            raise self.fail(path, "give exactly one source: sql (with database) or http")
        for key, needs in (("database", "sql"), ("pointer", "http"), ("caFile", "http")):
            if key in m and needs not in m:
                raise self.fail((*path, key), f"{key} goes with {needs}")
        timeout = 5.0
        if "sql" in m:
            if "database" not in m:
                raise self.fail((*path, "sql"), "sql needs database (a databases key)")
            self.database_ref((*path, "database"), m["database"])
            timeout = databases[m["database"]].statement_timeout
        else:
            self._url((*path, "http"), m["http"])
        definition = Metric(
            m["name"],
            m.get("unit", "count"),
            higher_is_worse=m["direction"] == "higher-is-worse",
            label=m.get("title", m["name"]),
        )
        threshold = self.threshold((*path, "threshold"), m["name"], m["threshold"], definition)
        assert threshold is not None  # the schema requires it
        return MetricCheck(
            name=m["name"],
            suite=m["suite"],
            threshold=threshold,
            title=m.get("title", ""),
            database=m.get("database"),
            sql=m.get("sql"),
            http=m.get("http"),
            pointer=m.get("pointer", ""),
            ca_file=self.file(m.get("caFile")),
            timeout=self.duration((*path, "timeout"), m.get("timeout"), timeout),
            severity=m.get("severity"),
            action=m.get("action"),
        )

    def _url(self, path: Path_, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.fail(path, f"expected an http(s) URL, got {url!r}")
        try:
            parts.port  # noqa: B018 (reading it validates it)
        except ValueError:
            raise self.fail(path, f"the port in {url!r} is not 1-65535") from None

    def _unique_in(self, path: Path_, section: str, names: list[str]) -> None:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise self.fail(
                    (*path, section, i, "name"), f"{name!r} is used twice; names must be unique"
                )
            seen.add(name)

    def _waiver(self, i: int, w: dict[str, Any]) -> Waiver:
        return Waiver(
            w["check"], w["justification"], self._date(("waivers", i, "expires"), w["expires"])
        )

    def _date(self, path: Path_, text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise self.fail(path, f"expected a date like 2027-01-31, got {text!r}") from None


# ---------------------------------------------------------------------------- secrets

_MASK = "***"
# libpq's parameters that hold a secret (PostgreSQL 18 adds oauth_client_secret)
_LIBPQ_SECRETS = r"(?:password|sslpassword|oauth_client_secret)"
_DSN_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_DSN_KV_PASSWORD = re.compile(
    rf"(?P<pre>(?<![\w-]){_LIBPQ_SECRETS}\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]*", re.I)
_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# query keys that carry a credential: the key, or its last part after _ or -, is one of these
CREDENTIAL_QUERY_KEYS = frozenset(
    {
        "token", "key", "apikey", "secret", "password", "passwd", "pwd", "pass", "sig",
        "signature", "auth", "authorization", "credential", "credentials", "sas", "session",
        "sessionid", "code", "sslpassword",
    }
)  # fmt: skip


def is_credential_key(key: str) -> bool:
    """token, access_token, api_key, X-Amz-Signature, client_secret ...: a credential."""
    name = key.strip().lower()
    return name in CREDENTIAL_QUERY_KEYS or re.split(r"[_-]", name)[-1] in CREDENTIAL_QUERY_KEYS


def _in_secret_field(before: str, text: str) -> bool:
    """Whether a ${VAR} that starts after ``before`` (in ``text``) sits where a credential goes:
    a URL's userinfo, query or fragment, or a libpq secret parameter."""
    if re.search(rf"(?<![\w-]){_LIBPQ_SECRETS}\s*=\s*'?$", before, re.I):
        return True
    scheme = before.find("://")
    if scheme < 0:
        return False
    after_scheme = before[scheme + 3 :]
    if "?" in after_scheme or "#" in after_scheme:
        return True
    # still in the authority, and an @ follows before the path: userinfo
    return "/" not in after_scheme and "@" in text[len(before) :].split("/")[0]


def redact_url(url: str) -> str:
    """A URL safe to show: the password of its userinfo (all of it for http) and every
    query and key=value fragment value become ***."""
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + _MASK
        elif scheme.lower() in _WEB_SCHEMES:
            userinfo = _MASK  # a bare user part of a web URL is usually a token
        authority = userinfo + "@" + host
    tail, hash_, fragment = tail.partition("#")
    path, question, query = tail.partition("?")
    if question:
        query = _mask_values(query)
    if hash_ and "=" in fragment:
        fragment = _mask_values(fragment)
    return f"{scheme}://{authority}{path}{question}{query}{hash_}{fragment}"


def _mask_values(query: str) -> str:
    parts = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        parts.append(f"{key}={_MASK if value else ''}" if eq else (_MASK if part else ""))
    return "&".join(parts)


def redact_urls(text: str) -> str:
    """Every URL in a text with its credentials and query values masked (see redact_url)."""
    return _URL.sub(_redact_match, text) if "://" in text else text


def _redact_match(match: re.Match[str]) -> str:
    """Punctuation that ends a sentence after a URL ('at http://h/x?a=1: start it') stays."""
    url = match.group(0)
    bare = url.rstrip(".,;:!?)]}")
    return redact_url(bare) + url[len(bare) :]


def dsn_password(dsn: str) -> str | None:
    for pattern in (_DSN_URL_PASSWORD, _DSN_KV_PASSWORD):
        match = pattern.search(dsn)
        if match and match.group("pw"):
            return match.group("pw").strip("'")
    return None


def redact_dsn(text: str) -> str:
    """A DSN with any password replaced, safe to print."""
    text = _DSN_URL_PASSWORD.sub(lambda m: f"{m.group('pre')}:***@", text)
    return _DSN_KV_PASSWORD.sub(lambda m: f"{m.group('pre')}***", text)


def secret_values(environ: Mapping[str, str]) -> Iterator[str]:
    """Secrets libpq and our config read from the environment: never to be printed."""
    for name, value in environ.items():
        if value and len(value) >= 4 and (name == "PGPASSWORD" or _SECRET_KEYS.search(name)):
            yield value
