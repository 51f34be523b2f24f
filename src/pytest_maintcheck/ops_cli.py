"""``maintcheck verify``, ``rules``, ``monitoring-config`` and ``schedule``: running it in
operations. ``cli.py`` adds these commands to its parser and hands them here."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Any, NoReturn

from pytest_maintcheck.redact import printable

EXIT_USAGE = 4
EXIT_BROKEN = 1  # verify: a chain is broken
COMMANDS = ("verify", "rules", "monitoring-config", "schedule")
DEFAULT_CONFIG = Path("maintcheck.yaml")


class UsageError(Exception):
    """A bad argument, a missing folder, a config that does not load: exit 4, one line."""


def add_commands(sub: Any) -> None:
    """Add this module's commands to the ``maintcheck`` sub-parsers."""
    verify = _command(
        sub,
        "verify",
        "check the tamper-evident chain of MaintenanceLogs (exit 1 names the first broken run)",
        "Walk each system's chain of runs in the report folder: every file of a run against "
        "its log's manifest, each log against the hash the next run recorded, positions "
        "without gaps, and signatures. Exit 0 when intact, 1 naming the first run whose "
        "records were altered, removed or reordered, 4 on a usage error.",
    )
    verify.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        metavar="PEM",
        help="a trusted Ed25519 public key (openssl pkey -in key.pem -pubout); repeatable. "
        "The configured signing key is trusted too",
    )
    verify.add_argument(
        "--since",
        metavar="RUN_ID",
        help="start each chain at this run (older runs were pruned on purpose)",
    )

    _command(
        sub,
        "rules",
        "print Prometheus alerting rules mirroring the config's thresholds",
        "Print a Prometheus rule file (YAML, valid for promtool check rules) over the "
        "reporting.prometheusTextfile series: a rule per warn and fail level of each target, "
        "one for any violated or degraded check, one per suite overdue for a success.",
    )
    monitoring = _command(
        sub,
        "monitoring-config",
        "print the seed's MonitoringConfig record (metrics, alerts, dashboards) as JSON",
        "Print the MonitoringConfig record of this config as JSON: each exported metric with "
        "its type, interval and retention; each alert with its condition, threshold, "
        "duration and channels; and a dashboard listing.",
    )
    monitoring.add_argument(
        "--retention",
        default="15d",
        help="how long your Prometheus keeps the series (default: 15d, its own default)",
    )
    schedule = _command(
        sub,
        "schedule",
        "print crontab lines (or systemd units) running each suite, with MaintenanceScript records",
        "Print crontab lines running the daily, weekly and monthly suites, each under its "
        "MaintenanceScript record (a comment); install with: maintcheck schedule | crontab -. "
        "With --systemd, a service and a timer unit per suite instead.",
    )
    schedule.add_argument(
        "--systemd", action="store_true", help="systemd service and timer units instead"
    )
    schedule.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="with --systemd: write the unit files into DIR instead of printing them",
    )
    schedule.add_argument("--user", help="with --systemd: User= of the services")
    schedule.add_argument(
        "--log-dir", type=Path, metavar="DIR", help="crontab: where run output goes (report dir)"
    )
    schedule.add_argument(
        "--json", action="store_true", help="print the MaintenanceScript records only, as JSON"
    )


def _command(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description, allow_abbrev=False
    )
    parser.error = types.MethodType(_usage_error, parser)  # type: ignore[method-assign]
    parser.add_argument(
        "--report-dir", type=Path, default=Path("reports"), help="default: ./reports"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the maintenance config (default: ./maintcheck.yaml)",
    )
    return parser


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.print_usage(sys.stderr)
    parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message}\n")


def dispatch(args: argparse.Namespace, rest: list[str]) -> int:
    """Run one of COMMANDS; a usage problem is one line on stderr and exit 4."""
    try:
        if rest:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}; see --help")
        if args.command == "verify":
            return _verify(args)
        config = load_config_arg(args.config, required=True)
        if args.command == "rules":
            return _rules(config)
        if args.command == "monitoring-config":
            return _monitoring(config, args.retention)
        return _schedule(config, args)
    except UsageError as exc:
        print(f"maintcheck {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def load_config_arg(given: Path | None, *, required: bool) -> Any:
    """The config named by --config (which must exist), else ./maintcheck.yaml if present."""
    from pytest_maintcheck.config import ConfigError, load_config

    path = given or DEFAULT_CONFIG
    if not path.is_file():
        if given is not None or required:
            raise UsageError(f"{path}: config not found; pass --config PATH")
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(f"config error: {exc}") from None


# ---------------------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    from pytest_maintcheck.chain import (
        SigningKeyError,
        key_id,
        load_signer,
        public_key_from_file,
        verify,
    )
    from pytest_maintcheck.config import ConfigError

    report_dir: Path = args.report_dir
    if not report_dir.is_dir():
        raise UsageError(f"{report_dir}: no report folder here; pass --report-dir DIR")
    trusted: dict[str, str] = {}
    config = load_config_arg(args.config, required=False)
    if config is not None:
        try:
            signer = load_signer(config)
        except ConfigError as exc:
            raise UsageError(f"config error: {exc}; or pass --public-key") from None
        if signer is not None:
            trusted[key_id(signer.public)] = f"the configured key ({signer.source})"
    for path in args.public_key:
        try:
            trusted[key_id(public_key_from_file(path))] = f"--public-key {path}"
        except SigningKeyError as exc:
            raise UsageError(str(exc)) from None
    chains, unreadable = verify(report_dir, trusted or None, since=args.since)
    broken = bool(unreadable)
    for line in unreadable:
        print(f"BROKEN: {printable(line, 300)}")
    for chain in chains:
        broken |= _print_chain(chain, trusted)
    if not chains and not unreadable:
        print(f"{report_dir}: no runs to verify")
    return EXIT_BROKEN if broken else 0


def _print_chain(chain: Any, trusted: dict[str, str]) -> bool:
    """One system's verdict; True when it is broken."""
    name = printable(chain.name, 200)
    first = chain.first_problem
    if first is not None:
        print(f"{name}: BROKEN at run {printable(first.run, 80)}: {printable(first.what, 400)}")
        others = [p for p in chain.problems if p is not first]
        for problem in sorted(others, key=lambda p: p.position)[:20]:
            print(f"  also: {printable(problem.what, 400)}")
        if len(others) > 20:
            print(f"  ... and {len(others) - 20} more")
        return True
    runs = chain.runs
    span = f"{runs[0].folder.name} to {runs[-1].folder.name}" if runs else "no chained runs"
    print(f"{name}: intact, {len(runs)} run(s) ({span})")
    for kid, count in sorted(chain.signers.items()):
        whose = trusted.get(kid, "not checked against a trusted key: pass --public-key")
        print(f"  {count} signed by key {kid} ({whose})")
    if runs and "signature" not in runs[-1].log:
        print(
            f"  the newest run ({runs[-1].folder.name}) is unsigned: no later run's hash "
            "covers it yet; configure signing to protect it too"
        )
    if chain.before_chain:
        print(f"  {chain.before_chain} older run(s) from before the chain began: not covered")
    return False


# ---------------------------------------------------------------------------- monitoring


def _rules(config: Any) -> int:
    import yaml

    from pytest_maintcheck.export.rules import rules_document

    header = (
        f"# Prometheus alerting rules for {config.system or config.path.name}, "
        "made by maintcheck rules\n"
    )
    body = yaml.safe_dump(rules_document(config), sort_keys=False, allow_unicode=True, width=1000)
    sys.stdout.write(header + body)
    return 0


def _monitoring(config: Any, retention: str) -> int:
    import json

    from pytest_maintcheck.export.rules import monitoring_config
    from pytest_maintcheck.units import UnitError, parse_duration

    try:
        parse_duration(retention)
    except UnitError as exc:
        raise UsageError(f"--retention: {exc}") from None
    sys.stdout.write(json.dumps(monitoring_config(config, retention), indent=2) + "\n")
    return 0


def _schedule(config: Any, args: argparse.Namespace) -> int:
    import json

    from pytest_maintcheck.export.schedule import crontab, scripts, systemd_units

    if (args.output_dir or args.user) and not args.systemd:
        raise UsageError("--output-dir and --user go with --systemd")
    if args.json:
        records = scripts(config, args.report_dir, systemd=args.systemd)
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return 0
    if not args.systemd:
        sys.stdout.write(crontab(config, args.report_dir, args.log_dir))
        return 0
    units = systemd_units(config, args.report_dir, args.user)
    if args.output_dir is None:
        for name, text in units.items():
            sys.stdout.write(f"# ---- {name} ----\n{text}\n")
        return 0
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (args.output_dir / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write into {args.output_dir}: {exc.strerror or exc}") from None
    print(
        f"wrote {len(units)} units into {args.output_dir}; install: copy them to "
        "/etc/systemd/system, then systemctl daemon-reload && systemctl enable --now "
        + " ".join(n for n in units if n.endswith(".timer"))
    )
    return 0
