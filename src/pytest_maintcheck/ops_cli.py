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
    except UsageError as exc:
        print(f"maintcheck {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"not an ops command: {args.command}")


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
