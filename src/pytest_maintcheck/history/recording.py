"""A finished run into the store, with what earlier runs could not write.

The run folder is the source of truth: a run whose store was locked, unreachable or corrupt
is added by the next run that reaches the store (its folder's results.json), and the old
``history.jsonl`` is imported once and renamed ``history.jsonl.imported``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import iso, number, using
from pytest_maintcheck.history.store import HistoryStore, HistoryUnavailable, StoredCheck, StoredRun

log = logging.getLogger("pytest_maintcheck.history")

HISTORY_JSONL = "history.jsonl"
CATCH_UP_LIMIT = 500  # run folders added per run; the next run continues
HISTORY_ACTION = (
    "make the store writable again (another process holding reports/history.sqlite: "
    "`fuser -v` names it; history.dsn: check the server and its credentials); nothing is "
    "lost, the next run adds this run from its folder"
)


@dataclass
class Recorded:
    """What recording a run did: problems for the log and findings, the index's lines."""

    problems: list[str] = field(default_factory=list)
    summaries: dict[str, dict[str, Any]] | None = None
    caught_up: int = 0
    imported_jsonl: int = 0


def host_name() -> str:
    return socket.gethostname()


def measurements_of(result: Mapping[str, Any]) -> dict[str, float]:
    """Every number a check measured, and the usage counts its details hold."""
    out = {
        k: v for k, raw in (result.get("metrics") or {}).items() if (v := number(raw)) is not None
    }
    details = result.get("details") or {}
    for key, raw in (details.get("dbMetrics") or {}).items():
        if (value := number(raw)) is not None:
            out.setdefault(key, value)
    by_state = details.get("byState")
    if isinstance(by_state, dict) and (active := number(by_state.get("active", 0))) is not None:
        out.setdefault("activeSessions", active)
    return out


def stored_run(results: Mapping[str, Any], log_record: Mapping[str, Any] | None, host: str,
               source: str = "run") -> StoredRun:  # fmt: skip
    """A run's results.json (and MaintenanceLog) as the store keeps it."""
    performed = (log_record or {}).get("performed", {})
    checks = tuple(
        StoredCheck(
            check=str(r.get("check", "")),
            target=str(r.get("target") or r.get("name") or ""),  # check_identity
            at=str(r.get("finishedAt") or results.get("finishedAt") or ""),
            verdict=str(r.get("verdict", "")),
            severity=str(r.get("severity") or ""),
            nodeid=str(r.get("nodeid") or ""),
            thresholds=r.get("thresholds") or {},
            measurements=measurements_of(r),
            in_maintenance=bool(r.get("inMaintenance")),
            version=str((r.get("details") or {}).get("version") or ""),
            evidence=evidence_of(r),
        )
        for r in results.get("checks", [])
        if isinstance(r, dict) and r.get("verdict") != "skipped" and r.get("check")
    )
    return StoredRun(
        run_id=str(results["runId"]),
        system=str(results.get("system", "")),
        environment=str(results.get("environment", "")),
        host=str(results.get("host") or host),
        started_at=str(results.get("startedAt", "")),
        finished_at=str(results.get("finishedAt", "")),
        duration=number(performed.get("duration")),
        status=str((log_record or {}).get("status", "")),
        suites=tuple((log_record or {}).get("suites", ())),
        counts=results.get("counts") or {},
        source=source,
        checks=checks,
        change=(log_record or {}).get("change"),
    )


def evidence_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a later run reads back of a check besides numbers: the backup a restore test
    restored (its file name and time), so a deploy gate can name its rollback point."""
    details = result.get("details") or {}
    newest = details.get("newest")
    if result.get("check") != "backup_restore" or not isinstance(newest, dict):
        return {}
    return {"backup": newest.get("name"), "taken": newest.get("taken")}


def record_run(
    settings: HistorySettings,
    report_dir: Path,
    records: Mapping[str, Any],
    *,
    mode: int = 0o600,
    host: str | None = None,
    now: datetime,
) -> Recorded:
    """Write this run, earlier runs the store missed, and history.jsonl once. Never raises:
    what went wrong is in ``problems``."""
    outcome = Recorded()
    run = stored_run(
        records["results.json"], records.get("maintenance-log.json"), host or host_name()
    )
    try:
        _record(settings, report_dir, run, mode, outcome)
    except HistoryUnavailable as exc:
        if exc.corrupt and not settings.dsn:
            _rebuild(settings, report_dir, run, mode, now, exc, outcome)
        else:
            outcome.problems.append(_explain(exc))
    for problem in outcome.problems:
        log.warning("maintcheck history: %s", problem)
    return outcome


def _record(settings: HistorySettings, report_dir: Path, run: StoredRun, mode: int,
            outcome: Recorded) -> None:  # fmt: skip
    from pytest_maintcheck.report.files import run_folders

    with using(settings, report_dir, mode) as store:
        folders = [f for f in run_folders(report_dir) if f.name != run.run_id]
        since = min([f.name for f in folders] + [run.run_id])
        recorded = store.recorded_run_ids(since)
        jsonl = _jsonl_runs(report_dir, recorded, run.host)
        missing = [f for f in folders if f.name not in recorded][:CATCH_UP_LIMIT]
        earlier = [r for r in (_from_folder(f, run.host) for f in missing) if r is not None]
        store.record_runs([*jsonl, *earlier, run])
        outcome.caught_up, outcome.imported_jsonl = len(earlier), len(jsonl)
        if jsonl or (report_dir / HISTORY_JSONL).exists():
            _retire_jsonl(report_dir, store)
        outcome.summaries = store.summaries([f.name for f in folders] + [run.run_id])


def _rebuild(settings: HistorySettings, report_dir: Path, run: StoredRun, mode: int,
             now: datetime, exc: HistoryUnavailable, outcome: Recorded) -> None:  # fmt: skip
    """A corrupt SQLite store is moved aside and rebuilt from the run folders here."""
    from pytest_maintcheck.history.sqlite import STORE_NAME, move_aside

    path = report_dir / STORE_NAME
    try:
        aside = move_aside(path, now.strftime("%Y%m%dT%H%M%SZ"))
    except OSError as err:
        outcome.problems.append(_explain(exc) + f"; it could not be moved aside: {err.strerror}")
        return
    try:
        _record(settings, report_dir, run, mode, outcome)
    except HistoryUnavailable as again:
        outcome.problems.append(_explain(again))
        return
    outcome.problems.append(
        f"{exc}: moved aside to {aside.name} and rebuilt from the {outcome.caught_up + 1} run "
        "folders here; the history imported from elsewhere (CSV, other runners) is only in the "
        "old file"
    )


def _explain(exc: HistoryUnavailable) -> str:
    return (
        f"{exc}; this run's records are complete in its run folder, and the next run that "
        "reaches the store adds them"
    )


def _from_folder(folder: Path, host: str) -> StoredRun | None:
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        log_record = json.loads((folder / "maintenance-log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log_record = None
    if not isinstance(results, dict) or "runId" not in results:
        return None
    return stored_run(results, log_record if isinstance(log_record, dict) else None, host)


def _jsonl_runs(report_dir: Path, recorded: set[str], host: str) -> list[StoredRun]:
    """Summary lines of the pre-store history whose runs the store lacks."""
    try:
        lines = (report_dir / HISTORY_JSONL).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            entry = json.loads(line)
            run_id = str(entry["runId"])
            if run_id in recorded or (report_dir / run_id / "results.json").is_file():
                continue  # the folder's own results are richer; catch-up reads them
            out.append(
                StoredRun(
                    run_id=run_id,
                    system=str(entry.get("system", "")),
                    environment=str(entry.get("environment", "")),
                    host=host,
                    started_at=str(entry.get("startedAt", "")),
                    duration=number(entry.get("duration")),
                    status=str(entry.get("status", "")),
                    suites=tuple(entry.get("suites", ())),
                    counts=entry.get("counts") or {},
                    source=HISTORY_JSONL,
                    checks_recorded=False,
                )
            )
    return out


def _retire_jsonl(report_dir: Path, store: HistoryStore) -> None:
    """history.jsonl is read once: renamed, and the import noted in the store."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(report_dir / HISTORY_JSONL, report_dir / (HISTORY_JSONL + ".imported"))
    store.set_meta(f"imported:{report_dir / HISTORY_JSONL}", iso(datetime.now().astimezone()))


def record_imported(settings: HistorySettings, report_dir: Path, runs: Iterable[StoredRun],
                    mode: int = 0o600) -> int:  # fmt: skip
    """Runs from a CSV import, in one transaction (raises HistoryUnavailable)."""
    with using(settings, report_dir, mode) as store:
        return store.record_runs(runs)
