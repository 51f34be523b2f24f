"""Demo part: real pg_dump backups of ``clinical`` with a manifest, one corrupt and one stale
copy, a configuration archive, and a CREATEDB role the restore test restores with.

Both demo roles authenticate through a 0600 pgpass file in the work folder (PGPASSFILE):
libpq takes a single PGPASSWORD, and the monitoring role must keep only pg_monitor.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg import sql

from pytest_maintcheck.probes.restore import find_client_tool

if TYPE_CHECKING:  # demo.py imports this module for its PARTS
    from pytest_maintcheck.sandbox.demo import DemoContext

MONITOR_ROLE = "maint"  # the demo's pg_monitor role (sandbox.demo.MONITOR_ROLE)
RESTORE_ROLE = "maint_restore"
_STAMP = "%Y%m%dT%H%M%SZ"


def _pgpass_line(host: str, port: int, user: str, password: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(host)}:{port}:*:{esc(user)}:{esc(password)}\n"


def _dated(folder: Path, prefix: str, when: datetime, suffix: str) -> Path:
    return folder / f"{prefix}-{when.strftime(_STAMP)}{suffix}"


def _set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def _manifest(folder: Path, *files: Path) -> None:
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" for f in files]
    (folder / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def backups(ctx: DemoContext) -> None:
    """Backups of the demo database in three folders, and the backups config section."""
    cluster, database = ctx.cluster, ctx.database
    assert cluster is not None, "needs the clinical_database part"
    assert database is not None
    restore_password = os.urandom(12).hex()
    cluster.create_role(RESTORE_ROLE, restore_password)
    with cluster.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(RESTORE_ROLE)))
    passfile = ctx.workdir / "pgpass"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_pgpass_line(cluster.host, cluster.port, MONITOR_ROLE, ctx.monitor_password))
        f.write(_pgpass_line(cluster.host, cluster.port, RESTORE_ROLE, restore_password))
    ctx.env["PGPASSFILE"] = str(passfile)
    ctx.env["PGPASSWORD"] = ""  # empty: libpq falls through to the pgpass file for both roles

    now = datetime.now(UTC).replace(microsecond=0)
    root = ctx.workdir / "backups"
    nightly, offsite, configs = root / "clinical", root / "offsite", root / "config"
    for folder in (nightly, offsite, configs):
        folder.mkdir(parents=True)
    newest = _dated(nightly, "clinical", now - timedelta(hours=1), ".dump")
    subprocess.run(
        [str(find_client_tool("pg_dump")), "-Fc", f"--dbname={database.dsn}", f"--file={newest}"],
        env={**os.environ, "PGPASSWORD": database.password},
        check=True,
        timeout=120,
        capture_output=True,
    )
    previous = _dated(nightly, "clinical", now - timedelta(hours=25), ".dump")
    corrupt = _dated(nightly, "clinical", now - timedelta(hours=49), ".dump")
    stale = _dated(offsite, "clinical", now - timedelta(days=4), ".dump")
    for copy in (previous, corrupt, stale):
        shutil.copyfile(newest, copy)
    _manifest(nightly, newest, previous, corrupt)
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[: len(data) * 2 // 3])  # cut short after the manifest was written
    _manifest(offsite, stale)

    etc = ctx.workdir / "etc-clinical"
    etc.mkdir()
    (etc / "app.yaml").write_text("service: clinical-api\nlogLevel: info\n", encoding="utf-8")
    (etc / "pg_hba.conf").write_text("host all all 10.0.0.0/8 scram-sha-256\n", encoding="utf-8")
    archive = _dated(configs, "clinical-config", now - timedelta(hours=2), ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(etc, arcname="etc/clinical")
    _manifest(configs, archive)
    for path, when in (
        (newest, now - timedelta(hours=1)),
        (previous, now - timedelta(hours=25)),
        (corrupt, now - timedelta(hours=49)),
        (stale, now - timedelta(days=4)),
        (archive, now - timedelta(hours=2)),
    ):
        _set_mtime(path, when)

    ctx.section("databases", {})["restore"] = {
        "dsn": f"postgresql://{RESTORE_ROLE}@{cluster.host}:{cluster.port}/postgres",
        "connectTimeout": "5s",
    }
    ctx.section("backups", []).extend(
        [
            {
                "name": "clinical-nightly",
                "kind": "pg_dump",
                "database": "primary",
                "location": str(nightly),
                "pattern": "clinical-*.dump",
                "maxAge": "26h",
                "checksums": "SHA256SUMS",
                "restoreTest": {
                    "target": "restore",
                    "maxDuration": "5m",
                    "expectTables": ["patients", "encounters"],
                    "minRows": {"patients": 1000, "encounters": 1},
                    "jobs": 2,
                },
                "rotation": {"daily": 7, "weekly": 4},
            },
            {
                "name": "clinical-offsite",
                "kind": "pg_dump",
                "database": "primary",
                "location": str(offsite),
                "pattern": "clinical-*.dump",
                "maxAge": "26h",
                "checksums": "SHA256SUMS",
            },
            {
                "name": "clinical-config",
                "kind": "files",
                "location": str(configs),
                "pattern": "clinical-config-*.tar.gz",
                "maxAge": "8d",
                "checksums": "SHA256SUMS",
            },
        ]
    )
