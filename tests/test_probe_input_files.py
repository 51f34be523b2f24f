"""Review findings: hostile or broken operator files give one clear finding, never a traceback.

All inputs are real files on disk; nothing is mocked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_maintcheck.probes import access, authlog, dependencies
from pytest_maintcheck.probes.postgres import ProbeError

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON nesting deeper than Python's recursion limit
# an unclosed quote swallows the rest of the export into one field past csv's 128 KiB limit
UNCLOSED = '"alice,admin,true,2025-01-01,true\n' + "bob,user,true,2025-01-01,true\n" * 6000


def test_an_export_with_an_unclosed_quote_is_one_clear_error(tmp_path: Path) -> None:
    export = tmp_path / "app_users.csv"
    export.write_text("username,role,enabled,lastLogin,mfa\n" + UNCLOSED, encoding="utf-8")
    with pytest.raises(ProbeError, match=r"app_users\.csv"):
        access.file_accounts("app-users", export)


def test_a_roster_with_an_unclosed_quote_is_one_clear_error(tmp_path: Path) -> None:
    roster = tmp_path / "staff.csv"
    roster.write_text("username,status\n" + UNCLOSED, encoding="utf-8")
    with pytest.raises(ProbeError, match=r"staff\.csv"):
        access.read_roster(roster)


def test_a_deeply_nested_json_export_is_one_clear_error(tmp_path: Path) -> None:
    export = tmp_path / "users.json"
    export.write_text(DEEP, encoding="utf-8")
    with pytest.raises(ProbeError, match=r"users\.json"):
        access.file_accounts("app-users", export)


def test_a_deeply_nested_advisory_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text(DEEP, encoding="utf-8")
    found = dependencies.load_advisories(tmp_path)
    assert found.items == []
    assert found.problems
    assert found.problems[0].startswith("deep.json")


@pytest.mark.parametrize(
    "affected",
    [
        "requests",
        ["requests"],
        [{"package": "requests"}],
        [{"package": {"ecosystem": "PyPI", "name": "requests"}, "ranges": ["x"]}],
        [{"package": {"ecosystem": "PyPI", "name": "requests"},
          "ranges": [{"type": "ECOSYSTEM", "events": ["introduced"]}]}],
        [{"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": 5}],
    ],
)  # fmt: skip
def test_a_malformed_osv_advisory_is_a_problem_not_a_crash(
    tmp_path: Path, affected: object
) -> None:
    advisories = tmp_path / "advisories"
    advisories.mkdir()
    (advisories / "GHSA-bad.json").write_text(
        json.dumps({"id": "GHSA-bad", "affected": affected}), encoding="utf-8"
    )
    found = dependencies.load_advisories(advisories)
    pins = [dependencies.Pin("requests", "2.0.0")]
    assert dependencies.vulnerabilities(pins, found.items) == []
    assert any("GHSA-bad" in p for p in found.problems)


def test_auth_log_lines_that_cannot_be_dated_or_parsed_are_counted_not_fatal(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.jsonl"
    good = {"timestamp": datetime.now(UTC).isoformat(), "username": "alice",
            "sourceIp": "10.0.0.1", "outcome": "failure"}  # fmt: skip
    ancient = {**good, "timestamp": "0001-01-01T00:00:00+14:00"}  # before year 1 in UTC
    log.write_text(
        "\n".join([json.dumps(good), json.dumps(ancient), DEEP, json.dumps(good)]) + "\n",
        encoding="utf-8",
    )
    scan = authlog.scan_failed_logins(log, now=datetime.now(UTC), window=3600.0, burst=5)
    assert scan.failures == 2
    assert scan.stats.unparseable == 2
    patterns = authlog.scan_access_patterns(log, now=datetime.now(UTC), window=3600.0)
    assert patterns.stats.unparseable == 2
