"""``maintcheck demo``: real local parts, a config for them, the suites run against them.

Each part adds itself to a :class:`DemoContext` (servers it started, config sections it wrote);
everything started is stopped in reverse order, also on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_maintcheck.report.files import run_folders
from pytest_maintcheck.sandbox import (
    demo_database,
    demo_operations,
    demo_physical,
    demo_security_monthly,
)
from pytest_maintcheck.sandbox.api_server import SandboxApi
from pytest_maintcheck.sandbox.demo_backups import backups
from pytest_maintcheck.sandbox.demo_history import seed_demo_history
from pytest_maintcheck.sandbox.demo_security_daily import security_daily
from pytest_maintcheck.sandbox.postgres import PostgresCluster, SandboxDatabase
from pytest_maintcheck.sandbox.tls import CertAuthority, make_ca

MONITOR_ROLE = "maint"


@dataclass
class DemoContext:
    """What the parts share: the work folder, the servers, and the config being written."""

    workdir: Path
    stack: ExitStack
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    cluster: PostgresCluster | None = None
    database: SandboxDatabase | None = None
    monitor_password: str = ""
    ca: CertAuthority | None = None
    ca_file: Path | None = None
    api: SandboxApi | None = None

    def section(self, name: str, default: Any) -> Any:
        return self.config.setdefault(name, default)


def clinical_database(ctx: DemoContext) -> None:
    """A PostgreSQL cluster with a small clinical schema and a pg_monitor-only role."""
    cluster = ctx.stack.enter_context(PostgresCluster())
    ctx.cluster = cluster
    ctx.database = cluster.create_database("clinical")
    ctx.monitor_password = os.urandom(12).hex()
    cluster.create_role(MONITOR_ROLE, ctx.monitor_password, "pg_monitor")
    with ctx.database.connect() as conn:
        conn.execute(f"GRANT CONNECT ON DATABASE clinical TO {MONITOR_ROLE}")
        conn.execute(
            "CREATE TABLE patients (id serial PRIMARY KEY, mrn text UNIQUE NOT NULL, "
            "born date NOT NULL, created timestamptz DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE encounters (id serial PRIMARY KEY, patient_id int REFERENCES patients, "
            "kind text NOT NULL, at timestamptz DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO patients (mrn, born) SELECT 'SYN-' || g, date '1950-01-01' + g "
            "FROM generate_series(1, 2000) g"
        )
        conn.execute(
            "INSERT INTO encounters (patient_id, kind) SELECT 1 + g % 2000, "
            "(ARRAY['ecg','echo','visit'])[1 + g % 3] FROM generate_series(1, 10000) g"
        )
        conn.execute("VACUUM (ANALYZE)")  # the clinical tables are healthy; later parts add faults
    # libpq reads the password from the environment: it never sits in the config
    ctx.env["PGPASSWORD"] = ctx.monitor_password
    ctx.section("databases", {})["primary"] = {
        "dsn": f"postgresql://{MONITOR_ROLE}@{cluster.host}:{cluster.port}/clinical",
        "connectTimeout": "5s",
    }


def clinical_api(ctx: DemoContext) -> None:
    """An HTTPS API with a certificate from a CA made for the demo, and an OpenID provider."""
    ctx.ca = make_ca("maintcheck demo CA")
    certs = ctx.workdir / "tls"
    certs.mkdir()
    ctx.ca_file = ctx.ca.write_ca(certs)
    cert, key = ctx.ca.issue(["127.0.0.1", "localhost"]).write(certs)
    ctx.api = ctx.stack.enter_context(SandboxApi(certfile=cert, keyfile=key, ca_file=ctx.ca_file))
    replica = ctx.stack.enter_context(
        SandboxApi(certfile=cert, keyfile=key, ca_file=ctx.ca_file, latency_ms=120)
    )
    storage = ctx.workdir / "ecg-storage"
    storage.mkdir()
    ctx.section("healthChecks", []).extend(
        [
            {
                "service": "clinical-api",
                "type": "api",
                "endpoint": ctx.api.url("/health"),
                "samples": 5,
                "timeout": "5s",
                "caFile": str(ctx.ca_file),
                "thresholds": {
                    "responseTime": {"warn": 300, "fail": 800},
                    "errorRate": 0.05,
                    "availability": 0.99,
                },
            },
            {
                "service": "clinical-db",
                "type": "database",
                "endpoint": "primary",
                "thresholds": {"responseTime": {"warn": 200, "fail": 1000}},
            },
            {
                "service": "ecg-storage",
                "type": "storage",
                "endpoint": str(storage),
                "thresholds": {"usage": {"warn": 0.95, "fail": 0.99}},
            },
            {
                "service": "sso",
                "type": "authentication",
                "endpoint": ctx.api.url("/.well-known/openid-configuration"),
                "caFile": str(ctx.ca_file),
            },
            {
                "service": "ecg-viewer",
                "type": "api",
                "endpoints": [ctx.api.url("/health"), replica.url("/health")],
                "samples": 3,
                "caFile": str(ctx.ca_file),
                # the second replica answers in ~120 ms: degraded, to show a warning
                "thresholds": {"responseTime": {"warn": 100, "fail": 2000}},
            },
        ]
    )


PARTS: list[Callable[[DemoContext], None]] = [clinical_database, clinical_api]
PARTS.append(demo_database.maintenance_problems)
PARTS.append(demo_security_monthly.security_monthly)
PARTS.append(security_daily)
PARTS.append(backups)
PARTS.append(demo_operations.operations)
PARTS.append(demo_physical.physical_backups)


def suite_path() -> Path:
    """The maintenance suite: shipped inside the package, or checks/ in a source checkout."""
    shipped = Path(__file__).resolve().parents[1] / "suite"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[3] / "checks"


def build(ctx: DemoContext) -> Path:
    ctx.config.update(
        {
            "version": 1,
            "system": "Cardiology Clinical Assistant (demo sandbox)",
            "environment": "demo",
        }
    )
    for part in PARTS:
        part(ctx)
    ctx.config.setdefault("owners", {"default": "ops-oncall", "security": "security-officer"})
    path = ctx.workdir / "maintcheck.yaml"
    path.write_text(yaml.safe_dump(ctx.config, sort_keys=False), encoding="utf-8")
    return path


def _database_size(ctx: DemoContext) -> int | None:
    if ctx.database is None:
        return None
    with ctx.database.connect() as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else None


def _write_review(report_dir: Path) -> None:
    """The monthly review of the current month, from the runs so far."""
    from datetime import UTC, datetime

    from pytest_maintcheck.report.review import write_review

    path = write_review(report_dir, datetime.now(UTC).strftime("%Y-%m"))
    print(f"maintcheck demo: monthly review: {path}", flush=True)


def run_demo(
    marker: str, report_dir: Path, apply: bool = False, extra: list[str] | None = None
) -> int:
    """Build the sandbox, run the suites on it, tear everything down; pytest's exit status."""
    workdir = Path(tempfile.mkdtemp(prefix="maintcheck-demo-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        ctx = DemoContext(workdir=workdir, stack=stack)
        print(f"maintcheck demo: starting the sandbox in {workdir}", flush=True)
        config_path = build(ctx)
        if ctx.cluster is not None:
            print(
                f"maintcheck demo: PostgreSQL on {ctx.cluster.host}:{ctx.cluster.port}", flush=True
            )
        if ctx.api is not None:
            print(f"maintcheck demo: clinical API on {ctx.api.base_url}", flush=True)
        argv = [
            sys.executable,
            "-m",
            "pytest",
            str(suite_path()),
            "-m",
            marker,
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(workdir),
            "--maintcheck-config",
            str(config_path),
            "--maintcheck-report-dir",
            str(report_dir),
            *(["--maintcheck-apply"] if apply else []),
            *(extra or []),
        ]
        seeded = seed_demo_history(ctx.config, report_dir, _database_size(ctx))
        if seeded:
            print(f"maintcheck demo: seeded {seeded} days of history into {report_dir}", flush=True)
        env = {**os.environ, **ctx.env}
        print(f"maintcheck demo: running {marker} checks", flush=True)
        status = subprocess.run(argv, env=env, cwd=workdir, check=False).returncode
        runs = run_folders(report_dir)
        if runs:
            print(f"maintcheck demo: report: {runs[-1] / 'report.html'}", flush=True)
            print(f"maintcheck demo: all runs: {report_dir / 'index.html'}", flush=True)
            _write_review(report_dir)
        else:
            print(f"maintcheck demo: the run wrote no report into {report_dir}", flush=True)
        print("maintcheck demo: stopping the sandbox", flush=True)
    return status
