"""Barman, read-only: ``list-backups``, ``show-backup``, ``check`` and ``list-files`` as JSON.

Barman runs as its own user (``barman_user`` in barman.conf): maintcheck must run as that user
for these checks. ``barman recover`` writes only into the scratch folder. Barman 3.x makes no
recovery configuration without a target, so "latest" is recovered as a target LSN at the start
of the newest archived segment: reaching it proves every segment before it was replayed, and
a gap makes PostgreSQL stop with "recovery ended before configured recovery target was reached".
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import Backup
from pytest_maintcheck.probes.physical import (
    DEFAULT_SEGMENT_SIZE,
    BackupSet,
    Catalog,
    ToolError,
    is_whole_segment,
    run_tool,
    segment_number,
)
from pytest_maintcheck.redact import printable

BARMAN = "barman"


def base_argv(backup: Backup) -> list[str]:
    argv = [os.environ.get("MAINTCHECK_BARMAN", BARMAN), "-f", "json"]
    if backup.tool_config is not None:
        argv += ["-c", str(backup.tool_config)]
    return argv


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ToolError(f"barman {what} printed no JSON") from None


def _server(doc: Any, server: str, what: str) -> Any:
    if not isinstance(doc, dict) or server not in doc:
        raise ToolError(f"barman {what} said nothing about server {server}")
    return doc[server]


def parse_show_backup(info: dict[str, Any]) -> BackupSet:
    base = info.get("base_backup_information", {})
    return BackupSet(
        label=str(info["backup_id"]),
        type="full",
        started=datetime.fromtimestamp(float(base["begin_time_timestamp"]), UTC),
        stopped=datetime.fromtimestamp(float(base["end_time_timestamp"]), UTC),
        size=base.get("disk_usage_bytes"),
        stored=base.get("incremental_size_bytes"),
        wal_start=base.get("begin_wal"),
        wal_stop=base.get("end_wal"),
    )


def parse_check(doc: Any, server: str) -> tuple[bool, str]:
    """(all OK, the failed checks with their hints)."""
    checks = _server(doc, server, "check")
    failed = [
        f"{name.replace('_', ' ')}"
        + (f" ({printable(str(c.get('hint')), 100)})" if c.get("hint") else "")
        for name, c in sorted(checks.items())
        if isinstance(c, dict) and c.get("status") != "OK"
    ]
    return not failed, ("barman check failed: " + "; ".join(failed)) if failed else "ok"


def _tablespace_name(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("name"))
    return str(entry[0] if isinstance(entry, list | tuple) else entry)


def read_catalog(backup: Backup) -> Catalog:
    """The server's DONE backups (``show-backup`` of the newest two), and ``barman check``."""
    assert backup.server is not None
    server, base = backup.server, base_argv(backup)
    listed = _server(
        _json(run_tool([*base, "list-backups", server], backup.timeout), "list-backups"),
        server,
        "list-backups",
    )
    done = sorted(
        (b for b in listed if b.get("status") == "DONE"),
        key=lambda b: float(b.get("end_time_timestamp") or 0),
    )
    catalog = Catalog(tool="barman", name=server)
    for entry in done[-2:]:  # the newest and the one before it: freshness and size change
        shown = _server(
            _json(
                run_tool([*base, "show-backup", server, str(entry["backup_id"])], backup.timeout),
                "show-backup",
            ),
            server,
            "show-backup",
        )
        catalog.backups.append(parse_show_backup(shown))
        version = shown.get("postgresql_version")
        if isinstance(version, int):
            catalog.pg_version = str(version // 10000)
        catalog.archive_max = shown.get("wal_information", {}).get("last_available")
        catalog.tablespaces = [_tablespace_name(t) for t in shown.get("tablespaces") or []]
    # barman check exits 1 when a check fails; its JSON says which
    checked = run_tool([*base, "check", server], backup.timeout, ok_codes=(0, 1))
    catalog.status_ok, catalog.status = parse_check(_json(checked, "check"), server)
    return catalog


def list_segments(backup: Backup, catalog: Catalog, start: str | None = None) -> list[str]:
    """The archived WAL files of the newest backup onwards (``barman list-files --target wal``)."""
    assert backup.server is not None
    newest = catalog.newest
    if newest is None:
        return []
    argv = [*base_argv(backup), "list-files", "--target", "wal", backup.server, newest.label]
    doc = _json(run_tool(argv, backup.timeout), "list-files")
    paths = [Path(str(p)) for p in (doc.get("_INFO", []) if isinstance(doc, dict) else [])]
    # list-files reads Barman's xlog.db: a file removed behind Barman's back is still listed
    names = sorted(p.name for p in paths if not p.parent.is_dir() or p.exists())
    if catalog.archive_max is None and names:
        catalog.archive_max = max((n for n in names if is_whole_segment(n)), default=None)
    return names


def recover_argv(
    backup: Backup,
    label: str,
    data: Path,
    scratch: Path,
    target_time: datetime | None,
    *,
    archive_end: str | None = None,
    tablespaces: Sequence[str] = (),
) -> list[str]:
    """``barman recover`` of ``label`` into the new scratch data directory, recovering to
    ``target_time`` or (latest) to the start of ``archive_end``; tablespaces kept inside."""
    assert backup.server is not None
    argv = [os.environ.get("MAINTCHECK_BARMAN", BARMAN)]
    if backup.tool_config is not None:
        argv += ["-c", str(backup.tool_config)]
    argv += ["recover", "--target-action", "promote"]
    if target_time is not None:
        argv += ["--target-time", target_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")]
    elif archive_end is not None:
        argv += ["--target-lsn", segment_lsn(archive_end)]
    else:
        argv += ["--target-immediate"]
    for name in tablespaces:
        argv += ["--tablespace", f"{name}:{scratch / 'tablespaces' / name}"]
    return [*argv, backup.server, label, str(data)]


def segment_lsn(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """The LSN where segment ``name`` starts, e.g. 0/7000000."""
    position = segment_number(name, segment_size)[1] * segment_size
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
