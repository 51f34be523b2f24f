"""The ``maintcheck`` command: ``demo``, ``run``, ``validate``, ``schema`` and ``history``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="maintcheck", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the suites against a built-in sandbox of real parts")
    demo.add_argument("--suite", default="all", choices=("daily", "weekly", "monthly", "all"))
    demo.add_argument("--apply", action="store_true", help="let the demo repair what it finds")
    demo.add_argument("--report-dir", type=Path, default=Path("reports"))

    run = sub.add_parser(
        "run", help="run the bundled suite with ./maintcheck.yaml; other arguments go to pytest"
    )
    run.add_argument("--config", type=Path, default=Path("maintcheck.yaml"))

    validate = sub.add_parser("validate", help="check a config file and exit (4 when invalid)")
    validate.add_argument("config", type=Path, nargs="?", default=Path("maintcheck.yaml"))

    sub.add_parser("schema", help="print the JSON Schema of maintcheck.yaml")

    history = sub.add_parser("history", help="move measurements in and out of the history store")
    history_sub = history.add_subparsers(dest="action", required=True)
    load = history_sub.add_parser("import", help="load earlier measurements from a CSV file")
    load.add_argument("file", type=Path, help="CSV with at,check,target,metric,value columns")
    dump = history_sub.add_parser("export", help="write every stored measurement as CSV")
    dump.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    for action in (load, dump):
        action.add_argument("--report-dir", type=Path, default=Path("reports"))
        action.add_argument("--config", type=Path, default=Path("maintcheck.yaml"))

    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        return _demo(args.suite, args.apply, args.report_dir.resolve())
    if args.command == "run":
        return _run(args.config, rest)
    if args.command == "validate":
        return _validate(args.config)
    if args.command == "history":
        from pytest_maintcheck.history.cli import history_command

        return history_command(args)
    from pytest_maintcheck.config import schema

    print(json.dumps(schema(), indent=2))
    return 0


def _demo(suite: str, apply: bool, report_dir: Path) -> int:
    from pytest_maintcheck.sandbox import SandboxError
    from pytest_maintcheck.sandbox.demo import run_demo

    marker = "daily or weekly or monthly" if suite == "all" else suite
    try:
        status = run_demo(marker, report_dir, apply=apply)
    except KeyboardInterrupt:
        print("maintcheck demo: interrupted; the sandbox was removed", file=sys.stderr)
        return 130
    except SandboxError as exc:
        print(f"maintcheck demo: cannot start the sandbox: {exc}", file=sys.stderr)
        return 3
    # findings are the point of the demo: a run that produced its records succeeded
    return 0 if status in (0, 1) else status


def _run(config: Path, pytest_args: list[str]) -> int:
    import pytest

    from pytest_maintcheck.sandbox.demo import suite_path

    config = config.resolve()
    if not config.is_file():
        print(f"maintcheck: {config} not found", file=sys.stderr)
        return EXIT_USAGE
    args = [str(suite_path()), "--rootdir", str(Path.cwd()), "--maintcheck-config", str(config)]
    return int(pytest.main([*args, *pytest_args]))


def _validate(path: Path) -> int:
    from pytest_maintcheck.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"maintcheck: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{path}: valid ({len(config.health_checks)} health checks, "
        f"{len(config.databases)} databases)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
