"""Issue 8 point 21: an auth log ending in 400 MB of NULs (a crash before the writer synced)
held 894 MB of memory, one "line" read whole. Lines are read with a length bound now."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_maintcheck.probes.authlog import (
    MAX_LINE_BYTES,
    LoginEvent,
    bounded_lines,
    write_events,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TAIL = 400 * 2**20


def test_a_400_mb_nul_tail_is_one_unparseable_line_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "auth.jsonl"
    write_events(
        path,
        [
            LoginEvent(NOW - timedelta(hours=1), "alice", "10.0.0.1", False),
            LoginEvent(NOW - timedelta(minutes=30), "alice", "10.0.0.1", True),
        ],
    )
    with path.open("r+b") as f:  # a sparse tail of NULs: no disk used, 400 MB to read
        f.truncate(path.stat().st_size + TAIL)
    # a fresh interpreter, so the peak RSS is the scan's own growth over the imports
    script = (
        "import resource, sys\nfrom datetime import datetime\nfrom pathlib import Path\n"
        "from pytest_maintcheck.probes.authlog import scan_failed_logins, scan_access_patterns\n"
        "def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "now, before = datetime.fromisoformat(sys.argv[2]), peak()\n"
        "f = scan_failed_logins(Path(sys.argv[1]), now=now, window=86400, burst=5)\n"
        "a = scan_access_patterns(Path(sys.argv[1]), now=now, window=86400)\n"
        "s = f.stats\n"
        "print(s.lines, s.unparseable, s.overlong, f.attempts, a.logins, peak() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path), NOW.isoformat()],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    lines, unparseable, overlong, attempts, logins, growth_mb = (int(x) for x in out.split())
    assert (lines, unparseable, overlong) == (3, 1, 1)
    assert (attempts, logins) == (2, 1)
    assert growth_mb < 20, f"the scan grew the peak RSS by {growth_mb} MB for a 400 MB NUL tail"


def test_lines_up_to_the_bound_are_kept_and_longer_ones_skipped_whole() -> None:
    at_bound = b"a" * (MAX_LINE_BYTES - 1) + b"\n"
    over = b"b" * (MAX_LINE_BYTES * 3 + 7) + b"\n"
    last = b'{"x": 1}'  # no newline at the end of the file
    got = list(bounded_lines(io.BytesIO(at_bound + over + b"next\n" + last)))
    assert got == [at_bound, None, b"next\n", last]
    assert list(bounded_lines(io.BytesIO(os.urandom(0)))) == []
