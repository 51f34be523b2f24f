"""Benchmark: what the installed plugin costs a project's own suite that has no maintenance check.

    .venv/bin/python bench/plain_suite.py [--tests 500] [--repeat 7]

A generated project of ``tests`` plain tests (some with fixtures, some parametrized), run with
the plugin loaded against the same run with ``-p no:maintcheck``: once without a
maintcheck.yaml, once with one beside the tests (checks elsewhere, none selected). Runs
alternate; the median CPU time of each is reported. Goal: at most 1.04x (issue 16, point 2).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

GOAL = 1.04

TESTS = """
import pytest

@pytest.fixture
def backup():
    return {{"name": "nightly"}}

@pytest.mark.parametrize("n", range({n}))
def test_param(n):
    assert n >= 0

def test_fixture(backup):
    assert backup["name"] == "nightly"
"""


def make_project(root: Path, tests: int) -> None:
    per_file = 50
    for i in range(tests // per_file):
        (root / f"test_plain_{i}.py").write_text(TESTS.format(n=per_file - 1))


def timed(root: Path, extra: list[str]) -> float:
    """CPU seconds (user + system) of one pytest run: steadier than wall time on a busy box."""
    env = {**os.environ, "PYTEST_ADDOPTS": "-p no:randomly -p no:sugar -p no:cacheprovider"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *extra],
        cwd=root,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(root: Path, repeat: int) -> tuple[float, float]:
    on: list[float] = []
    off: list[float] = []
    timed(root, [])  # warm the byte-code caches
    for _ in range(repeat):
        on.append(timed(root, []))
        off.append(timed(root, ["-p", "no:maintcheck"]))
    return statistics.median(on), statistics.median(off)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, args.tests)
        for label in ("no maintcheck.yaml", "maintcheck.yaml, no check selected"):
            if label.startswith("maintcheck.yaml"):
                (root / "maintcheck.yaml").write_text("version: 1\nsystem: bench\n")
            on, off = compare(root, args.repeat)
            ratio = on / off
            worst = max(worst, ratio)
            print(
                f"{args.tests} plain tests, {label}: plugin on {on:.3f}s, off {off:.3f}s, "
                f"ratio {ratio:.3f} (goal <= {GOAL})"
            )
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
