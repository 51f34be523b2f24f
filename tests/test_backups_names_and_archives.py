"""Issue 8 points 9 and 20, end to end on real files.

9: a configuration archive whose files are all empty saved nothing, and used to pass.
20: names read from a probed system (backup file names, a storage path) reach the terminal
through printable(): an escape code, a newline forging a "PASSED" line or a bidi override is
shown escaped, never acted on by the terminal.
"""

from __future__ import annotations

import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from check_runs import run_checks

STAMP = "%Y%m%dT%H%M%SZ"
FORGED = "test_weekly_backups.py::test_backup_freshness[forged] PASSED"  # no "/": a name
# an OSC window title, a colour, a newline that starts a forged result line, a bidi override
HOSTILE = f"\x1b]0;owned\x07\x1b[31m\n{FORGED}\u202eevil"
RAW = ("\x1b", "\x07", "\u202e")


def files_backup(name: str, folder: Path, pattern: str) -> dict[str, str]:
    return {"name": name, "kind": "files", "location": str(folder), "pattern": pattern}


def test_a_config_archive_of_empty_files_is_a_violation(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    source = tmp_path / "etc"
    source.mkdir()
    for name in ("app.conf", "pg_hba.conf", "nginx.conf"):
        (source / name).touch()  # truncated before the archive job ran
    tar_dir, zip_dir, good_dir = tmp_path / "tar", tmp_path / "zip", tmp_path / "good"
    for folder in (tar_dir, zip_dir, good_dir):
        folder.mkdir()
    with tarfile.open(tar_dir / f"config-{now:{STAMP}}.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="etc")
    with zipfile.ZipFile(zip_dir / f"config-{now:{STAMP}}.zip", "w") as archive:
        for path in sorted(source.iterdir()):
            archive.write(path, f"etc/{path.name}")
    (source / "app.conf").write_text("listen_addresses = '*'\n")
    with tarfile.open(good_dir / f"config-{now:{STAMP}}.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="etc")
    config = {
        "version": 1,
        "system": "test",
        "backups": [
            files_backup("tar", tar_dir, "config-*.tar.gz"),
            files_backup("zip", zip_dir, "config-*.zip"),
            files_backup("good", good_dir, "config-*.tar.gz"),
        ],
    }
    run = run_checks(pytester, config, "test_weekly_backups.py", args=["-k", "config_backup"])
    for name, members in (("tar", 4), ("zip", 3)):
        check = run.by_name[f"test_config_backup[{name}]"]
        assert check["verdict"] == "violation", check["message"]
        assert f"its {members} members hold 0 bytes" in check["message"]
        assert check["details"]["archive"]["contentBytes"] == 0
    assert run.by_name["test_config_backup[good]"]["verdict"] == "pass"


def test_hostile_backup_names_and_storage_paths_reach_the_terminal_escaped(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    folder = tmp_path / "backups"
    folder.mkdir()
    # the newest backup is stale and shrank: freshness and size name it in their findings
    newest = folder / f"clinical-{now - timedelta(days=3):{STAMP}}{HOSTILE}.dump"
    newest.write_bytes(b"x" * 100)
    older = folder / f"clinical-{now - timedelta(days=4):{STAMP}}-\u202eok.dump"
    older.write_bytes(b"x" * 10_000)
    missing_store = tmp_path / "ecg\x1b[2Jstore"  # a storage path with ESC, gone
    missing_backups = tmp_path / "nightly\x1b]0;x\x07"
    config = {
        "version": 1,
        "system": "test",
        "backups": [
            {"name": "nightly", "kind": "pg_dump", "location": str(folder),
             "pattern": "clinical-*.dump", "maxAge": "26h"},
            {"name": "gone", "kind": "pg_dump", "location": str(missing_backups),
             "pattern": "clinical-*.dump"},
        ],
        "healthChecks": [{"service": "ecg-store", "type": "storage",
                          "endpoint": str(missing_store)}],
    }  # fmt: skip
    run = run_checks(
        pytester,
        config,
        "test_weekly_backups.py",
        "test_daily_health.py",
        args=["-v", "-k", "freshness or backup_size or health"],
    )
    out = run.result.stdout.str() + run.result.stderr.str()
    assert not any(c in out for c in RAW), [
        ln for ln in out.splitlines() if any(c in ln for c in RAW)
    ]
    assert not any(line.startswith(FORGED) for line in out.splitlines())
    # the names are shown, escaped: an operator can still find the file
    assert r"\x1b]0;owned\x07\x1b[31m\x0atest_weekly_backups.py::" in out
    assert r"\u202eevil" in out
    assert r"ecg\x1b[2Jstore" in out
    assert r"nightly\x1b]0;x\x07" in out
    freshness = run.by_name["test_backup_freshness[nightly]"]
    assert freshness["verdict"] == "violation"
    assert "\n" not in freshness["findings"][0]["description"]
