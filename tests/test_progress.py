"""Progress on long work (issue 8, point 27): on a terminal (a real pseudo-terminal here) a
status line says what runs and for how long; piped output carries none of it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_maintcheck import progress
from pytest_maintcheck.probes.restore import communicate_showing_progress
from pytest_maintcheck.sandbox import SandboxApi

CHECKS = Path(__file__).resolve().parents[1] / "checks"
SAMPLE_LATENCY_MS = 700  # five samples, one after another: a fleet probe of some seconds


@pytest.fixture
def slow_api() -> Iterator[SandboxApi]:
    with SandboxApi(latency_ms=SAMPLE_LATENCY_MS) as api:
        yield api


def _project(folder: Path, api: SandboxApi) -> list[str]:
    config = {
        "version": 1,
        "healthChecks": [
            {
                "service": "api",
                "type": "api",
                "endpoint": api.url("/health"),
                "samples": 5,
                "thresholds": {"responseTime": {"warn": 5000, "fail": 9000}},
            }
        ],
    }
    (folder / "maintcheck.yaml").write_text(yaml.safe_dump(config))
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        str(CHECKS / "test_daily_health.py"),
        "--rootdir",
        str(folder),
        "--maintcheck-config",
        str(folder / "maintcheck.yaml"),
    ]


def _run_on_a_terminal(argv: list[str], cwd: Path, seconds: float = 120) -> str:
    """Run argv with stdout and stderr on a new pseudo-terminal; everything it drew."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
    )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child side closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_sees_the_fleet_probe_running(tmp_path: Path, slow_api: SandboxApi) -> None:
    drawn = _run_on_a_terminal(_project(tmp_path, slow_api), tmp_path)
    assert "1 passed" in drawn, drawn
    shown = re.findall(r"\x1b7  (maintcheck: [^\x1b]*)\x1b8", drawn)
    assert "maintcheck: probing 1 service(s), 0/1, 0s" in shown, drawn
    assert "maintcheck: probing 1 service(s), 0/1, 2s" in shown  # redrawn while it waits
    assert drawn.count("\x1b[K") > len(shown)  # cleared once the probe ended


def test_piped_output_carries_no_status_line(tmp_path: Path, slow_api: SandboxApi) -> None:
    out = subprocess.run(
        _project(tmp_path, slow_api), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "1 passed" in out.stdout, out.stdout + out.stderr
    assert "probing" not in out.stdout + out.stderr
    assert "\x1b" not in out.stdout + out.stderr


def test_a_restore_shows_its_dump_and_elapsed_time_against_its_limit() -> None:
    drawn: list[str | None] = []
    progress.set_sink(drawn.append)
    try:
        # a real process standing in for pg_restore: it is the waiting that is shown
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(2.5)"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        communicate_showing_progress(proc, 30, "restoring clinical-20260101.dump")
    finally:
        progress.set_sink(None)
    assert drawn[0] == "maintcheck: restoring clinical-20260101.dump, 0s of at most 30s"
    assert "maintcheck: restoring clinical-20260101.dump, 2s of at most 30s" in drawn
    assert drawn[-1] is None  # cleared when it ended


def test_no_sink_no_thread_no_output() -> None:
    before = {t.name for t in __import__("threading").enumerate()}
    with progress.task("probing 3 service(s)", total=3) as shown:
        shown.advance()
        assert (
            "maintcheck-progress"
            not in {t.name for t in __import__("threading").enumerate()} - before
        )
    assert shown.done == 1


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.9, "59s"), (65, "1m05s"), (3600 * 2 + 60 * 7, "2h07m")]
)
def test_elapsed_reads_like_a_clock(seconds: float, text: str) -> None:
    assert progress.elapsed_text(seconds) == text
