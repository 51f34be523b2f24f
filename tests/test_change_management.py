"""Change management (issue 17): the deploy gate before and after a change, on real runs.

Real HTTP services (the sandbox API), a real PostgreSQL with real pg_dump backups and restore
tests, a real git repository; each run is a pytest subprocess writing its run folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from check_runs import CheckRun, run_checks
from pytest_maintcheck.change import (
    RestoredBackup,
    config_revision,
    read_version,
    rollback_point,
)
from pytest_maintcheck.cli import main
from pytest_maintcheck.config import HistorySettings
from pytest_maintcheck.history import using
from pytest_maintcheck.probes.http import sample_endpoint
from pytest_maintcheck.sandbox import PostgresCluster, SandboxApi, SandboxDatabase
from test_backups import (
    RESTORER_PASSWORD,
    backup_entry,
    pg_dump,
    seed_clinical,
    stamped,
    write_manifest,
)

pytest_plugins = ["pytester"]


# ---------------------------------------------------------------------------- helpers


def health(service: str, api: SandboxApi) -> dict[str, Any]:
    return {
        "service": service,
        "type": "api",
        "endpoint": api.url("/health"),
        "samples": 3,
        "timeout": "5s",
        "versionPointer": "/build/version",
        # wide enough that a slowdown to 300 ms crosses no threshold: only the shift finds it
        "thresholds": {"responseTime": {"warn": 3000, "fail": 5000}, "errorRate": 0.5},
    }


def gate(pytester: pytest.Pytester, cfg: dict[str, Any], *args: str) -> CheckRun:
    return run_checks(
        pytester,
        cfg,
        "test_daily_health.py",
        "test_change_gate.py",
        args=["-m", "daily", *args],
    )


def log_of(run: CheckRun) -> dict[str, Any]:
    record: dict[str, Any] = run.record("maintenance-log.json")
    return record


# ---------------------------------------------------------------------------- before / after


def test_a_deploy_that_slows_one_service_and_breaks_another_is_a_regression(
    pytester: pytest.Pytester,
) -> None:
    with (
        SandboxApi(version="2.4.0") as steady,
        SandboxApi(version="2.4.0") as slowing,
        SandboxApi(version="2.4.0") as breaking,
        SandboxApi(version="2.4.0", health_status=503) as fixed,
    ):
        cfg = {
            "version": 1,
            "system": "cardiology",
            "environment": "production",
            "healthChecks": [
                health("api-steady", steady),
                health("api-slowing", slowing),
                health("api-breaking", breaking),
                health("api-fixed", fixed),
            ],
        }
        change = ["--maintcheck-change", "CHG-7", "--maintcheck-version", "2.5.0"]
        before = gate(pytester, cfg, *change)  # the gate before the deploy
        assert before.result.ret == 1, before.result.stdout.str()  # api-fixed is down
        assert log_of(before)["type"] == "update"
        assert log_of(before)["change"]["baseline"] is None
        assert before.checks["api-steady"]["details"]["version"] == "2.4.0"

        # the deploy: one service slows down, one starts failing, one is repaired
        for api in (steady, slowing, breaking, fixed):
            api.version = "2.5.0"
        slowing.latency_ms = 300
        breaking.health_status = 503
        fixed.health_status = 200
        after = gate(pytester, cfg, *change, "--maintcheck-baseline", "auto")

    assert after.result.ret == 1
    change_log = log_of(after)["change"]
    assert change_log["id"] == "CHG-7"
    assert change_log["version"] == "2.5.0"
    assert change_log["baseline"]["runId"] == before.run_dir.name
    assert change_log["outcome"] == "refused"
    regressions = {(r["target"], r["kind"]): r for r in change_log["regressions"]}
    assert set(regressions) == {("api-breaking", "verdict"), ("api-slowing", "shift")}
    broke = regressions[("api-breaking", "verdict")]
    assert (broke["before"], broke["now"]) == ("pass", "violation")
    slowed = regressions[("api-slowing", "shift")]
    assert slowed["metric"] == "responseTime"
    assert slowed["versions"] == {"before": "2.4.0", "now": "2.5.0"}
    assert after.checks["api-slowing"]["verdict"] == "pass"  # no threshold was crossed
    assert change_log["regressions"][0]["target"] == "api-breaking"  # verdicts before shifts
    assert [i["target"] for i in change_log["improvements"]] == ["api-fixed"]
    assert after.checks["api-slowing"]["details"]["version"] == "2.5.0"

    # listed first: the log's findings, the terminal, report.html
    findings = log_of(after)["details"]["findings"]
    assert findings[0].startswith("[high] regression since ")
    assert "api-breaking" in findings[0]
    assert log_of(after)["details"]["followUp"][0].endswith("consider rolling back 2.5.0")
    out = after.result.stdout.str()
    section = out.index("maintcheck change CHG-7 (2.5.0): gate refused")
    assert section < out.index("maintcheck findings")
    first = out[section:].splitlines()[1]
    assert first.startswith("REGRESSION [high] test_health[api-breaking]: pass -> violation")
    assert first.endswith("consider rolling back 2.5.0")
    assert "SHIFT [high] test_health[api-slowing]: p95 response time rose" in out
    assert "improved: test_health[api-fixed]: violation -> pass" in out
    page = (after.run_dir / "report.html").read_text()
    assert page.index('id="change"') < page.index('id="needs-attention"')
    assert "consider rolling back 2.5.0" in page

    # the version is in the history, per service and run
    with using(HistorySettings(), pytester.path / "reports") as store:
        earlier = store.run(before.run_dir.name)
    assert earlier is not None
    assert {c.target: c.version for c in earlier.checks}["api-slowing"] == "2.4.0"
    assert earlier.change is not None
    assert earlier.change["id"] == "CHG-7"


def test_the_change_log_lists_update_runs_with_their_regressions(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    with SandboxApi(version="3.1.0") as api:
        cfg = {"version": 1, "system": "cardiology", "healthChecks": [health("api", api)]}
        routine = gate(pytester, cfg)
        first = gate(pytester, cfg, "--maintcheck-change", "CHG-1", "--maintcheck-version", "3.2")
        api.health_status = 503
        second = gate(
            pytester,
            cfg,
            "--maintcheck-change",
            "CHG-1",
            "--maintcheck-version",
            "3.2",
            "--maintcheck-baseline",
            "auto",
        )
    assert log_of(routine)["type"] == "routine"
    assert "change" not in log_of(routine)
    assert log_of(second)["change"]["baseline"]["runId"] == first.run_dir.name
    reports = str(pytester.path / "reports")
    capsys.readouterr()
    assert main(["changes", "--report-dir", reports, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["runId"] for e in entries] == [first.run_dir.name, second.run_dir.name]
    assert [e["outcome"] for e in entries] == ["passed", "refused"]
    assert entries[1]["change"] == "CHG-1"
    assert entries[1]["version"] == "3.2"
    assert entries[1]["by"]
    assert entries[1]["regressions"][0].startswith("test_health[api]: pass -> violation")
    assert main(["changes", "--report-dir", reports]) == 0
    text = capsys.readouterr().out
    assert "CHG-1  3.2  by " in text
    assert "gate refused" in text
    assert "regression: test_health[api]: pass -> violation" in text
    month = second.run_dir.name[:4] + "-" + second.run_dir.name[4:6]
    assert main(["review", "--report-dir", reports, "--month", month]) == 0
    review = (pytester.path / "reports" / f"review-{month}.html").read_text()
    assert 'id="change-log"' in review
    assert "CHG-1" in review
    assert main(["changes", "--report-dir", reports, "--month", "2026-13"]) == 4


def test_change_options_are_checked_before_any_check_runs(pytester: pytest.Pytester) -> None:
    cfg = {"version": 1, "system": "cardiology", "healthChecks": []}
    (pytester.path / "maintcheck.yaml").write_text(json.dumps(cfg))
    for args, words in (
        (["--maintcheck-version", "2.5.0"], "--maintcheck-version needs --maintcheck-change"),
        (["--maintcheck-change", "C-1", "--maintcheck-type", "routine"], "not routine"),
        (["--maintcheck-change", "C-1", "--maintcheck-baseline", "20260101T000000.000Z-abc"],
         "no such run in the history store"),
    ):  # fmt: skip
        result = pytester.runpytest_subprocess(
            "--maintcheck-config", str(pytester.path / "maintcheck.yaml"), "-p",
            "no:cacheprovider", str(Path(__file__).parents[1] / "checks" / "test_change_gate.py"),
            *args,
        )  # fmt: skip
        assert result.ret == 4, result.stderr.str()
        assert words in result.stderr.str()


# ---------------------------------------------------------------------------- rollback point


def test_the_gate_refuses_a_deploy_without_a_restored_backup_and_accepts_after_one(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: PostgresCluster,
    pg_db: SandboxDatabase,
    tmp_path: Path,
) -> None:
    from test_backups import restore_role

    seed_clinical(pg_db)
    folder = tmp_path / "backups"
    dump = pg_dump(pg_db, stamped(folder, "clinical", datetime.now(UTC) - timedelta(hours=2)))
    write_manifest(folder, dump)
    monkeypatch.setenv("PGPASSWORD", RESTORER_PASSWORD)
    with restore_role(pg_cluster) as restore_dsn:
        cfg = {
            "version": 1,
            "system": "cardiology",
            "databases": {"primary": {"dsn": pg_db.dsn}, "restore": {"dsn": restore_dsn}},
            "backups": [backup_entry(folder, database="primary")],
            "changeManagement": {"rollbackPoint": {"databases": ["primary"], "maxAge": "24h"}},
        }
        change = ["--maintcheck-change", "CHG-9", "--maintcheck-version", "4.0"]
        refused = run_checks(pytester, cfg, "test_change_gate.py", args=change)
        # a restore run now, in the gate's own run: the gate runs after it and counts it
        restore = run_checks(
            pytester, cfg, "test_weekly_backups.py", "test_change_gate.py",
            args=[*change, "-k", "backup_restore or rollback_point"],
        )  # fmt: skip
        accepted = run_checks(pytester, cfg, "test_change_gate.py", args=change)
        routine = pytester.runpytest_subprocess(
            str(Path(__file__).parents[1] / "checks" / "test_change_gate.py"),
            "--maintcheck-config", str(pytester.path / "maintcheck.yaml"), "-p", "no:cacheprovider",
        )  # fmt: skip

    gate_check = refused.checks["primary"]
    assert refused.result.ret == 1
    assert gate_check["verdict"] == "violation"
    assert "no verified rollback point of primary" in gate_check["findings"][0]["description"]
    assert "pytest -m weekly -k backup_restore" in gate_check["findings"][0]["action"]
    assert log_of(refused)["change"]["outcome"] == "refused"

    assert restore.checks["clinical-nightly"]["verdict"] == "pass", restore.result.stdout.str()
    assert restore.result.ret == 0
    assert restore.checks["primary"]["details"]["rollbackPoint"]["evidence"] == "this run"

    assert accepted.result.ret == 0, accepted.result.stdout.str()
    point = accepted.checks["primary"]["details"]["rollbackPoint"]  # from the history store
    assert point["file"] == dump.name
    assert point["backup"] == "clinical-nightly"
    assert point["evidence"].startswith("the restore test at ")
    assert log_of(accepted)["change"]["rollbackPoints"]["primary"]["file"] == dump.name
    assert f"rollback point of primary: clinical-nightly {dump.name}" in (
        accepted.result.stdout.str()
    )
    # a routine run never sees the gate
    assert routine.ret == 5
    assert "1 deselected" in routine.stdout.str()


def test_a_restored_backup_older_than_max_age_is_no_rollback_point() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    old = RestoredBackup("nightly", "clinical-old.dump", now - timedelta(hours=30),
                         now - timedelta(hours=1), "this run")  # fmt: skip
    fresh = RestoredBackup("nightly", "clinical-new.dump", now - timedelta(hours=3),
                           now - timedelta(hours=2), "this run")  # fmt: skip
    other = RestoredBackup("other-db", "x.dump", now, now, "this run")
    assert rollback_point([old, other], ["nightly"], 24 * 3600, now) == (None, old)
    assert rollback_point([old, fresh], ["nightly"], 24 * 3600, now) == (fresh, fresh)


# ---------------------------------------------------------------------------- versions


def test_the_running_version_is_read_from_a_real_health_endpoint(http_api: SandboxApi) -> None:
    http_api.version = "2.4.1+build.7"

    async def sample(pointer: str) -> Any:
        async with httpx.AsyncClient() as client:
            return await sample_endpoint(client, http_api.url("/health"), 2, 5.0, None, pointer)

    found = asyncio.run(sample("/build/version"))
    assert (found.version, found.version_problem) == ("2.4.1+build.7", None)
    missing = asyncio.run(sample("/version"))
    assert missing.version is None
    assert missing.version_problem == "the body has nothing at /version"
    assert read_version(b"<html>", "/version") == (None, "the health response is not JSON")
    assert read_version(b'{"v": {"n": 3}}', "/v")[0] is None


# ---------------------------------------------------------------------------- config revision


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=ops", "-c", "user.email=ops@example.invalid",
         *args],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.stdout.strip()


def test_the_config_revision_is_its_git_commit_in_a_repository(tmp_path: Path) -> None:
    config = tmp_path / "maintcheck.yaml"
    config.write_text("version: 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "maintcheck.yaml")
    _git(tmp_path, "commit", "-q", "-m", "config")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert config_revision(config) == f"git:{head}"
    config.write_text("version: 1\nsystem: edited\n")
    digest = hashlib.sha256(config.read_bytes()).hexdigest()
    assert config_revision(config) == f"git:{head}+modified (sha256:{digest})"


def test_the_config_revision_is_its_sha256_in_a_plain_folder(tmp_path: Path) -> None:
    config = tmp_path / "maintcheck.yaml"
    config.write_text("version: 1\n")
    digest = hashlib.sha256(b"version: 1\n").hexdigest()
    assert config_revision(config) == f"sha256:{digest}"


# ---------------------------------------------------------------------------- config


def test_change_config_is_checked_where_it_is_written(tmp_path: Path) -> None:
    from pytest_maintcheck.config import ConfigError, load_config

    path = tmp_path / "maintcheck.yaml"
    base = "version: 1\ndatabases: {primary: {dsn: 'postgresql://maint@db.internal/clinical'}}\n"
    path.write_text(
        base + "healthChecks:\n  - {service: db, type: database, endpoint: primary, "
        "versionPointer: /version}\n"
    )
    with pytest.raises(ConfigError, match=r":4: healthChecks\[0\]\.versionPointer: only an api"):
        load_config(path)
    path.write_text(base + "changeManagement: {rollbackPoint: {databases: [primary]}}\n")
    with pytest.raises(ConfigError, match="no backups entry of kind pg_dump with a restoreTest"):
        load_config(path)
    path.write_text(base + "changeManagement: {shiftFactor: 1}\n")
    with pytest.raises(ConfigError, match="shiftFactor"):
        load_config(path)
