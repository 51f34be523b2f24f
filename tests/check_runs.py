"""Run check modules end to end in a pytest subprocess and read the run folder they write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

CHECKS = Path(__file__).resolve().parents[1] / "checks"
MAINTCHECK = (sys.executable, "-m", "pytest_maintcheck.cli")


def run_dirs(report_dir: Path) -> list[Path]:
    """The run folders in a report dir, oldest first (it also holds index.html, history.jsonl)."""
    if not report_dir.is_dir():
        return []
    return sorted(p for p in report_dir.iterdir() if p.is_dir())


def newest_run(report_dir: Path, output: str = "") -> Path:
    """The newest run folder; output (what the run printed) explains a missing one."""
    runs = run_dirs(report_dir)
    assert runs, output or f"no run folder in {report_dir}"
    return runs[-1]


def read_record(run_dir: Path, name: str) -> Any:
    """One JSON record of a run folder (results.json, health.json, ...)."""
    return json.loads((run_dir / name).read_text())


@dataclass(frozen=True)
class CheckRun:
    result: pytest.RunResult
    run_dir: Path

    def record(self, name: str) -> Any:
        return read_record(self.run_dir, name)

    @property
    def check_list(self) -> list[dict[str, Any]]:
        """The checks of results.json, in its order."""
        checks: list[dict[str, Any]] = self.record("results.json")["checks"]
        return checks

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        """results.json checks keyed by target (the config entry a check ran for)."""
        return {c["target"]: c for c in self.check_list}

    @property
    def by_name(self) -> dict[str, dict[str, Any]]:
        """results.json checks keyed by test name with its parameters: test_x[target]."""
        return {c["name"]: c for c in self.check_list}

    @property
    def by_test(self) -> dict[str, dict[str, Any]]:
        """results.json checks keyed by test function: test_x."""
        return {c["name"].split("[")[0]: c for c in self.check_list}


def run_checks(
    pytester: pytest.Pytester,
    config: Mapping[str, Any],
    *selection: str,
    args: Sequence[str] = (),
    report_dir: Path | None = None,
) -> CheckRun:
    """Write config as maintcheck.yaml, run the selected checks (paths under checks/, with an
    optional ::test) in a subprocess and return its newest run folder. Without report_dir the
    plugin's default (reports/ under the rootdir) is used and no option is passed."""
    path = pytester.path / "maintcheck.yaml"
    path.write_text(yaml.safe_dump(dict(config)))
    report_args = [] if report_dir is None else ["--maintcheck-report-dir", str(report_dir)]
    result = pytester.runpytest_subprocess(
        *(str(CHECKS / s) for s in selection),
        "--maintcheck-config", str(path), "-p", "no:cacheprovider",
        "--rootdir", str(pytester.path), *report_args, *args,
    )  # fmt: skip
    run_dir = newest_run(report_dir or pytester.path / "reports", result.stdout.str())
    return CheckRun(result, run_dir)


def maintcheck(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The maintcheck command, as an operator runs it: env adds to this process's."""
    return subprocess.run(
        [*MAINTCHECK, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec_fn,  # only a resource limit, set before exec
    )


def pytest_run(
    rootdir: Path,
    config: Path,
    *selection: str,
    report_dir: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """pytest on checks (paths under checks/, with an optional ::test) with a config file,
    as cron runs it: no pytester, so the run's own files are all there is."""
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", *(str(CHECKS / s) for s in selection),
            "-p", "no:cacheprovider", "--rootdir", str(rootdir),
            "--maintcheck-config", str(config), "--maintcheck-report-dir", str(report_dir),
            *args,
        ],
        cwd=rootdir, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
