"""Two runs of the same suite and config never overlap (issue 12, point 4).

Real pytest processes: one holds the daily lock inside a check that waits for a file, the
other tries to run the daily suite against the same config.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from check_runs import CHECKS, run_dirs
from pytest_maintcheck.runlock import EXIT_LOCKED, LockHeld, RunLock, suites_selected

HOLDER = """
import os, time
from pathlib import Path

import pytest


@pytest.mark.daily
@pytest.mark.weekly
def test_hold():
    Path(os.environ["HOLD_STARTED"]).touch()
    deadline = time.monotonic() + 60
    while not Path(os.environ["HOLD_RELEASE"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config with one real daily check: a storage health probe of a local folder."""
    (tmp_path / "data").mkdir()
    config = {
        "version": 1,
        "system": "Lock test",
        "environment": "test",
        "healthChecks": [{"service": "scratch", "type": "storage", "endpoint": "data"}],
    }
    (tmp_path / "maintcheck.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "test_hold.py").write_text(HOLDER)
    return tmp_path


def _pytest(site: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(site),
        "--maintcheck-config", str(site / "maintcheck.yaml"),
        "--maintcheck-report-dir", str(site / "reports"), *args,
    ]  # fmt: skip


def _env(site: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOLD_STARTED": str(site / "started"),
        "HOLD_RELEASE": str(site / "release"),
    }


def _start_holder(site: Path, suite: str = "daily") -> subprocess.Popen[bytes]:
    holder = subprocess.Popen(
        _pytest(site, "-m", suite, str(site / "test_hold.py")),
        cwd=site,
        env=_env(site),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (site / "started").exists():
        assert holder.poll() is None, "the holding run ended before it took the lock"
        assert time.monotonic() < deadline, "the holding run never started its check"
        time.sleep(0.05)
    return holder


def _listing(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.is_dir() else set()


def _daily_checks(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _pytest(site, *args, str(CHECKS / "test_daily_health.py")),
        cwd=site,
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_second_run_of_the_same_suite_exits_75_naming_the_holder(
    site: Path, extra: list[str]
) -> None:
    holder = _start_holder(site)
    try:
        before = _listing(site / "reports")  # the holder's own staging folder
        second = _daily_checks(site, "-m", "daily", *extra)
        output = second.stdout + second.stderr
        assert second.returncode == EXIT_LOCKED, output
        assert f"pid {holder.pid} on {socket.gethostname()}" in output
        assert "test_hold.py" in output  # the holder's command
        assert "daily suite" in output
        assert _listing(site / "reports") == before  # the second run wrote nothing
    finally:
        (site / "release").touch()
        holder.wait(timeout=60)
    # once the holder is gone the same run goes ahead and writes its records
    again = _daily_checks(site, "-m", "daily")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(run_dirs(site / "reports")) == 1


def test_a_suite_the_holder_does_not_run_is_not_blocked(site: Path) -> None:
    holder = _start_holder(site, suite="weekly")
    try:
        daily = _daily_checks(site, "-m", "daily")
        assert daily.returncode == 0, daily.stdout + daily.stderr
        overlapping = _daily_checks(site, "-m", "daily or weekly")
        assert overlapping.returncode == EXIT_LOCKED
        assert "weekly suite" in overlapping.stdout + overlapping.stderr
    finally:
        (site / "release").touch()
        holder.wait(timeout=60)


def test_a_killed_run_never_blocks_the_next(site: Path) -> None:
    holder = _start_holder(site)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert list(Path(os.environ["MAINTCHECK_LOCK_DIR"]).glob("daily-*.lock"))  # left behind
    after = _daily_checks(site, "-m", "daily")
    assert after.returncode == 0, after.stdout + after.stderr
    assert len(run_dirs(site / "reports")) == 1


def test_the_lock_names_its_holder_to_a_second_taker(tmp_path: Path) -> None:
    config = tmp_path / "maintcheck.yaml"
    first = RunLock(config, ["daily", "weekly"], folder=tmp_path / "locks")
    first.acquire(["maintcheck", "run", "-m", "daily or weekly"])
    try:
        second = RunLock(config, ["weekly"], folder=tmp_path / "locks")
        with pytest.raises(LockHeld) as held:
            second.acquire(["pytest", "-m", "weekly"])
        assert held.value.suite == "weekly"
        assert held.value.holder["pid"] == os.getpid()
        assert held.value.holder["command"] == "maintcheck run -m daily or weekly"
        other = RunLock(tmp_path / "other.yaml", ["weekly"], folder=tmp_path / "locks")
        other.acquire(["pytest"])  # another config: not the same run
        other.release()
    finally:
        first.release()
    second.acquire(["pytest", "-m", "weekly"])
    second.release()


def test_a_lock_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    from pytest_maintcheck.runlock import LockError

    folder = tmp_path / "locks"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(LockError, match="not yours alone"):
        RunLock(tmp_path / "c.yaml", ["daily"], folder=folder).acquire(["pytest"])


@pytest.mark.parametrize(
    ("expression", "suites"),
    [
        ("", ["daily", "weekly", "monthly"]),
        ("daily", ["daily"]),
        ("daily or weekly", ["daily", "weekly"]),
        ("not daily", ["weekly", "monthly"]),
        ("daily and not slow", ["daily"]),
        ("slow", ["daily", "weekly", "monthly"]),  # no suite named: any check may run
    ],
)
def test_the_suites_an_expression_selects(expression: str, suites: list[str]) -> None:
    assert suites_selected(expression) == suites
