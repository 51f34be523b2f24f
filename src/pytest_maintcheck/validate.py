"""What ``maintcheck validate`` checks beyond the schema.

Offline: every waiver names a check that exists and a target that is configured. Online
(``--online``): the paths exist and can be read, every database answers with the privileges
its checks need, and every HTTPS or TLS endpoint answers. One line per problem, each probe
bounded by a timeout.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pytest_maintcheck.config import Config
from pytest_maintcheck.redact import printable
from pytest_maintcheck.targets import TARGETS

ONLINE_TIMEOUT = 5.0  # seconds per probe


# ---------------------------------------------------------------------------- offline


def check_names(folders: Iterable[Path]) -> set[str]:
    """Names of the test functions in the test_*.py files of these folders (read, not run)."""
    names: set[str] = set()
    for folder in folders:
        for module in sorted(folder.glob("test_*.py")) if folder.is_dir() else ():
            try:
                tree = ast.parse(module.read_text(encoding="utf-8"), str(module))
            except (OSError, SyntaxError, ValueError):
                continue  # pytest will say what is wrong with it; here it names no check
            names.update(
                node.name
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name.startswith("test")
            )
    return names


def target_ids(config: Config) -> set[str]:
    """Every id a check can be run for under this config."""
    ids = {"not-configured"}
    for kind in TARGETS.values():
        ids.update(kind.ident(t) for t in kind.targets(config))
    return ids


def waiver_problems(config: Config, names: set[str]) -> list[str]:
    """A waiver whose check or target does not exist protects nothing: say so."""
    ids = target_ids(config)
    problems = []
    for i, waiver in enumerate(config.waivers):
        test = waiver.check.rsplit("::", 1)[-1]
        function, bracket, rest = test.partition("[")
        where = f"{config.path.name}: waivers[{i}].check"
        shown = printable(waiver.check, 120)
        if function not in names:
            near = difflib.get_close_matches(function, sorted(names), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(f"{where}: {shown!r} names no check{hint}")
            continue
        target = rest[:-1] if bracket and rest.endswith("]") else None
        if target is not None and target not in ids:
            near = difflib.get_close_matches(target, sorted(ids), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(f"{where}: {shown!r}: no target {target!r} is configured{hint}")
    return problems


# ---------------------------------------------------------------------------- online


def online_problems(config: Config, timeout: float = ONLINE_TIMEOUT) -> list[str]:
    """Reach every path, database and endpoint of the config; one line per problem."""
    return [
        *_path_problems(config),
        *_database_problems(config, timeout),
        *_endpoint_problems(config, timeout),
    ]


def _paths(config: Config) -> Iterator[tuple[str, Path, str]]:
    """(where, path, file|dir) of every path the checks read."""
    for i, h in enumerate(config.health_checks):
        if h.type == "storage":
            yield f"healthChecks[{i}].endpoint", Path(h.endpoint), "dir"
        if h.ca_file:
            yield f"healthChecks[{i}].caFile", h.ca_file, "file"
    for i, b in enumerate(config.backups):
        if b.physical:  # read through pgbackrest/barman, which name what they miss
            continue
        yield f"backups[{i}].location", b.location, "dir"
        if b.checksums:
            yield f"backups[{i}].checksums", b.location / b.checksums, "file"
    for i, c in enumerate(config.certificates):
        if c.file:
            yield f"certificates[{i}].file", c.file, "file"
        if c.ca_file:
            yield f"certificates[{i}].caFile", c.ca_file, "file"
    review = config.access_review
    if review is not None:
        for i, s in enumerate(review.sources):
            if s.file:
                yield f"accessReview.sources[{i}].file", s.file, "file"
        if review.roster:
            yield "accessReview.roster", review.roster, "file"
    monitoring = config.security_monitoring
    if monitoring is not None and monitoring.auth_log:
        yield "securityMonitoring.authLog.file", monitoring.auth_log, "file"
    for i, d in enumerate(config.dependencies):
        yield f"dependencies[{i}].lockfile", d.lockfile, "file"
        yield f"dependencies[{i}].advisories", d.advisories, "dir"
    for i, p in enumerate(config.policies):
        yield f"policies[{i}].file", p.file, "file"
    if config.prometheus_textfile:
        yield "reporting.prometheusTextfile", config.prometheus_textfile.parent, "writable dir"


def _path_problems(config: Config) -> Iterator[str]:
    for where, path, kind in _paths(config):
        try:
            if kind == "file":
                with path.open("rb") as handle:
                    handle.read(1)
            else:
                os.listdir(path)
                if kind == "writable dir" and not os.access(path, os.W_OK):
                    raise PermissionError(13, "not writable")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            yield f"{where}: {printable(str(path), 200)}: {reason} (a {kind} is needed)"


def _needs(config: Config) -> dict[str, set[str]]:
    """Database name -> what its checks need of the role the DSN logs in as."""
    needs: dict[str, set[str]] = {name: set() for name in config.databases}
    for m in config.database_maintenance:
        needs[m.database].update(("stats", "pg_stat_statements"))
    monitoring = config.security_monitoring
    if monitoring is not None and monitoring.sessions is not None:
        needs[monitoring.sessions.database].add("stats")
    for b in config.backups:
        if b.restore_test is not None and b.restore_test.target:
            needs[b.restore_test.target].add("createdb")
    return needs


PRIVILEGES = """
SELECT r.rolsuper OR r.rolcreatedb,
       r.rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'),
       current_user
  FROM pg_roles r WHERE r.rolname = current_user
"""


def _database_problems(config: Config, timeout: float) -> Iterator[str]:
    import psycopg

    from pytest_maintcheck.probes.postgres import (
        ProbeError,
        connect,
        describe_pg_error,
        run_bounded,
    )

    def privileges(dsn: str) -> tuple[object, ...] | None:
        with connect(dsn, connect_timeout=timeout, statement_timeout=timeout) as conn:
            return conn.execute(PRIVILEGES).fetchone()

    for name, needs in _needs(config).items():
        database = config.databases[name]
        where = f"databases.{name}"
        try:
            row = run_bounded(2 * timeout + 5, f"{where} privileges", privileges, database.dsn)
        except ProbeError as exc:
            yield f"{where}: {printable(str(exc), 300)}"
            continue
        except psycopg.Error as exc:
            yield f"{where}: {describe_pg_error(exc)}"
            continue
        if row is None:
            continue
        createdb, stats, statements, role = row
        if "createdb" in needs and not createdb:
            yield (
                f"{where}: role {role} cannot create databases; restoreTest needs CREATEDB "
                f"(ALTER ROLE {role} CREATEDB)"
            )
        if "stats" in needs and not stats:
            yield (
                f"{where}: role {role} cannot see other sessions; databaseMaintenance and "
                f"sessions need pg_read_all_stats (GRANT pg_read_all_stats TO {role})"
            )
        if "pg_stat_statements" in needs and not statements:
            yield (
                f"{where}: pg_stat_statements is not installed; the slow query check cannot "
                "measure (CREATE EXTENSION pg_stat_statements, with it in "
                "shared_preload_libraries)"
            )


def _endpoint_problems(config: Config, timeout: float) -> Iterator[str]:
    import httpx

    from pytest_maintcheck.probes.certificates import CertificateProbeError, fetch_chain
    from pytest_maintcheck.probes.http import describe_error, tls_context

    for i, h in enumerate(config.health_checks):
        if h.type not in ("api", "authentication"):
            continue
        for url in h.endpoints:
            try:
                context = tls_context(h.ca_file)
                with httpx.Client(verify=context, timeout=timeout) as client:
                    client.head(url)  # any HTTP answer: the health check judges the status
            except (httpx.HTTPError, OSError, ValueError) as exc:
                yield f"healthChecks[{i}] {printable(url, 200)}: {describe_error(exc, timeout)}"
    for i, c in enumerate(config.certificates):
        if c.host is None:
            continue
        try:
            fetch_chain(c.host, c.port, c.server_name, min(timeout, c.timeout))
        except CertificateProbeError as exc:
            yield f"certificates[{i}]: {exc}"
