"""Review finding: an authentication log with no readable login record cannot pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from check_runs import run_checks


@pytest.mark.parametrize("content", ["", "garbage\nnot json either\n"])
def test_an_empty_or_unreadable_auth_log_cannot_pass(
    pytester: pytest.Pytester, tmp_path: Path, content: str
) -> None:
    # a log writer that stopped (or writes another format) leaves nothing to judge: zero
    # failed logins measured from zero records once passed as "no attacks"
    log = tmp_path / "auth.jsonl"
    log.write_text(content, encoding="utf-8")
    config = {"version": 1, "system": "test", "securityMonitoring": {"authLog": {"file": str(log)}}}
    run = run_checks(pytester, config, "test_daily_security.py", args=["-k", "logins or patterns"])
    for name in ("test_failed_logins", "test_access_patterns"):
        check = run.by_test[name]
        assert check["verdict"] == "violation", check["message"]
        assert "no login record" in check["message"]
