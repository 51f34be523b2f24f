"""The ``maintcheck`` command: ``demo``, ``run``, ``validate``, ``review``, ``schema``, ``history``
and the operations commands (``rules``, ``schedule``, ``verify`` ...)."""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
from pathlib import Path

EXIT_USAGE = 4
EXIT_PROBLEMS = 1  # validate --online found a target that does not answer as the checks need
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell tool reading into `head` ends with

RUN_DESCRIPTION = """\
Run the bundled maintenance suite against ./maintcheck.yaml (or --config PATH).

Every other argument goes to pytest unchanged, for example:
  maintcheck run -m daily
  maintcheck run -m "weekly or monthly" --maintcheck-fail-on=warning --junitxml=gate.xml
  maintcheck run --co -q                 # list the checks without running them
The pytest ini file of the folder you run from (pytest.ini, .pytest.ini, pyproject.toml,
tox.ini, setup.cfg) applies, as it would to pytest itself; reports go to ./reports.
pytest's own options: pytest --help.
"""

RUN_EPILOG = """\
markers (select with -m; they combine: -m "daily or weekly"):
  daily      service health, security monitoring
  weekly     database maintenance, backups, load balancing
  monthly    certificates, access review, dependencies, policies

exit status:
  0  nothing at or above --maintcheck-fail-on (violation; warning or degraded for warnings)
  1  a check failed (a violation, or a warning with --maintcheck-fail-on=warning)
  2  interrupted (Ctrl-C or SIGTERM): records of the checks that finished, status failed
  3  internal error, or the records could not be written (disk full): the summary says which
  4  usage or config error (one line naming file, line and key), or a report folder that
     cannot be written
  5  no check selected
  75 another run of the same suite and config holds the run lock: nothing was done
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-maintcheck")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        from pytest_maintcheck import __version__

        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maintcheck",
        description="A clinical system's maintenance procedures as pytest checks: run them, "
        "validate their config, and read, export and verify what the runs recorded.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"maintcheck {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="run the suites against a built-in sandbox of real parts", allow_abbrev=False
    )
    demo.add_argument("--suite", default="all", choices=("daily", "weekly", "monthly", "all"))
    demo.add_argument("--apply", action="store_true", help="let the demo repair what it finds")
    demo.add_argument("--report-dir", type=Path, default=Path("reports"))

    run = sub.add_parser(
        "run",
        help="run the bundled suite and the test_*.py files beside ./maintcheck.yaml; "
        "other arguments go to pytest",
        description=RUN_DESCRIPTION,
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `run --co` is pytest's --collect-only, not --config
    )
    run.add_argument(
        "--config",
        type=Path,
        default=Path("maintcheck.yaml"),
        help="the maintenance config (default: ./maintcheck.yaml)",
    )

    validate = sub.add_parser(
        "validate",
        help="check a config file and exit (4 when invalid)",
        description="Check the config: exit 0 when valid, 4 with one line when not. "
        "A waiver naming no existing check or target is an error too. With --online, also "
        "reach every path, database and endpoint: exit 1 with one line per problem.",
        allow_abbrev=False,
    )
    validate.add_argument("config", type=Path, nargs="?", default=Path("maintcheck.yaml"))
    validate.add_argument(
        "--online",
        action="store_true",
        help="also check that paths can be read, databases answer with the privileges the "
        "checks need and endpoints answer (each probe bounded by a 5s timeout)",
    )

    review = sub.add_parser(
        "review",
        help="write the monthly review document (HTML) from earlier runs; runs no check",
        description="Write one self-contained HTML document for the monthly compliance audit "
        "from the run folders of --report-dir: compliance per category with its evidence, "
        "availability against targets, incidents, capacity, the access review sign-off list, "
        "policy dates, dependency and certificate findings, waivers. Prints its path.",
        allow_abbrev=False,
    )
    review.add_argument("--month", help="YYYY-MM (default: last month)")
    review.add_argument("--report-dir", type=Path, default=Path("reports"))
    review.add_argument(
        "--config", type=Path, help="a config whose waivers are listed too (optional)"
    )
    review.add_argument("--output", type=Path, help="default: REPORT_DIR/review-YYYY-MM.html")

    sub.add_parser("schema", help="print the JSON Schema of maintcheck.yaml", allow_abbrev=False)
    from pytest_maintcheck import ops_cli  # verify, rules, monitoring-config, schedule

    history = sub.add_parser("history", help="move measurements in and out of the history store")
    history_sub = history.add_subparsers(dest="action", required=True)
    load = history_sub.add_parser("import", help="load earlier measurements from a CSV file")
    load.add_argument("file", type=Path, help="CSV with at,check,target,metric,value columns")
    dump = history_sub.add_parser("export", help="write every stored measurement as CSV")
    dump.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    for action in (load, dump):
        action.add_argument("--report-dir", type=Path, default=Path("reports"))
        action.add_argument("--config", type=Path, default=Path("maintcheck.yaml"))

    ops_cli.add_commands(sub)
    from pytest_maintcheck.incident_cli import add_parser as add_incident

    add_incident(sub)
    from pytest_maintcheck.change_cli import add_parser as add_changes

    add_changes(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except SystemExit as exc:  # argparse's usage errors exit 2; the contract says 4
        if exc.code == 2:
            return EXIT_USAGE
        raise
    except BrokenPipeError:  # the reader went away (`maintcheck schema | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's final flush must not fail again
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    from pytest_maintcheck import ops_cli

    if args.command in ops_cli.COMMANDS:
        return ops_cli.dispatch(args, rest)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        return _demo(args.suite, args.apply, args.report_dir.resolve())
    if args.command == "run":
        return _run(args.config, rest)
    if args.command == "validate":
        return _validate(args.config, online=args.online)
    if args.command == "history":
        from pytest_maintcheck.history.cli import history_command

        return history_command(args)
    if args.command == "review":
        return _review(args.month, args.report_dir, args.config, args.output)
    if args.command == "incident":
        from pytest_maintcheck import incident_cli

        return incident_cli.run(args)
    if args.command == "changes":
        from pytest_maintcheck import change_cli

        return change_cli.run(args)
    from pytest_maintcheck.config import schema

    sys.stdout.write(json.dumps(schema(), indent=2) + "\n")
    sys.stdout.flush()
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


def _review(month: str | None, report_dir: Path, config: Path | None, output: Path | None) -> int:
    from datetime import UTC, datetime

    from pytest_maintcheck.config import ConfigError, load_config
    from pytest_maintcheck.report.review import ReviewError, last_month, write_review

    month = month or last_month(datetime.now(UTC).date())
    waivers: list[dict[str, str]] = []
    settings, systems = None, None  # without a config: the store in the report folder, every system
    if config is not None:
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            print(f"maintcheck: config error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        waivers = [
            {"check": w.check, "justification": w.justification, "expires": w.expires.isoformat()}
            for w in loaded.waivers
        ]
        settings, systems = loaded.history, {(loaded.system, loaded.environment)}
    if not report_dir.is_dir():
        print(f"maintcheck: {report_dir}: no such report folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = write_review(
            report_dir, month, settings=settings, systems=systems, output=output, waivers=waivers
        )
    except ReviewError as exc:
        print(f"maintcheck: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"maintcheck: cannot write the review: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(path)
    return 0


def _run(config: Path, pytest_args: list[str]) -> int:
    import pytest

    from pytest_maintcheck.sandbox.demo import suite_path

    config = config.resolve()
    if not config.is_file():
        print(f"maintcheck: {config} not found", file=sys.stderr)
        return EXIT_USAGE
    paths = [str(suite_path()), *(str(p) for p in site_check_files(config.parent))]
    args = [*paths, "--rootdir", str(Path.cwd()), "--maintcheck-config", str(config)]
    ini = local_ini(Path.cwd())
    if ini is not None and not _names_ini(pytest_args):
        args += ["-c", str(ini)]  # the suite lives in the package; the ini is the operator's
    return int(pytest.main([*args, *pytest_args]))


def site_check_files(folder: Path) -> list[Path]:
    """The operator's own checks: pytest's test files directly beside the config."""
    found = {*folder.glob("test_*.py"), *folder.glob("*_test.py")}
    return sorted(p for p in found if p.is_file())


def local_ini(folder: Path) -> Path | None:
    """The pytest ini file pytest itself would read in this folder (same names, same order)."""
    for name, section in (
        ("pytest.ini", None),
        (".pytest.ini", None),
        ("pyproject.toml", "tool.pytest.ini_options"),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    ):
        path = folder / name
        if path.is_file() and (section is None or _has_section(path, section)):
            return path
    return None


def _has_section(path: Path, section: str) -> bool:
    try:
        if path.suffix == ".toml":
            import tomllib

            tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            return isinstance(tool.get("pytest", {}).get("ini_options"), dict)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
        return parser.has_section(section)
    except (OSError, ValueError, configparser.Error):
        return False  # pytest will say what is wrong with it if it reads it


def _names_ini(pytest_args: list[str]) -> bool:
    return any(
        a in ("-c", "--config-file") or a.startswith(("--config-file=", "-c")) for a in pytest_args
    )


def _validate(path: Path, *, online: bool) -> int:
    from pytest_maintcheck.config import ConfigError, load_config
    from pytest_maintcheck.sandbox.demo import suite_path
    from pytest_maintcheck.validate import check_names, online_problems, waiver_problems

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"maintcheck: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # the operator's own checks live beside the config (or in checks/ there)
    here = path.resolve().parent
    names = check_names((suite_path(), here, here / "checks"))
    waivers = waiver_problems(config, names)
    for problem in waivers:
        print(f"maintcheck: config error: {problem}", file=sys.stderr)
    if waivers:
        return EXIT_USAGE
    if online:
        problems = online_problems(config)
        for problem in problems:
            print(f"maintcheck: {problem}", file=sys.stderr)
        if problems:
            return EXIT_PROBLEMS
    print(
        f"{path}: valid ({len(config.health_checks)} health checks, "
        f"{len(config.databases)} databases)" + (", every target answered" if online else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
