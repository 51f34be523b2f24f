"""Demo part for configuration review, security patches, host resources and pooling, each with
a planted fault where one is cheap:

- configuration review of the demo database: a ``host all all 0.0.0.0/0 trust`` line in
  pg_hba.conf and a role still holding an md5 password hash (the monitoring role is given
  the grants the review names, so it can see both);
- host resources of this machine (psutil) and, when prometheus-node-exporter is installed, of
  the same machine through a node_exporter started on 127.0.0.1;
- PgBouncer, when installed, in front of the demo database with a pool that may open more
  server connections than PostgreSQL allows; otherwise the demo says it skipped pooling;
- security patches: an OSV advisory written for the installed ``bash`` package and a pending
  reboot flag; the PostgreSQL minor release against its own (passing) minimum;
- encryption: the demo database has no TLS and the nightly dumps are plain pg_dump archives
  where age is expected (the loopback node_exporter is exempt, with its justification).
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from psycopg import sql

from pytest_maintcheck.probes.pg_config_review import HBA_GRANT, MD5_FUNCTION_SQL
from pytest_maintcheck.sandbox.services import NodeExporter, PgBouncer, ServiceNotFoundError

if TYPE_CHECKING:
    from pytest_maintcheck.sandbox.demo import DemoContext

MD5_ROLE = "legacy_reports"  # NOLOGIN: it is not an account, only a hash left behind


def operations(ctx: DemoContext) -> None:
    if ctx.cluster is None or ctx.database is None:
        return
    monitor = ctx.config["databases"]["primary"]["dsn"].split("//", 1)[1].split("@", 1)[0]
    _plant_configuration_faults(ctx, monitor)
    hosts: list[dict[str, object]] = [{"name": "runner", "local": True}]
    try:
        exporter = ctx.stack.enter_context(NodeExporter())
        hosts.append({"name": "db-host", "nodeExporter": exporter.url})
    except ServiceNotFoundError as exc:
        print(f"maintcheck demo: node_exporter skipped: {exc}", flush=True)
    ctx.config["hosts"] = hosts
    ctx.config["configReview"] = [
        {
            "database": "primary",
            # the sandbox cluster runs without TLS, connection logging or checksums by design;
            # the demo expects that, so the planted faults stand out
            "ssl": False,
            "dataChecksums": False,
            "logConnections": False,
            "logDisconnections": False,
            "logStatement": "none",
            "approvedSuperusers": [ctx.cluster.superuser],
            "host": "runner",
        }
    ]
    _pooling(ctx, monitor)
    _patches(ctx)
    _encryption(ctx, hosts)


def _plant_configuration_faults(ctx: DemoContext, monitor: str) -> None:
    assert ctx.cluster is not None
    assert ctx.database is not None
    with (ctx.cluster.data_dir / "pg_hba.conf").open("a") as hba:
        # read by pg_hba_file_rules from the file; never loaded (no reload), so harmless
        hba.write("host all all 0.0.0.0/0 trust\n")
    with ctx.database.connect() as conn:
        conn.execute("SET password_encryption = 'md5'")
        conn.execute(
            sql.SQL("CREATE ROLE {} NOLOGIN PASSWORD {}").format(
                sql.Identifier(MD5_ROLE), sql.Literal(ctx.monitor_password + "-old")
            )
        )
        conn.execute(HBA_GRANT.format(role=monitor))
        conn.execute(MD5_FUNCTION_SQL.format(role=monitor))


def _pooling(ctx: DemoContext, monitor: str) -> None:
    assert ctx.cluster is not None
    try:
        bouncer = PgBouncer(
            # pool_size 120 against max_connections 100: the planted fault
            {"clinical": f"host=127.0.0.1 port={ctx.cluster.port} dbname=clinical pool_size=120"},
            {monitor: ctx.monitor_password},
            stats_users=[monitor],
        )
    except ServiceNotFoundError as exc:
        print(f"maintcheck demo: connection pooling skipped: {exc}", flush=True)
        return
    ctx.stack.enter_context(bouncer)
    passfile = ctx.env.get("PGPASSFILE")
    if passfile:  # the backups part moved the demo's passwords into a pgpass file
        with open(passfile, "a", encoding="utf-8") as f:
            f.write(f"{bouncer.host}:{bouncer.port}:pgbouncer:{monitor}:{ctx.monitor_password}\n")
    ctx.config["pooling"] = [
        {"name": "pgbouncer", "dsn": bouncer.dsn(monitor), "database": "primary"}
    ]


def _patches(ctx: DemoContext) -> None:
    assert ctx.database is not None
    with ctx.database.connect() as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    num = int(str(row[0])) if row else 0
    section: dict[str, object] = {
        "minimumVersions": {str(num // 10000): f"{num // 10000}.{num % 10000}"},
        "rebootFlag": str(ctx.workdir / "reboot-required"),
    }
    (ctx.workdir / "reboot-required").write_text("*** System restart required ***\n")
    (ctx.workdir / "reboot-required.pkgs").write_text("libc6\n")
    advisory = _bash_advisory()
    if advisory is None:
        print("maintcheck demo: OS package advisories skipped: no dpkg-query here", flush=True)
    else:
        folder = ctx.workdir / "osv-debian"
        folder.mkdir()
        (folder / f"{advisory['id']}.json").write_text(json.dumps(advisory, indent=2))
        section["advisories"] = str(folder)
    ctx.config["securityPatches"] = section


def _encryption(ctx: DemoContext, hosts: list[dict[str, object]]) -> None:
    """The demo's database runs without TLS and its nightly dumps are plain pg_dump archives:
    both real findings. The loopback node_exporter is exempt, with its justification."""
    section: dict[str, object] = {}
    if any(h["name"] == "db-host" for h in hosts):
        section["exempt"] = [
            {"target": "db-host", "justification": "demo: node_exporter on 127.0.0.1 only"}
        ]
    names = {b.get("name") for b in ctx.config.get("backups", [])}
    if "clinical-nightly" in names:
        section["atRest"] = [{"backup": "clinical-nightly", "envelope": "age"}]
    ctx.config["encryption"] = section


def _bash_advisory() -> dict[str, object] | None:
    """An advisory (made up, marked as such) against the bash really installed here."""
    from pytest_maintcheck.probes.os_packages import PackageProbeError, os_ecosystem

    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${source:Package}\t${source:Version}", "bash"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        ecosystem = os_ecosystem()
    except (OSError, subprocess.SubprocessError, PackageProbeError):
        return None
    source, version = done.stdout.split("\t")
    return {
        "id": "DEMO-2026-0001",
        "summary": "Demo advisory written by maintcheck demo against the installed bash",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": source},
                "ranges": [
                    {"type": "ECOSYSTEM",
                     "events": [{"introduced": "0"}, {"fixed": version + "+demo1"}]}
                ],
            }
        ],
        "database_specific": {"severity": "HIGH"},
    }  # fmt: skip
