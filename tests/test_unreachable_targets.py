"""Issue 8 points 11 and 12, issue 9 point 3: a target that cannot be reached.

Each check says it could not measure, why (refused, name not resolved, authentication failed,
timed out; "answered HTTP 404" is not "unreachable") and what to do to reach the target, never
the runbook action that assumes the target answered. A probe error escaping a check becomes
that finding through one error type, and the terminal summary groups the checks one cause
stopped under one line. A service that never answered still has a numeric responseTime: the
time until its samples failed or timed out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from check_runs import run_checks
from pytest_maintcheck.catalogue import CHECKS
from pytest_maintcheck.errors import Cause, MeasurementError
from pytest_maintcheck.probes.postgres import connect
from pytest_maintcheck.probes.restore import CUSTOM_FORMAT_MAGIC
from pytest_maintcheck.sandbox import SandboxApi, SandboxDatabase
from pytest_maintcheck.sandbox.postgres import free_port

pytest_plugins = ["pytester"]

WEEKLY_DB = [
    "test_dead_tuples", "test_vacuum_age", "test_invalid_indexes", "test_wraparound",
    "test_connections", "test_database_size", "test_cache_hit", "test_slow_queries",
    "test_index_usage",
]  # fmt: skip


# ---------------------------------------------------------------------------- the error type


def test_connect_names_the_cause_and_the_address(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with (
        pytest.raises(MeasurementError) as refused,
        connect(f"postgresql://maint@127.0.0.1:{port}/x", connect_timeout=2),
    ):
        pass
    assert (refused.value.cause, refused.value.where) == (Cause.REFUSED, f"127.0.0.1:{port}")
    assert refused.value.reason == f"connection refused at 127.0.0.1:{port}"
    with (
        pytest.raises(MeasurementError) as unresolved,
        connect("postgresql://maint@db.invalid:5432/x", connect_timeout=2),
    ):
        pass
    assert unresolved.value.cause is Cause.NAME_NOT_RESOLVED
    monkeypatch.setenv("PGPASSWORD", "wrong-password-7731")
    with pytest.raises(MeasurementError) as denied, connect(pg_db.dsn, connect_timeout=5):
        pass
    assert denied.value.cause is Cause.AUTHENTICATION_FAILED
    assert "wrong-password-7731" not in str(denied.value) + denied.value.action


def test_an_http_error_status_is_answered_not_unreachable() -> None:
    error = MeasurementError("HTTP 404", cause=Cause.HTTP_STATUS, where="http://x/h", status=404)
    assert error.reason == "answered HTTP 404 at http://x/h"
    assert "unreachable" not in error.reason + error.action


# ---------------------------------------------------------------------------- the plugin

OWN_CHECKS = """
import pytest
from pytest_maintcheck.errors import Cause, MeasurementError

@pytest.mark.maintcheck("dead_tuples")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_own(n, assessment):
    raise MeasurementError("cannot connect", cause=Cause.REFUSED, where="db.internal:5432",
                           target="primary")

@pytest.mark.maintcheck("wraparound")
def test_other(assessment):
    raise MeasurementError("no answer", cause=Cause.TIMED_OUT, where="sso.internal:443")
"""


def test_an_escaping_probe_error_is_could_not_measure_grouped_by_cause(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", maintcheck="version: 1\nsystem: test\n")
    pytester.makepyfile(test_own=OWN_CHECKS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.parseoutcomes() == {"failed": 4}
    summary = result.stdout.str().split("maintcheck findings")[1]
    grouped = [ln for ln in summary.splitlines() if ln.startswith("VIOLATION [")]
    assert len(grouped) == 2, summary
    assert (
        f"VIOLATION [{CHECKS['dead_tuples'].severity}] primary: connection refused at "
        "db.internal:5432 — 3 checks could not measure: test_own, test_own, test_own -> "
        "Nothing accepts connections at db.internal:5432"
    ) in summary
    # no target named by the probe or a parameter: the check's name stands in
    assert (
        "test_other: timed out at sso.internal:443 — 1 check could not measure: test_other -> "
        "sso.internal:443 did not answer in time"
    ) in summary
    assert "VACUUM" not in summary


# ---------------------------------------------------------------------------- end to end


def test_an_unreachable_database_and_services_say_why_and_how_to_reach_them(
    pytester: pytest.Pytester, http_api: SandboxApi, tmp_path: Path
) -> None:
    port = free_port()
    where = f"127.0.0.1:{port}"
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "clinical-20250301T020000Z.dump").write_bytes(CUSTOM_FORMAT_MAGIC + b"\0" * 64)
    config = {
        "version": 1,
        "system": "test",
        "databases": {"primary": {"dsn": f"postgresql://maint@{where}/clinical",
                                  "connectTimeout": "2s"}},
        "databaseMaintenance": [{"database": "primary"}],
        "securityMonitoring": {"sessions": {"database": "primary"}},
        "backups": [{"name": "nightly", "kind": "pg_dump", "location": str(dumps),
                     "pattern": "clinical-*.dump", "database": "primary",
                     "restoreTest": {"target": "primary"}}],
        "healthChecks": [
            {"service": "refused", "type": "api", "endpoint": f"http://{where}/health",
             "samples": 2},
            {"service": "missing-page", "type": "api", "endpoint": http_api.url("/no-such-page"),
             "samples": 2},
            {"service": "unresolved", "type": "api", "endpoint": "http://api.invalid/health",
             "samples": 1},
            {"service": "hung", "type": "api", "endpoint": http_api.url("/slow?ms=3000"),
             "samples": 2, "timeout": "500ms"},
        ],
    }  # fmt: skip
    run = run_checks(
        pytester,
        config,
        "test_weekly_database.py",
        "test_daily_security.py",
        "test_weekly_backups.py",
        "test_daily_health.py",
        args=["-k", "not freshness and not backup_size and not backup_storage and not rotation"],
    )
    out = run.result.stdout.str()
    by_name = run.by_name
    stopped = [f"{t}[primary]" for t in WEEKLY_DB] + ["test_sessions[primary]",
                                                      "test_backup_restore[nightly]"]  # fmt: skip
    for name in stopped:
        check = by_name[name]
        assert check["verdict"] == "violation", (name, check["message"])
        assert len(check["findings"]) == 1, (name, check["findings"])
        finding = check["findings"][0]
        assert (
            f"primary: could not measure: connection refused at {where}" in finding["description"]
        )
        assert finding["couldNotMeasure"]["cause"] == "connection refused"
        assert finding["action"].startswith(f"Nothing accepts connections at {where}")
        assert finding["action"] != CHECKS[check["check"]].action
    assert "VACUUM" not in out
    assert "Fix the backup job" not in out

    health = {c["target"]: c for c in run.check_list if c["check"] == "health"}
    assert "could not measure: connection refused at http://" in health["refused"]["message"]
    page = health["missing-page"]["findings"][0]
    assert page["couldNotMeasure"]["cause"] == "answered HTTP"
    assert f"answered HTTP 404 at {http_api.url('/no-such-page')}" in page["description"]
    assert "unreachable" not in page["description"]
    unresolved = health["unresolved"]["findings"][0]
    assert unresolved["couldNotMeasure"]["cause"] == "name not resolved"
    assert "does not resolve" in unresolved["action"]

    # the summary names each cause once, with the checks it stopped
    grouped = [ln for ln in out.splitlines() if ln.startswith("VIOLATION [") and " — " in ln]
    primary = [ln for ln in grouped if ln.startswith("VIOLATION [critical] primary:")]
    assert len(primary) == 1, grouped
    assert f"primary: connection refused at {where} — 11 checks could not measure:" in primary[0]
    assert "test_dead_tuples" in primary[0]

    # point 12: never null; the time until the samples failed or timed out
    records = {h["service"]: h for h in run.record("health.json")}
    for service in ("refused", "missing-page", "unresolved", "hung"):
        metrics = records[service]["metrics"]
        assert isinstance(metrics["responseTime"], float), (service, metrics)
        assert records[service]["responseTimeOf"] == "failures"
        assert records[service]["status"] == "down"
    assert 450 <= records["hung"]["metrics"]["responseTime"] < 3000
