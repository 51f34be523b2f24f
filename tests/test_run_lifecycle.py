"""A run's life (issue 8, points 15-17 and fail-on): SIGTERM, a full or read-only report folder,
broken files of earlier runs, and --maintcheck-fail-on=degraded. Real subprocesses, real
signals, real filesystems (a small tmpfs for a full disk and a read-only one)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from check_runs import newest_run, read_record, run_dirs

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]

CHECKS = """
import time
from pathlib import Path

import pytest
from pytest_maintcheck.verdict import Threshold

LIMIT = Threshold.parse("responseTime", {"warn": 300, "fail": 800})
HERE = Path(__file__).parent


@pytest.mark.maintcheck("health")
@pytest.mark.parametrize("value", [100, 900], ids=["api", "viewer"])
def test_fast(value, assessment):
    assessment.measure(LIMIT, value, subject="clinical-api")


@pytest.mark.maintcheck("backup_restore")
def test_slow(assessment):
    (HERE / "slow-started").touch()
    time.sleep(120)  # a long restore; the run is stopped here
    assessment.measure(LIMIT, 100, subject="clinical-nightly")


@pytest.mark.maintcheck("certificate")
def test_after(assessment):
    (HERE / "after-started").touch()
    assessment.measure(LIMIT, 100, subject="api")
"""


FAST_ONLY = CHECKS.split('@pytest.mark.maintcheck("backup_restore")')[0]


def _project(folder: Path, checks: str = CHECKS, config: str = "") -> Path:
    (folder / "maintcheck.yaml").write_text("version: 1\nsystem: test system\n" + config)
    (folder / "test_checks.py").write_text(checks)
    return folder


def _run(folder: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYTEST, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ---------------------------------------------------------------------------- SIGTERM


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_sigterm_mid_run_stops_and_writes_the_records_of_what_finished(
    tmp_path: Path, workers: list[str]
) -> None:
    _project(tmp_path)
    proc = subprocess.Popen(
        [*PYTEST, *workers, "-p", "no:randomly"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # cron, systemd and CI signal the whole process group
    )
    try:
        _wait_for(tmp_path / "slow-started", proc)
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert not (tmp_path / "after-started").exists(), "the run went on after SIGTERM"
    assert "Traceback" not in output
    reports = tmp_path / "reports"
    assert not list(reports.glob(".staging-*"))
    run = newest_run(reports, output)
    log = read_record(run, "maintenance-log.json")
    assert log["status"] == "failed"
    checks = {c["name"]: c["verdict"] for c in read_record(run, "results.json")["checks"]}
    assert checks == {"test_fast[api]": "pass", "test_fast[viewer]": "violation"}
    assert (run / "report.html").is_file()


def test_the_sigterm_handler_is_given_back_after_the_run(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", maintcheck="version: 1\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")

    def mine(signum: int, frame: object) -> None:
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        pytester.runpytest_inprocess().assert_outcomes(passed=1)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


# ---------------------------------------------------------------------------- full or read-only


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (we run as root; mount needs it)."""
    mount_point = tmp_path / "reports"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill the disk until `leave` bytes are free (tmpfs counts whole 4 KiB pages)."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while os.write(fd, b"\0" * 4096):
                pass
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)


def _left_in(disk: Path) -> set[str]:
    # the incident store's lock file is empty: it holds no record
    return {p.name for p in disk.iterdir()} - {"filler", "incidents-state.lock"}


def test_a_full_disk_leaves_the_summary_and_whole_records_without_the_page(
    tmp_path: Path, small_disk: Path
) -> None:
    _project(tmp_path, FAST_ONLY)
    # 9 pages: the records and history take one each, the index two; the ~45 KiB page needs 11
    _fill(small_disk, leave=9 * 4096)
    out = _run(tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == pytest.ExitCode.INTERNAL_ERROR, text
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    assert "1 failed, 1 passed" in out.stdout
    assert "maintcheck findings" in out.stdout
    (run,) = run_dirs(small_disk)
    # the page does not fit; what a run writes after its records (the index, the incident
    # state, the history store) may not either: each is named, none is left half-written
    lines = [ln for ln in out.stdout.splitlines() if "could not write" in ln]
    assert f"maintcheck: could not write {run}/report.html: No space left on device" in lines
    assert all(ln.endswith("No space left on device") for ln in lines), lines
    assert not [p for p in small_disk.rglob(".*") if p.is_file()]  # no temp file anywhere
    assert f"maintcheck records: {run} (without that file)" in out.stdout
    assert not (run / "report.html").exists()  # no truncated page
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".")]
    assert read_record(run, "maintenance-log.json")["status"] == "completed"


def test_a_disk_too_full_for_the_records_leaves_no_partial_file(
    tmp_path: Path, small_disk: Path
) -> None:
    _project(tmp_path, FAST_ONLY)
    _fill(small_disk, leave=0)
    out = _run(tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == pytest.ExitCode.INTERNAL_ERROR, text
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    assert "1 failed, 1 passed" in out.stdout
    assert "could not write" in out.stdout
    assert "No space left on device" in out.stdout
    assert "maintcheck records: not written" in out.stdout
    assert _left_in(small_disk) == set()  # no run folder, no staging folder, no temp file


def test_a_read_only_report_folder_is_refused_before_any_check_runs(
    tmp_path: Path, small_disk: Path
) -> None:
    _project(tmp_path, FAST_ONLY)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    out = _run(tmp_path)
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "INTERNALERROR" not in out.stdout + out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"ERROR: maintcheck: cannot write to the report folder {small_disk}")
    assert "Read-only file system" in line
    assert "passed" not in out.stdout
    assert "failed" not in out.stdout


# ---------------------------------------------------------------------------- earlier runs


def test_broken_incidents_of_an_earlier_run_are_reported_and_skipped(tmp_path: Path) -> None:
    _project(tmp_path, FAST_ONLY)
    first = _run(tmp_path)
    reports = tmp_path / "reports"
    first_run = newest_run(reports, first.stdout)
    (incident,) = read_record(first_run, "incidents.json")
    assert incident["nodeid"].endswith("test_fast[viewer]")
    # the kept incident state broke (a hand edit): the run folders' snapshots are read instead
    with sqlite3.connect(reports / "history.sqlite") as store:
        store.execute("UPDATE incidents SET record = '7'")
    # two later runs whose incidents.json broke (a crash, a hand edit), in run-id order
    broken = {
        first_run.name + "-1": '[1, {"check": 5}, {"check": "x", "timeline": 3}]',
        first_run.name + "-2": "{not json",
    }
    for run_id, content in broken.items():
        (reports / run_id).mkdir()
        (reports / run_id / "incidents.json").write_text(content)
    out = _run(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "INTERNALERROR" not in out.stdout + out.stderr
    # the run's own notes about incidents; the tmp folder's name (this test's) says
    # "incidents" too, so it is left out of the match
    notes = [
        ln
        for ln in out.stdout.splitlines()
        if ln.startswith("maintcheck: ") and "incidents" in ln.replace(str(tmp_path), "")
    ]
    assert len(notes) == 3, out.stdout
    assert "history.sqlite: the incidents of" in notes[0]
    assert "unreadable (an incident row holds int" in notes[0]
    assert "-2/incidents.json: unreadable" in notes[1]
    assert notes[1].endswith("skipped")
    assert "-1/incidents.json: 3 malformed incident(s) skipped" in notes[2]
    (carried,) = read_record(newest_run(reports), "incidents.json")  # read from the first run
    assert carried["check"] == incident["check"]
    assert carried["timeline"]["detected"] == incident["timeline"]["detected"]


# ---------------------------------------------------------------------------- fail-on


def test_fail_on_degraded_is_the_same_as_warning(tmp_path: Path) -> None:
    _project(tmp_path, FAST_ONLY.replace("[100, 900]", "[100, 500]"))
    assert _run(tmp_path).returncode == 0
    for level in ("warning", "degraded"):
        out = _run(tmp_path, f"--maintcheck-fail-on={level}")
        assert out.returncode == 1, out.stdout + out.stderr
