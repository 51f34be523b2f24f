"""The time-sensitive tests pass at any hour, in any time zone, and across a month or year end.

Each case runs those tests in a subprocess under Debian's faketime (scripts/ensure-tools
installs it): libfaketime is preloaded and intercepts clock_gettime, so Python's datetime.now
and date.today see the faked time, and so does every process those tests start (pytest
subprocesses, openssl). The clock is shifted, not stopped, so timeouts still run (the
monotonic clock is shifted too: faketime's --exclude-monotonic makes Python's time.sleep fail
with EINVAL); TZ sets the local zone, which the waiver expiry (a local date) and the demo's
New York hours meet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# found by grepping src, checks and tests for datetime.now / date.today: the checks and demo
# parts that read the clock, and the tests of time windows, off hours, expiry and review dates
TIME_SENSITIVE = [
    "tests/test_security_monitoring.py",  # demo security parts, off hours, the 24h window
    "tests/test_plugin.py::test_a_waiver_protects_through_its_expiry_day_and_not_a_day_longer",
    "tests/test_plugin.py::test_expired_waiver_is_a_finding_and_no_longer_protects",
    "tests/test_certificates.py",  # days to expiry, validity, chains against the clock
    "tests/test_certificates_rules.py",
    "tests/test_dependencies_policies.py::test_policy_findings_end_to_end",  # review due dates
    "tests/test_access_review.py::test_a_clean_review_passes",  # inactivity against the clock
    "tests/test_probe_input_files.py::test_auth_log_lines_that_cannot_be_dated_or_parsed_are_counted_not_fatal",
    "tests/test_backups_weekly.py",  # backups stamped with the clock's date
    "tests/test_backup_probes.py::test_manifest_findings_unlisted_missing_and_mismatched",
    "tests/test_backup_probes.py::test_size_change_against_the_previous_backup",
]
# left out: the PostgreSQL session tests (a cluster), the million-line log (memory), and the
# end-to-end runs whose result does not depend on the clock's hour (an unreadable log, a
# password spray, account names)
NOT_TIME_SENSITIVE = "not session and not million and not unreadable and not spray and not known"

RUNS = {  # id: (the UTC instant the clock shows, TZ)
    "03:00Z": (time(3, 0), "UTC"),  # 22:00 in New York: the demo's off-hours window
    "11:00Z": (time(11, 0), "UTC"),
    "22:30Z": (time(22, 30), "UTC"),
    "11:00Z-in-Kiritimati": (time(11, 0), "Pacific/Kiritimati"),  # UTC+14: local date is ahead
    "year-end-in-Kiritimati": (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Pacific/Kiritimati"),
    "first-of-March-in-New-York": (datetime(2027, 3, 1, 0, 30, tzinfo=UTC), "America/New_York"),
}


def _instant(when: time | datetime, now: datetime) -> datetime:
    """A time of day means today's (UTC) date at that time; a datetime is taken as is."""
    if isinstance(when, datetime):
        return when
    return datetime.combine(now.date(), when, tzinfo=UTC)


def _faketime() -> str:
    found = shutil.which("faketime")
    if found is None:
        pytest.fail("faketime is not installed: run scripts/ensure-tools (make test does)")
    return found


def _under_faketime(
    target: datetime, zone: str, argv: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    offset = round((target - datetime.now(UTC)).total_seconds())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["TZ"] = zone
    return subprocess.run(
        [_faketime(), "-m", "-f", f"{offset:+d}", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("run", list(RUNS))
def test_time_sensitive_tests_pass_at_this_hour_and_zone(run: str, tmp_path: Path) -> None:
    when, zone = RUNS[run]
    target = _instant(when, datetime.now(UTC))
    seen = _under_faketime(
        target,
        zone,
        [sys.executable, "-c", "import datetime as d; print(d.datetime.now(d.UTC).isoformat())"],
        timeout=30,
    )
    # libfaketime reaches Python's clock: otherwise this proves nothing
    shown = datetime.fromisoformat(seen.stdout.strip())
    assert abs((shown - target).total_seconds()) < 120, seen.stdout + seen.stderr
    inner = [
        sys.executable, "-m", "pytest", *TIME_SENSITIVE, "-k", NOT_TIME_SENSITIVE,
        "-p", "no:cacheprovider", "-q", "--basetemp", str(tmp_path / "inner"),
    ]  # fmt: skip
    result = _under_faketime(target, zone, inner, timeout=480)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, f"at {target:%Y-%m-%d %H:%M}Z with TZ={zone}:\n{tail}"
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1], tail
