"""``maintcheck history import FILE.csv`` and ``maintcheck history export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_maintcheck.config import Config, ConfigError, load_config
from pytest_maintcheck.history import STORE_NAME, HistoryUnavailable, using
from pytest_maintcheck.history.csvio import CsvError, read_runs, write_rows

EXIT_USAGE = 4
EXIT_STORE = 1  # the store could not be used: nothing was imported or exported


def history_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"maintcheck history: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report_dir = args.report_dir.resolve()
    try:
        if args.action == "import":
            return _import(config, report_dir, args.file)
        return _export(config, report_dir, args.output)
    except HistoryUnavailable as exc:
        print(f"maintcheck history: {exc}; nothing was changed", file=sys.stderr)
        return EXIT_STORE


def _import(config: Config, report_dir: Path, file: Path) -> int:
    try:
        with file.open(encoding="utf-8", newline="") as handle:
            runs = read_runs(handle, file.name, config.system, config.environment)
    except OSError as exc:
        print(f"maintcheck history: cannot read {file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CsvError, UnicodeDecodeError, ValueError) as exc:
        print(f"maintcheck history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with using(config.history, report_dir) as store:
        store.record_runs(runs)
        where = store.where
    values = sum(len(c.measurements) for r in runs for c in r.checks)
    print(f"maintcheck history: imported {values} measurements in {len(runs)} runs into {where}")
    return 0


def _export(config: Config, report_dir: Path, output: Path | None) -> int:
    if not config.history.dsn and not (report_dir / STORE_NAME).is_file():
        print(
            f"maintcheck history: no history store at {report_dir / STORE_NAME}; "
            "give the report folder with --report-dir",
            file=sys.stderr,
        )
        return EXIT_USAGE
    with using(config.history, report_dir) as store:
        if output is None:
            count = write_rows(sys.stdout, store.export_rows())
        else:
            try:
                with output.open("w", encoding="utf-8", newline="") as handle:
                    count = write_rows(handle, store.export_rows())
            except OSError as exc:
                print(
                    f"maintcheck history: cannot write {output}: {exc.strerror or exc}",
                    file=sys.stderr,
                )
                return EXIT_USAGE
        where = store.where
    print(f"maintcheck history: exported {count} measurements from {where}", file=sys.stderr)
    return 0
