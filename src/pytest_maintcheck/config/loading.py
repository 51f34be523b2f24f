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
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_maintcheck.catalogue import CHECKS
from pytest_maintcheck.notify import parse_alerts
from pytest_maintcheck.units import UnitError, parse_duration

if TYPE_CHECKING:
    import jsonschema
    import yaml

from pytest_maintcheck.config.defaults import DEFAULT_SIZE_CHANGE, DEFAULT_THRESHOLDS, DEFAULTS
from pytest_maintcheck.config.model import (
    PHYSICAL_KINDS,
    AccessReview,
    AccessSource,
    ArchivingTarget,
    Backup,
    Certificate,
    Config,
    ConfigError,
    Database,
    DatabaseMaintenanceTarget,
    Dependency,
    HealthCheck,
    HistorySettings,
    MetricCheck,
    OffHours,
    Path_,
    Policy,
    Probing,
    ReplicationTarget,
    RestoreTest,
    Rotation,
    SecurityMonitoring,
    ServiceAccount,
    SessionPolicy,
    Signing,
    SiteTarget,
    Thresholds,
    Waiver,
    WrittenThreshold,
)
from pytest_maintcheck.redact import (
    _MASK,
    dsn_password,
    in_secret_field,
    is_credential_key,
    redact_dsn,
    redact_url,
    redact_urls,
)
from pytest_maintcheck.verdict import Metric, Threshold, ThresholdError
from pytest_maintcheck.windows import parse_windows

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
_REPLICATION = DEFAULT_THRESHOLDS["replication"]


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
            if value and (secret_name or in_secret_field(text[: match.start()], text)):
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
            capacity_trend_factor=float(
                capacity.get("trendFactor", DEFAULTS.capacity_trend_factor)
            ),
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
        window = self.duration(("history", "window"), h.get("window"), DEFAULTS.history_window)
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
            self.duration(
                ("databases", name, "connectTimeout"),
                d.get("connectTimeout"),
                DEFAULTS.connect_timeout,
            ),
            self.duration(
                ("databases", name, "statementTimeout"),
                d.get("statementTimeout"),
                DEFAULTS.statement_timeout,
            ),
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
            interval=float(h.get("interval", DEFAULTS.health_interval)),
            samples=int(h.get("samples", DEFAULTS.health_samples_for(kind))),
            timeout=self.duration((*path, "timeout"), h.get("timeout"), DEFAULTS.health_timeout),
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
        min_dead = int(given.pop("minDeadTuples", DEFAULTS.min_dead_tuples))
        return DatabaseMaintenanceTarget(
            database=self.database_ref((*path, "database"), m["database"]),
            min_dead_tuples=min_dead,
            timeout=self.duration(
                (*path, "timeout"), m.get("timeout"), DEFAULTS.maintenance_timeout
            ),
            severity=m.get("severity"),
            thresholds=self.thresholds((*path, "thresholds"), given, "database"),
            repair_timeout=self.duration(
                (*path, "repairTimeout"), m.get("repairTimeout"), DEFAULTS.repair_timeout
            ),
            lock_timeout=self.duration(
                (*path, "lockTimeout"), m.get("lockTimeout"), DEFAULTS.lock_timeout
            ),
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
                    (*path, "restoreTest", "maxDuration"),
                    r.get("maxDuration"),
                    DEFAULTS.restore_max_duration,
                ),
                expect_tables=tuple(r.get("expectTables", ())),
                min_rows=tuple(sorted(r.get("minRows", {}).items())),
                jobs=int(r.get("jobs", DEFAULTS.restore_jobs)),
            )
        rotation = Rotation(**b["rotation"]) if "rotation" in b else None
        return Backup(
            name=b["name"],
            kind=b["kind"],
            location=self.file(b.get("location")) or Path(),
            pattern=b.get("pattern", ""),
            database=database,
            max_age=self.duration((*path, "maxAge"), b.get("maxAge"), DEFAULTS.backup_max_age),
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
            timeout=self.duration(
                (*path, "timeout"), b.get("timeout"), DEFAULTS.backup_tool_timeout
            ),
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
            max_duration=self.duration(
                (*path, "maxDuration"), r.get("maxDuration"), DEFAULTS.restore_max_duration
            ),
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
                (*path, "replayLag"), "replayLag", r.get("replayLag", _REPLICATION["replayLag"])
            ),
            replay_lag_bytes=self.threshold(
                (*path, "replayLagBytes"),
                "replayLagBytes",
                r.get("replayLagBytes", _REPLICATION["replayLagBytes"]),
            ),
            slot_retained=self.threshold(
                (*path, "slotRetained"),
                "slotRetained",
                r.get("slotRetained", _REPLICATION["slotRetained"]),
            ),
            severity=r.get("severity"),
        )

    def _archiving(self, i: int, a: dict[str, Any]) -> ArchivingTarget:
        path: Path_ = ("archiving", i)
        return ArchivingTarget(
            database=self.database_ref((*path, "database"), a["database"]),
            archive_max_age=self.threshold(
                (*path, "archiveMaxAge"),
                "archiveMaxAge",
                a.get("archiveMaxAge", DEFAULT_THRESHOLDS["archiving"]["archiveMaxAge"]),
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
            timeout=self.duration(
                (*path, "timeout"), c.get("timeout"), DEFAULTS.certificate_timeout
            ),
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
                max_idle=self.duration(
                    (*path, "sessions", "maxIdle"), se.get("maxIdle"), DEFAULTS.session_max_idle
                ),
                max_lifetime=self.duration(
                    (*path, "sessions", "maxLifetime"),
                    se.get("maxLifetime"),
                    DEFAULTS.session_max_lifetime,
                ),
                query=se.get("query"),
            )
        return SecurityMonitoring(
            auth_log=self.file(s.get("authLog", {}).get("file")),
            window=self.duration((*path, "window"), s.get("window"), DEFAULTS.monitoring_window),
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
            self.duration((*path, "reviewEvery"), p["reviewEvery"], DEFAULTS.policy_review_every),
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
                    timeout=self.duration(
                        (*where, "timeout"), t.get("timeout"), DEFAULTS.site_check_timeout
                    ),
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


def secret_values(environ: Mapping[str, str]) -> Iterator[str]:
    """Secrets libpq and our config read from the environment: never to be printed."""
    for name, value in environ.items():
        if value and len(value) >= 4 and (name == "PGPASSWORD" or _SECRET_KEYS.search(name)):
            yield value
