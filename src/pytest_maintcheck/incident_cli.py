"""``maintcheck incident list | ack ID --by NAME | step ID N --status S``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_maintcheck.incident_store import IncidentStore, StoreError
from pytest_maintcheck.incidents import (
    STEP_STATUSES,
    LifecycleError,
    acknowledge,
    find,
    is_open,
    set_step,
)
from pytest_maintcheck.redact import printable

EXIT_USAGE = 4
EXIT_TEMPFAIL = 75  # another run or command holds the incident state


def add_parser(sub: Any) -> None:
    incident = sub.add_parser(
        "incident",
        help="list, acknowledge and work through incidents",
        description="The incident lifecycle. Incidents are kept in the history store "
        "(REPORT_DIR/history.sqlite, or the config's history.dsn); each run's incidents.json "
        "is a snapshot of them. "
        "Exit 0 on success, 4 on a usage error "
        "(unknown id, step out of range), 75 when another run holds the state for over 60s.",
        allow_abbrev=False,
    )
    commands = incident.add_subparsers(dest="incident_command", required=True)
    listing = commands.add_parser("list", help="open incidents (--all: resolved ones too)")
    listing.add_argument("--all", action="store_true", help="also incidents resolved in 30 days")
    listing.add_argument("--json", action="store_true", help="the records as JSON")
    ack = commands.add_parser(
        "ack", help="acknowledge: sets timeline.responded, step 1 in progress"
    )
    ack.add_argument("id", help="the incident id (INC-3f9a1c) or an unambiguous start of it")
    ack.add_argument("--by", required=True, help="who responds (a name or team)")
    ack.add_argument("--public", help="the update users see on status.html")
    step = commands.add_parser("step", help="set the status of step N (1 = the first)")
    step.add_argument("id", help="the incident id (INC-3f9a1c) or an unambiguous start of it")
    step.add_argument("number", type=int, help="the step's number as `incident list` shows it")
    step.add_argument("--status", required=True, choices=STEP_STATUSES)
    step.add_argument("--public", help="the update users see on status.html")
    for parser in (listing, ack, step):
        parser.add_argument("--report-dir", type=Path, default=Path("reports"))
        parser.add_argument("--config", type=Path, default=None, help="default: ./maintcheck.yaml")


def run(args: argparse.Namespace) -> int:
    from pytest_maintcheck.config import Config, ConfigError, load_config

    config: Config | None = None
    path = args.config or Path("maintcheck.yaml")
    if args.config is not None or path.is_file():
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(f"maintcheck: config error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if args.incident_command == "list":
            return _list(args, config)
        return _change(args, config)
    except LifecycleError as exc:
        print(f"maintcheck incident: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"maintcheck incident: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL


def _ours(incident: dict[str, Any], config: Any) -> bool:
    if config is None:
        return True
    return bool(
        incident.get("system") == config.system
        and incident.get("environment") == config.environment
    )


def _list(args: argparse.Namespace, config: Any) -> int:
    store = IncidentStore(args.report_dir)
    shown = [i for i in store.all() if _ours(i, config) and (args.all or is_open(i))]
    if args.json:
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return 0
    if not shown:
        print("no open incidents" if not args.all else "no incidents")
        return 0
    for i in shown:
        print(_line(i))
        for n, s in enumerate(i.get("steps", []), 1):
            owner = printable(s.get("owner"), 60)
            print(
                f"    {n}. [{s.get('status')}] {printable(s.get('action'), 120)} (owner: {owner})"
            )
    return 0


def _line(i: dict[str, Any]) -> str:
    t = i.get("timeline", {})
    state = "resolved" if not is_open(i) else ("acknowledged" if t.get("responded") else "open")
    by = f" by {printable(i['acknowledgedBy'], 60)}" if i.get("acknowledgedBy") else ""
    return (
        f"{i.get('id')}  {state}{by}  {i.get('severity')}  {i.get('type')}  "
        f"{printable(i.get('title'), 120)}  [{i.get('system')} / {i.get('environment')}]  "
        f"detected {t.get('detected')}, last seen {i.get('lastSeen')}, "
        f"{i.get('occurrences', 1)} run(s)"
    )


def _change(args: argparse.Namespace, config: Any) -> int:
    by = printable(getattr(args, "by", "") or "", 80).strip()
    if args.incident_command == "ack" and not by:
        raise LifecycleError("--by needs a name: who responds")
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    store = IncidentStore(args.report_dir, config.history if config is not None else None)
    # which system's incidents to lock: the id says, read once without the lock
    named = find([i for i in store.all() if _ours(i, config)], args.id)
    system, environment = str(named.get("system", "")), str(named.get("environment", ""))
    with store.open(system, environment, mode=_mode(store)) as held:
        if held.notes:
            raise StoreError(held.notes[0])
        incident = find(held.incidents, str(named.get("id")))
        if args.incident_command == "ack":
            changed = acknowledge(incident, by, stamp)
            said = f"{changed['id']} acknowledged by {by}; step 1 in progress"
        else:
            changed = set_step(incident, args.number, args.status, stamp)
            said = f"{changed['id']} step {args.number}: {args.status}"
        if args.public:
            changed["publicUpdate"] = {"at": stamp, "text": printable(args.public, 300)}
        delivered = _notify(changed, config, now)
        held.save([changed if i is incident else i for i in held.incidents], now, _mode(store))
    for notice in held.notices:
        print(f"maintcheck incident: {notice}", file=sys.stderr)
    print(said)
    for line in delivered:
        print(line)
    if config is not None:
        from pytest_maintcheck.report.status import write_status_page

        try:
            write_status_page(args.report_dir, config, now, _mode(store))
        except OSError as exc:
            print(f"maintcheck incident: status page not written: {exc}", file=sys.stderr)
    return 0


def _mode(store: IncidentStore) -> int:
    from pytest_maintcheck.history import STORE_NAME

    try:  # the store's (or the old state file's) mode: the run chose it
        held = store.path if store.path.is_file() else store.report_dir / STORE_NAME
        return held.stat().st_mode & 0o777
    except OSError:
        from pytest_maintcheck.report.files import FILE_MODE

        return FILE_MODE


def _notify(incident: dict[str, Any], config: Any, now: datetime) -> list[str]:
    """A status update to the channels told of the incident (bounded as in a run)."""
    told = tuple(incident.get("notified", ()))
    if config is None or not told:
        return [] if told else ["nobody was told of this incident yet: no status update sent"]
    from pytest_maintcheck.config import secret_values
    from pytest_maintcheck.notify import Notice, deliver
    from pytest_maintcheck.redact import Redactor

    redact = Redactor([*config.secrets, *secret_values(os.environ)], public=config.public_names)
    outcomes = deliver([Notice("status", incident, told)], config.alerts, redact.walk, now)
    return [
        f"status update to {o['channel']}: "
        + ("delivered" if o["delivered"] else f"not delivered ({o['error']})")
        for o in outcomes
    ]
