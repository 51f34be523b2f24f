"""``maintcheck changes``: the change log, every update run with what its gate found.

Read from the run folders' MaintenanceLogs (the records of truth); the monthly review shows
the same list for its month.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_maintcheck.redact import printable

EXIT_USAGE = 4
CHANGE_TYPES = ("update", "emergency")


def add_parser(sub: Any) -> None:
    changes = sub.add_parser(
        "changes",
        help="list the update runs: change id, version, who ran them, the gate's outcome, "
        "regressions",
        description="The change log: every run of type update (or one given "
        "--maintcheck-change) in --report-dir, oldest first, with its change id, version, "
        "config revision, who ran it, the gate's outcome and the regressions its impact "
        "assessment found. Exit 0, or 4 on a usage error.",
        allow_abbrev=False,
    )
    changes.add_argument("--report-dir", type=Path, default=Path("reports"))
    changes.add_argument(
        "--config",
        type=Path,
        default=None,
        help="only runs of this config's system and environment",
    )
    changes.add_argument("--month", help="only runs started in YYYY-MM (UTC)")
    changes.add_argument("--json", action="store_true", help="the entries as JSON")


def run(args: argparse.Namespace) -> int:
    from pytest_maintcheck.ops_cli import UsageError, load_config_arg

    try:
        config = load_config_arg(args.config, required=False)
        if not args.report_dir.is_dir():
            raise UsageError(f"{args.report_dir}: no such report folder")
        if args.month is not None and not _is_month(args.month):
            raise UsageError(f"--month {args.month!r}: expected YYYY-MM")
    except UsageError as exc:
        print(f"maintcheck changes: {exc}", file=sys.stderr)
        return EXIT_USAGE
    system = (config.system, config.environment) if config is not None else None
    entries = change_log(args.report_dir, system=system, month=args.month)
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
    else:
        for line in text_lines(entries):
            print(line)
    return 0


def _is_month(text: str) -> bool:
    year, _, month = text.partition("-")
    return len(year) == 4 and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12


def change_log(
    report_dir: Path, *, system: tuple[str, str] | None = None, month: str | None = None
) -> list[dict[str, Any]]:
    """One entry per update run, oldest first."""
    from pytest_maintcheck.report.files import run_folders

    out = []
    for folder in run_folders(report_dir):
        if month is not None and not folder.name.startswith(month.replace("-", "")):
            continue  # run ids start with their UTC start time
        log = _read(folder / "maintenance-log.json")
        if not isinstance(log, dict):
            continue
        entry = entry_of(folder.name, log)
        if entry is None:
            continue
        if system is not None and (entry["system"], entry["environment"]) != system:
            continue
        out.append(entry)
    return out


def entry_of(run_id: str, log: Mapping[str, Any]) -> dict[str, Any] | None:
    """A MaintenanceLog as a change log entry; None for a routine run."""
    change = log.get("change")
    if log.get("type") not in CHANGE_TYPES and not isinstance(change, dict):
        return None
    change = change if isinstance(change, dict) else {}
    performed = _mapping(log.get("performed"))
    regressions = [r for r in change.get("regressions") or [] if isinstance(r, dict)]
    baseline = _mapping(change.get("baseline"))
    return {
        "runId": run_id,
        "at": performed.get("at"),
        "by": performed.get("by"),
        "type": log.get("type"),
        "change": change.get("id"),
        "version": change.get("version"),
        "configRevision": change.get("configRevision"),
        "outcome": change.get("outcome") or _outcome_of(log),
        "status": log.get("status"),
        "system": log.get("system", ""),
        "environment": log.get("environment", ""),
        "baseline": baseline.get("runId") if baseline else None,
        "regressions": [str(r.get("description", "")) for r in regressions],
        "improvements": len(change.get("improvements") or []),
        "rollbackPoints": change.get("rollbackPoints") or {},
    }


def _outcome_of(log: Mapping[str, Any]) -> str:
    counts = _mapping(log.get("counts"))
    return "refused" if counts.get("violation") or counts.get("error") else "passed"


def text_lines(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return ["no update runs (runs given --maintcheck-change or --maintcheck-type update)"]
    lines = []
    for e in entries:
        head = (
            f"{e['at']}  {e['change'] or '-'}  {e['version'] or '-'}  by {e['by']}  "
            f"gate {e['outcome']}  ({e['type']}, run {e['runId']})"
        )
        lines.append(printable(head, 400))
        if e["baseline"]:
            lines.append(
                f"    against {e['baseline']}: {len(e['regressions'])} regression(s), "
                f"{e['improvements']} improvement(s)"
            )
        lines.extend(f"    regression: {printable(r, 300)}" for r in e["regressions"])
        if e["configRevision"]:
            lines.append(f"    config {printable(e['configRevision'], 200)}")
    return lines


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
