"""The daily health suite end to end: real HTTPS API, real PostgreSQL, real folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from check_runs import run_checks
from pytest_maintcheck.sandbox import CertAuthority, PostgresCluster, SandboxApi, SandboxDatabase
from pytest_maintcheck.sandbox.postgres import free_port


@pytest.fixture
def monitor(pg_cluster: PostgresCluster, pg_db: SandboxDatabase) -> tuple[str, str]:
    """A pg_monitor-only login role for the database under test: (dsn, password)."""
    role, password = f"mon_{pg_db.name}", "mon-pass-8841"
    pg_cluster.create_role(role, password, "pg_monitor")
    with pg_db.connect() as conn:
        conn.execute(f'GRANT CONNECT ON DATABASE "{pg_db.name}" TO "{role}"')
    yield pg_cluster.dsn(pg_db.name, user=role), password
    pg_cluster.drop_role(role)


def run_suite(
    pytester: pytest.Pytester,
    health: list[dict[str, Any]],
    *args: str,
    databases: dict[str, Any] | None = None,
    env_password: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[pytest.RunResult, dict[str, Any]]:
    cfg = {"version": 1, "system": "test", "healthChecks": health, "databases": databases or {}}
    if env_password is not None and monkeypatch is not None:
        monkeypatch.setenv("PGPASSWORD", env_password)
    run = run_checks(pytester, cfg, "test_daily_health.py", args=args)
    return run.result, {"checks": run.checks, "health": run.record("health.json")}


def test_all_four_types_pass_against_real_parts(
    pytester: pytest.Pytester,
    https_api: SandboxApi,
    monitor: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn, password = monitor
    health = [
        {
            "service": "api",
            "type": "api",
            "endpoint": https_api.url("/health"),
            "samples": 4,
            "caFile": str(https_api.ca_file),
        },
        {"service": "db", "type": "database", "endpoint": "primary", "samples": 2},
        {
            "service": "files",
            "type": "storage",
            "endpoint": str(tmp_path),
            "thresholds": {"usage": 0.999, "inodeUsage": 0.999},
        },
        {
            "service": "sso",
            "type": "authentication",
            "caFile": str(https_api.ca_file),
            "endpoint": https_api.url("/.well-known/openid-configuration"),
        },
    ]
    result, out = run_suite(
        pytester,
        health,
        databases={"primary": {"dsn": dsn}},
        env_password=password,
        monkeypatch=monkeypatch,
    )
    assert result.parseoutcomes() == {"passed": 4}, result.stdout.str()
    checks = out["checks"]
    assert checks["api"]["metrics"]["samples"] == 4
    assert checks["api"]["metrics"]["errorRate"] == 0
    assert checks["api"]["metrics"]["responseTime"] > 0
    assert checks["db"]["metrics"]["samples"] == 2
    assert checks["sso"]["details"]["issuer"] == https_api.base_url
    assert checks["sso"]["details"]["jwksKeys"] == 1
    assert 0 < checks["files"]["metrics"]["usage"] < 1
    assert not list(tmp_path.iterdir())  # the write probe cleaned up after itself
    assert {h["type"] for h in out["health"]} == {"api", "database", "storage", "authentication"}
    assert {h["status"] for h in out["health"]} == {"healthy"}
    assert all(h["metrics"]["uptime"] == 1.0 for h in out["health"])


def test_failures_are_violations_and_never_stop_the_run(
    pytester: pytest.Pytester,
    https_api: SandboxApi,
    sandbox_ca: CertAuthority,
    http_api: SandboxApi,
    monitor: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn, _password = monitor
    other_ca = tmp_path / "other-ca.pem"
    from pytest_maintcheck.sandbox import make_ca

    other_ca.write_bytes(make_ca("someone else").ca_cert_pem)
    http_api.health_status = 503
    dead_port = free_port()
    health = [
        {
            "service": "refused",
            "type": "api",
            "endpoint": f"http://127.0.0.1:{dead_port}/health",
            "samples": 2,
            "timeout": "2s",
        },
        {"service": "failing", "type": "api", "endpoint": http_api.url("/health"), "samples": 2},
        {
            "service": "untrusted",
            "type": "api",
            "endpoint": https_api.url("/health"),
            "caFile": str(other_ca),
            "samples": 1,
        },
        {
            "service": "hung",
            "type": "api",
            "endpoint": https_api.url("/slow?ms=3000"),
            "caFile": str(https_api.ca_file),
            "samples": 1,
            "timeout": "500ms",
        },
        {"service": "badpass", "type": "database", "endpoint": "primary"},
        {"service": "missing", "type": "storage", "endpoint": str(tmp_path / "nope")},
        {
            "service": "ok",
            "type": "api",
            "endpoint": https_api.url("/health"),
            "caFile": str(https_api.ca_file),
            "samples": 1,
        },
    ]
    result, out = run_suite(
        pytester,
        health,
        databases={"primary": {"dsn": dsn}},
        env_password="wrong-pass-5521",
        monkeypatch=monkeypatch,
    )
    assert result.parseoutcomes() == {"failed": 6, "passed": 1}
    checks = out["checks"]
    assert "connection refused" in checks["refused"]["message"]
    assert "HTTP 503" in checks["failing"]["message"]
    assert "not trusted" in checks["untrusted"]["message"]
    assert "timed out after 0.5s" in checks["hung"]["message"]
    assert "password authentication failed" in checks["badpass"]["message"]
    assert "does not exist" in checks["missing"]["message"]
    assert all(checks[s]["verdict"] == "violation" for s in checks if s != "ok")
    assert {h["service"]: h["status"] for h in out["health"]}["refused"] == "down"
    assert "wrong-pass-5521" not in result.stdout.str() + result.stderr.str()


def test_a_service_is_selected_by_its_name(
    pytester: pytest.Pytester, https_api: SandboxApi
) -> None:
    health = [
        {
            "service": "clinical-api",
            "type": "api",
            "endpoint": https_api.url("/health"),
            "caFile": str(https_api.ca_file),
        },
        {
            "service": "other-api",
            "type": "api",
            "endpoint": https_api.url("/status/500"),
            "caFile": str(https_api.ca_file),
        },
    ]
    result, out = run_suite(pytester, health, "-k", "clinical-api")
    assert result.parseoutcomes() == {"passed": 1, "deselected": 1}
    assert set(out["checks"]) == {"clinical-api"}


def test_an_oidc_provider_without_keys_is_a_violation(
    pytester: pytest.Pytester, http_api: SandboxApi
) -> None:
    http_api.oidc_empty_jwks = True
    health = [
        {
            "service": "sso",
            "type": "authentication",
            "endpoint": http_api.url("/.well-known/openid-configuration"),
        }
    ]
    result, out = run_suite(pytester, health)
    assert result.ret == 1
    assert "JWKS holds no signing keys" in out["checks"]["sso"]["message"]


def test_an_authentication_check_whose_first_endpoint_failed_outright_still_reports(
    pytester: pytest.Pytester, http_api: SandboxApi
) -> None:
    """Review finding: the first endpoint's result may be a plain EndpointResult (its probe
    raised: here a malformed IDNA host name), which has no issuer: no AttributeError."""
    health = [
        {
            "service": "sso",
            "type": "authentication",
            "samples": 1,
            "endpoints": [
                "http://xn--/.well-known/openid-configuration",
                http_api.url("/.well-known/openid-configuration"),
            ],
        }
    ]
    result, out = run_suite(pytester, health)
    assert result.parseoutcomes() == {"degraded": 1}, result.stdout.str()  # error rate 50%
    check = out["checks"]["sso"]
    assert "AttributeError" not in result.stdout.str()
    assert check["details"]["issuer"] == http_api.base_url
    assert check["details"]["jwksKeys"] == 1
    assert "probe failed: IDNAError" in check["message"]
