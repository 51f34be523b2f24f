"""Review findings on the weekly backup checks, run end to end on real files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_runs import run_checks


@pytest.mark.parametrize("nights", [1, 2])
def test_an_empty_backup_fails_the_size_check(
    pytester: pytest.Pytester, tmp_path: Path, nights: int
) -> None:
    # a broken dump job writing 0-byte files: 0 against 0 is "no change", and one file alone
    # had nothing to compare with, so the size check passed
    folder = tmp_path / "backups"
    folder.mkdir()
    now = datetime.now(UTC)
    for night in range(nights):
        (folder / f"clinical-{now - timedelta(days=night):%Y%m%dT%H%M%SZ}.dump").touch()
    config = {
        "version": 1,
        "system": "test",
        "backups": [
            {"name": "nightly", "kind": "pg_dump", "location": str(folder),
             "pattern": "clinical-*.dump"}
        ],
    }  # fmt: skip
    run = run_checks(pytester, config, "test_weekly_backups.py", args=["-k", "backup_size"])
    size = run.by_name["test_backup_size[nightly]"]
    assert size["verdict"] == "violation", size["message"]
    assert "0 bytes" in size["message"]
