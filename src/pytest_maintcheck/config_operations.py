"""Config sections for configuration review, host resources, pooling, patches and encryption.

Frozen objects built by ``config.loading._Builder`` (which validates the schema first); kept
here so the sections of issue 14 do not crowd the config package. Every expected value has a
default the config may override per entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_maintcheck.config import Thresholds

if TYPE_CHECKING:
    from pytest_maintcheck.config import Path_
    from pytest_maintcheck.config.loading import _Builder

# ssl_min_protocol_version's values, oldest first
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# log_statement's values, least logged first: "ddl" or more logs schema changes
LOG_STATEMENT_LEVELS = ("none", "ddl", "mod", "all")
_MINOR = re.compile(r"^\d+(\.\d+)?$")

OPERATIONS_THRESHOLDS: dict[str, dict[str, object]] = {
    "host": {
        "cpuLoad": {"warn": 1.0, "fail": 2.0},  # 5-minute load average per core
        "memory": {"warn": 0.85, "fail": 0.95},
        "swap": {"warn": 0.5, "fail": 0.8},
        "usage": {"warn": 0.8, "fail": 0.9},
        "inodeUsage": {"warn": 0.8, "fail": 0.9},
    },
    "pooling": {
        "clientsWaiting": {"warn": 1, "fail": 20},
        "maxWait": {"warn": "1s", "fail": "10s"},
        "clientConnections": {"warn": 0.8, "fail": 0.95},
        "poolUsage": {"warn": 0.9},
        "serverConnections": {"warn": 0.8, "fail": 1.0},
    },
    "allocation": {
        "sharedBuffers": {"warn": 0.4, "fail": 0.6},
        "memoryCommitment": {"warn": 1.0, "fail": 2.0},
        "effectiveCache": {"warn": 1.0},
    },
}


@dataclass(frozen=True)
class ConfigReview:
    """What one database's PostgreSQL settings are expected to be."""

    database: str
    ssl: bool = True
    ssl_min_protocol_version: str = "TLSv1.2"
    password_encryption: str = "scram-sha-256"  # noqa: S105 (a hash method)
    log_connections: bool = True
    log_disconnections: bool = True
    log_statement: str = "ddl"  # at least
    require_pgaudit: bool = False
    data_checksums: bool = True
    approved_superusers: tuple[str, ...] = ("postgres",)
    public_schema_create: bool = False  # may PUBLIC create objects in the public schema
    host: str | None = None  # the hosts entry this database runs on (resource allocation)
    allocation: Thresholds = field(default_factory=Thresholds)
    severity: str | None = None


@dataclass(frozen=True)
class Host:
    """A machine whose CPU, memory, swap and filesystems are watched."""

    name: str
    local: bool = False
    node_exporter: str | None = None
    ca_file: Path | None = None
    timeout: float = 10.0
    exclude_mounts: tuple[str, ...] = ()  # fnmatch patterns of mount points to leave out
    thresholds: Thresholds = field(default_factory=Thresholds)
    severity: str | None = None


@dataclass(frozen=True)
class Pooler:
    """A PgBouncer whose admin console is read (as a stats_users account)."""

    name: str
    dsn: str
    database: str | None = None  # the databases entry behind it, for max_connections
    connect_timeout: float = 10.0
    timeout: float = 10.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    severity: str | None = None


@dataclass(frozen=True)
class SecurityPatches:
    """Installed OS packages against offline OSV advisories; the server's minor release."""

    advisories: Path | None = None
    ecosystem: str | None = None  # "Debian:12", "Ubuntu:22.04"; None: from /etc/os-release
    reboot_flag: Path = Path("/var/run/reboot-required")
    minimum_versions: Mapping[str, str] | None = None  # PostgreSQL major -> lowest minor
    severity: str | None = None


@dataclass(frozen=True)
class Exemption:
    target: str
    justification: str


@dataclass(frozen=True)
class AtRest:
    """A backups entry whose files must be encrypted (age or gpg), or a pgBackRest config."""

    name: str
    backup: str | None = None
    envelope: str = "any"  # age | gpg | any
    pgbackrest_config: Path | None = None


@dataclass(frozen=True)
class Encryption:
    exempt: tuple[Exemption, ...] = ()
    at_rest: tuple[AtRest, ...] = ()
    severity: str | None = None

    def exemption(self, target: str) -> Exemption | None:
        return next((e for e in self.exempt if e.target == target), None)


def build_operations(b: _Builder, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Config's fields for these sections: config_review, hosts, pooling, security_patches,
    encryption."""
    hosts = tuple(_host(b, i, h) for i, h in enumerate(raw.get("hosts", [])))
    b._unique("hosts", [h.name for h in hosts], "name")
    reviews = tuple(
        _review(b, i, r, {h.name for h in hosts}) for i, r in enumerate(raw.get("configReview", []))
    )
    b._unique("configReview", [r.database for r in reviews], "database")
    pooling = tuple(_pooler(b, i, p) for i, p in enumerate(raw.get("pooling", [])))
    b._unique("pooling", [p.name for p in pooling], "name")
    return {
        "config_review": reviews,
        "hosts": hosts,
        "pooling": pooling,
        "security_patches": _patches(b, raw.get("securityPatches")),
        "encryption": _encryption(b, raw.get("encryption"), raw),
    }


def _review(b: _Builder, i: int, r: dict[str, Any], hosts: set[str]) -> ConfigReview:
    path: Path_ = ("configReview", i)
    host = r.get("host")
    if host is not None and host not in hosts:
        raise b.fail((*path, "host"), f"no hosts entry named {host!r}")
    return ConfigReview(
        database=b.database_ref((*path, "database"), r["database"]),
        ssl=bool(r.get("ssl", True)),
        ssl_min_protocol_version=r.get("sslMinProtocolVersion", "TLSv1.2"),
        password_encryption=r.get("passwordEncryption", "scram-sha-256"),
        log_connections=bool(r.get("logConnections", True)),
        log_disconnections=bool(r.get("logDisconnections", True)),
        log_statement=r.get("logStatement", "ddl"),
        require_pgaudit=bool(r.get("requirePgaudit", False)),
        data_checksums=bool(r.get("dataChecksums", True)),
        approved_superusers=tuple(r.get("approvedSuperusers", ("postgres",))),
        public_schema_create=bool(r.get("publicSchemaCreate", False)),
        host=host,
        allocation=_thresholds(b, (*path, "allocation"), r.get("allocation"), "allocation"),
        severity=r.get("severity"),
    )


def _thresholds(b: _Builder, path: Path_, given: Any, defaults: str) -> Thresholds:
    merged: dict[str, object] = dict(OPERATIONS_THRESHOLDS[defaults])
    merged.update(given or {})
    items = [b.threshold((*path, name), name, value) for name, value in merged.items()]
    return Thresholds(tuple(t for t in items if t is not None))


def _host(b: _Builder, i: int, h: dict[str, Any]) -> Host:
    path: Path_ = ("hosts", i)
    local = bool(h.get("local", False))
    url = h.get("nodeExporter")
    if local == (url is not None):
        raise b.fail(path, "give exactly one of local: true or nodeExporter (a /metrics URL)")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise b.fail((*path, "nodeExporter"), f"expected an http(s) URL, got {url!r}")
        b._refuse_written_credentials((*path, "nodeExporter"))
    return Host(
        name=h["name"],
        local=local,
        node_exporter=url,
        ca_file=b.file(h.get("caFile")),
        timeout=b.duration((*path, "timeout"), h.get("timeout"), 10.0),
        exclude_mounts=tuple(h.get("excludeMounts", ())),
        thresholds=_thresholds(b, (*path, "thresholds"), h.get("thresholds"), "host"),
        severity=h.get("severity"),
    )


def _pooler(b: _Builder, i: int, p: dict[str, Any]) -> Pooler:
    from pytest_maintcheck.config import dsn_password

    path: Path_ = ("pooling", i)
    if dsn_password(b.reader.written.get((*path, "dsn"), "")):
        raise b.fail((*path, "dsn"), "a password is written in the DSN; use PGPASSWORD or .pgpass")
    database = p.get("database")
    if database is not None:
        b.database_ref((*path, "database"), database)
    return Pooler(
        name=p["name"],
        dsn=p["dsn"],
        database=database,
        connect_timeout=b.duration((*path, "connectTimeout"), p.get("connectTimeout"), 10.0),
        timeout=b.duration((*path, "timeout"), p.get("timeout"), 10.0),
        thresholds=_thresholds(b, (*path, "thresholds"), p.get("thresholds"), "pooling"),
        severity=p.get("severity"),
    )


def _patches(b: _Builder, s: dict[str, Any] | None) -> SecurityPatches | None:
    if s is None:
        return None
    path: Path_ = ("securityPatches",)
    minimum = s.get("minimumVersions")
    for major, version in (minimum or {}).items():
        if not str(major).isdigit() or not _MINOR.match(str(version)):
            raise b.fail(
                (*path, "minimumVersions", major),
                f'expected a major and its lowest minor release, like "15": "15.8"; '
                f"got {major}: {version}",
            )
        if str(version).split(".")[0] != str(major):
            raise b.fail((*path, "minimumVersions", major), f"{version} is not a {major} release")
    return SecurityPatches(
        advisories=b.file(s.get("advisories")),
        ecosystem=s.get("ecosystem"),
        reboot_flag=b.file(s.get("rebootFlag")) or Path("/var/run/reboot-required"),
        minimum_versions={str(k): str(v) for k, v in minimum.items()} if minimum else None,
        severity=s.get("severity"),
    )


def _encryption(b: _Builder, e: dict[str, Any] | None, raw: Mapping[str, Any]) -> Encryption | None:
    if e is None:
        return None
    path: Path_ = ("encryption",)
    backups = {x.get("name") for x in raw.get("backups", [])}
    at_rest = []
    for i, a in enumerate(e.get("atRest", [])):
        where: Path_ = (*path, "atRest", i)
        if ("backup" in a) == ("pgbackrestConfig" in a):
            raise b.fail(where, "give exactly one of backup (a backups name) or pgbackrestConfig")
        if "backup" in a and a["backup"] not in backups:
            raise b.fail((*where, "backup"), f"no backups entry named {a['backup']!r}")
        at_rest.append(
            AtRest(
                name=a.get("backup") or a.get("name", "pgbackrest"),
                backup=a.get("backup"),
                envelope=a.get("envelope", "any"),
                pgbackrest_config=b.file(a.get("pgbackrestConfig")),
            )
        )
    return Encryption(
        exempt=tuple(Exemption(x["target"], x["justification"]) for x in e.get("exempt", [])),
        at_rest=tuple(at_rest),
        severity=e.get("severity"),
    )
