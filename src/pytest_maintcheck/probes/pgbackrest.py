"""pgBackRest, read-only: ``info --output=json`` for the backup sets, ``repo-ls`` for the WAL.

Neither command takes a lock or writes to the repository; file logging is switched off on the
command line, so nothing is written on this host either. Every call is bounded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import Backup
from pytest_maintcheck.probes.physical import BackupSet, Catalog, ToolError, is_segment, run_tool
from pytest_maintcheck.redact import printable

PGBACKREST = "pgbackrest"
_QUIET = ("--log-level-file=off", "--log-level-console=error", "--log-level-stderr=error")


def base_argv(stanza: str, config: Path | None) -> list[str]:
    argv = [os.environ.get("MAINTCHECK_PGBACKREST", PGBACKREST)]
    if config is not None:
        argv.append(f"--config={config}")
    return [*argv, f"--stanza={stanza}", *_QUIET]


def _time(epoch: Any) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


def parse_info(text: str, stanza: str) -> Catalog:
    """``pgbackrest info --output=json`` for one stanza; ToolError when it is not that."""
    try:
        doc = json.loads(text)
        entry = next(s for s in doc if s.get("name") == stanza)
    except (ValueError, StopIteration, TypeError, AttributeError):
        raise ToolError(f"pgbackrest info printed no JSON for stanza {stanza}") from None
    status = entry.get("status", {})
    catalog = Catalog(
        tool="pgbackrest",
        name=stanza,
        status_ok=status.get("code") == 0,
        status=printable(str(status.get("message", "unknown status")), 200),
    )
    if catalog.status_ok is False and status.get("code") is None:
        catalog.status = "pgbackrest info gave no status"
    dbs = entry.get("db") or []
    catalog.pg_version = str(dbs[-1]["version"]) if dbs else None
    for b in entry.get("backup", []):
        info, archive = b.get("info", {}), b.get("archive") or {}
        catalog.backups.append(
            BackupSet(
                label=str(b["label"]),
                type=str(b.get("type", "full")),
                started=_time(b["timestamp"]["start"]),
                stopped=_time(b["timestamp"]["stop"]),
                size=info.get("size"),
                stored=(info.get("repository") or {}).get("delta"),
                wal_start=archive.get("start"),
                wal_stop=archive.get("stop"),
                error=bool(b.get("error", False)),
            )
        )
    catalog.backups.sort(key=lambda s: s.stopped)
    newest_db = (entry.get("backup") or [{}])[-1].get("database", {}) if entry.get("backup") else {}
    archives = entry.get("archive") or []
    chosen = [a for a in archives if a.get("database", {}).get("id") == newest_db.get("id")]
    if chosen or archives:
        archive = (chosen or archives)[-1]
        catalog.archive_id = archive.get("id")
        catalog.archive_min, catalog.archive_max = archive.get("min"), archive.get("max")
        catalog.repo_key = int(archive.get("database", {}).get("repo-key", 1))
    return catalog


def read_catalog(backup: Backup) -> Catalog:
    """The stanza's backup sets; ToolError (safe to print) when pgbackrest cannot say."""
    assert backup.stanza is not None
    argv = [*base_argv(backup.stanza, backup.tool_config), "--output=json", "info"]
    return parse_info(run_tool(argv, backup.timeout), backup.stanza)


def list_segments(backup: Backup, catalog: Catalog, start: str | None = None) -> list[str]:
    """Archived WAL file names of the catalog's archive id, from ``start``'s log file on."""
    if catalog.archive_id is None:
        return []
    assert backup.stanza is not None
    base = [*base_argv(backup.stanza, backup.tool_config), f"--repo={catalog.repo_key}"]
    where = f"archive/{backup.stanza}/{catalog.archive_id}"
    top = _listing(run_tool([*base, "--output=json", "repo-ls", where], backup.timeout))
    # a folder per timeline and log file (256 segments of 16 MB): only those from start on
    folders = sorted(n for n, kind in top.items() if kind == "path" and len(n) == 16)
    if start is not None:
        folders = [f for f in folders if f[8:] >= start[8:16]]
    names: list[str] = []
    for folder in folders:
        listed = _listing(
            run_tool([*base, "--output=json", "repo-ls", f"{where}/{folder}"], backup.timeout)
        )
        names.extend(n for n, kind in listed.items() if kind == "file" and is_segment(n))
    return sorted(names)


def _listing(text: str) -> dict[str, str]:
    try:
        doc = json.loads(text)
        return {str(k): str(v.get("type")) for k, v in doc.items() if k != "."}
    except (ValueError, AttributeError):
        raise ToolError("pgbackrest repo-ls printed no JSON") from None


def restore_argv(
    backup: Backup,
    label: str,
    data: Path,
    scratch: Path,
    target_time: datetime | None,
) -> Sequence[str]:
    """``pgbackrest restore`` of set ``label`` into a new, empty scratch data directory.

    Never --delta (the directory is new), every tablespace mapped inside the scratch folder
    (never back to the source's paths), archive_mode=off on the copy (a promoted copy must
    not push WAL into the repository), locks and logs kept in the scratch folder.
    """
    assert backup.stanza is not None
    argv = [
        os.environ.get("MAINTCHECK_PGBACKREST", PGBACKREST),
        *([f"--config={backup.tool_config}"] if backup.tool_config else []),
        f"--stanza={backup.stanza}",
        f"--pg1-path={data}",
        f"--set={label}",
        "--archive-mode=off",
        f"--tablespace-map-all={scratch / 'tablespaces'}",
        f"--lock-path={scratch / 'lock'}",
        f"--log-path={scratch / 'log'}",
        "--log-level-file=off",
        "--log-level-console=warn",
        "--log-level-stderr=warn",
    ]
    if target_time is not None:
        argv += [
            "--type=time",
            f"--target={target_time.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f+00')}",
            "--target-action=promote",
        ]
    return [*argv, "restore"]
