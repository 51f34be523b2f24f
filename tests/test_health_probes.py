"""The daily health probes against real parts: HTTPS/HTTP servers, PostgreSQL, folders.

Nothing here is mocked: every error is produced by a real server, socket or filesystem.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest

from pytest_maintcheck.config import Config, HealthCheck
from pytest_maintcheck.probes.health import ServiceResult, probe_fleet
from pytest_maintcheck.probes.http import (
    DEFAULT_PER_HOST,
    ClientPool,
    EndpointResult,
    sample_endpoint,
)
from pytest_maintcheck.probes.oidc import OidcResult, probe_oidc
from pytest_maintcheck.probes.postgres import ProbeError, connect, ping
from pytest_maintcheck.probes.storage import probe_storage
from pytest_maintcheck.probes.timing import p95
from pytest_maintcheck.sandbox import (
    CertAuthority,
    SandboxApi,
    SandboxDatabase,
    free_port,
    make_ca,
)

# ---------------------------------------------------------------------------- helpers


def sample(
    url: str, *, samples: int = 1, timeout: float = 5.0, ca_file: Path | None = None
) -> EndpointResult:
    async def run() -> EndpointResult:
        pool = ClientPool()
        try:
            return await sample_endpoint(pool.get(ca_file), url, samples, timeout)
        finally:
            await pool.aclose()

    return asyncio.run(run())


def discover(url: str, *, samples: int = 1, ca_file: Path | None = None) -> OidcResult:
    async def run() -> OidcResult:
        pool = ClientPool()
        try:
            return await probe_oidc(pool.get(ca_file), url, samples, 5.0)
        finally:
            await pool.aclose()

    return asyncio.run(run())


def fleet(
    checks: Sequence[HealthCheck], concurrency: int = 32, config: Config | None = None
) -> dict[str, ServiceResult]:
    return asyncio.run(
        probe_fleet(config or Config(path=Path("maintcheck.yaml")), checks, concurrency)
    )


def api_check(service: str, *urls: str, samples: int = 1, timeout: float = 5.0) -> HealthCheck:
    return HealthCheck(service, "api", tuple(urls), samples=samples, timeout=timeout)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections into its backlog and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


# ---------------------------------------------------------------------------- api: TLS


def test_https_verified_with_the_ca_file(https_api: SandboxApi) -> None:
    result = sample(https_api.url("/health"), samples=3, ca_file=https_api.ca_file)
    assert result.errors == []
    assert len(result.latencies_ms) == 3
    assert result.error_rate == 0.0
    assert result.reachable


def test_https_without_the_private_ca_is_an_error(https_api: SandboxApi) -> None:
    """Verification is on by default: the system store does not know the sandbox CA."""
    result = sample(https_api.url("/health"), samples=2)
    assert result.latencies_ms == []
    assert result.error_rate == 1.0
    assert all(e.startswith("TLS certificate not trusted") for e in result.errors), result.errors


def test_https_with_a_different_ca_is_an_error(https_api: SandboxApi, tmp_path: Path) -> None:
    other_ca = make_ca().write_ca(tmp_path)
    result = sample(https_api.url("/health"), ca_file=other_ca)
    assert not result.reachable
    assert result.errors
    assert result.errors[0].startswith("TLS certificate not trusted")


def test_expired_certificate_from_the_trusted_ca_is_an_error(
    sandbox_ca: CertAuthority, tmp_path: Path
) -> None:
    cert, key = sandbox_ca.issue(["127.0.0.1"], expired=True).write(tmp_path)
    ca_file = sandbox_ca.write_ca(tmp_path)
    with SandboxApi(certfile=cert, keyfile=key, ca_file=ca_file) as api:
        result = sample(api.url("/health"), ca_file=ca_file)
    assert not result.reachable
    assert "expired" in result.errors[0], result.errors


# ---------------------------------------------------------------------------- api: errors


@pytest.mark.parametrize("status", [404, 500, 503])
def test_non_2xx_3xx_status_is_an_error(http_api: SandboxApi, status: int) -> None:
    result = sample(http_api.url(f"/status/{status}"), samples=2)
    assert result.errors == [f"HTTP {status}"] * 2
    assert result.error_rate == 1.0


@pytest.mark.parametrize("status", [200, 204, 302])
def test_2xx_and_3xx_are_answers(http_api: SandboxApi, status: int) -> None:
    result = sample(http_api.url(f"/status/{status}"))
    assert result.errors == []
    assert result.error_rate == 0.0


def test_timeout_is_an_error_and_returns_within_bound(http_api: SandboxApi) -> None:
    started = time.monotonic()
    result = sample(http_api.url("/slow?ms=20000"), samples=2, timeout=0.3)
    elapsed = time.monotonic() - started
    assert result.errors == ["timed out after 0.3s"] * 2
    assert result.latencies_ms == []
    # the server sleeps 20 s per request; waiting for it would take 40 s
    assert elapsed < 10, elapsed


def test_refused_connection_is_an_error() -> None:
    port = free_port()  # nothing listens there
    result = sample(f"http://127.0.0.1:{port}/health", samples=2)
    assert result.errors == ["connection refused"] * 2
    assert result.error_rate == 1.0


def test_every_other_failing_sample_is_half_the_error_rate(http_api: SandboxApi) -> None:
    http_api.fail_every = 2  # the 2nd and 4th /health answer 503
    result = sample(http_api.url("/health"), samples=4)
    assert result.errors == ["HTTP 503", "HTTP 503"]
    assert result.error_rate == 0.5
    assert len(result.latencies_ms) == 2
    assert result.p95_ms == max(result.latencies_ms)


# ---------------------------------------------------------------------------- arithmetic


def test_p95_is_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([7.0]) == 7.0
    assert p95([float(v) for v in range(1, 21)]) == 19.0  # ceil(0.95 * 20) = 19th
    assert p95([float(v) for v in range(100, 0, -1)]) == 95.0  # order of arrival irrelevant
    assert p95([1.0, 2.0, 3.0, 1000.0]) == 1000.0  # 4 samples: the worst one is the p95


def test_error_rate_counts_samples_not_endpoints() -> None:
    assert EndpointResult("u").error_rate == 1.0  # nothing sampled: nothing known to work
    one = EndpointResult("a", latencies_ms=[10.0, 20.0, 30.0], errors=[], samples=3)
    two = EndpointResult("b", latencies_ms=[40.0], errors=["HTTP 503"], samples=2)
    service = ServiceResult("svc", endpoints=[one, two])
    assert service.samples == 5
    assert service.error_rate == pytest.approx(1 / 5)
    assert service.p95_ms == 40.0
    assert service.reachable


def test_replicas_one_down_gives_a_partial_error_rate(http_api: SandboxApi) -> None:
    down = f"http://127.0.0.1:{free_port()}/health"
    results = fleet([api_check("viewer", http_api.url("/health"), down, samples=3)])
    viewer = results["viewer"]
    assert viewer.samples == 6
    assert viewer.error_rate == 0.5
    assert viewer.reachable
    assert set(viewer.errors) == {"connection refused"}


# ---------------------------------------------------------------------------- OIDC


def test_oidc_discovery_with_issuer_and_keys(https_api: SandboxApi) -> None:
    url = https_api.url("/.well-known/openid-configuration")
    result = discover(url, samples=2, ca_file=https_api.ca_file)
    assert result.problems == []
    assert result.errors == []
    assert result.issuer == https_api.base_url
    assert result.jwks_keys == 1
    assert len(result.latencies_ms) == 2


def test_oidc_empty_jwks_is_flagged(http_api: SandboxApi) -> None:
    http_api.oidc_empty_jwks = True
    result = discover(http_api.url("/.well-known/openid-configuration"))
    assert result.jwks_keys == 0
    assert result.problems == ["JWKS holds no signing keys"]


def test_oidc_missing_issuer_is_flagged(http_api: SandboxApi) -> None:
    http_api.oidc_missing_issuer = True
    result = discover(http_api.url("/.well-known/openid-configuration"))
    assert result.issuer is None
    assert "discovery document names no issuer" in result.problems


def test_oidc_discovery_that_is_not_json(http_api: SandboxApi) -> None:
    result = discover(http_api.url("/hostile"))
    assert result.problems == ["discovery document is not a JSON object"]
    assert result.reachable  # it answered; what it said is the problem


def test_oidc_jwks_that_fails(http_api: SandboxApi) -> None:
    http_api.oidc_overrides = {"jwks_uri": http_api.url("/status/500")}
    result = discover(http_api.url("/.well-known/openid-configuration"))
    assert result.problems == [f"JWKS at {http_api.url('/status/500')} failed: HTTP 500"]


# ---------------------------------------------------------------------------- database


def test_database_ping_through_psycopg(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    result = ping(pg_db.dsn, samples=2, timeout=5)
    assert result.errors == []
    assert len(result.latencies_ms) == 2
    assert result.server_version
    assert result.server_version[0].isdigit()


def test_probe_session_is_read_only(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    with connect(pg_db.dsn) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE probe_must_not_write (id int)")
    # the same role can write outside the probe's session: read-only came from the probe
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE probe_must_not_write (id int)")


@pytest.mark.parametrize("where", ["PGPASSWORD", "dsn"])
def test_bad_password_is_an_error_without_the_password(
    pg_db: SandboxDatabase, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    wrong = "Wr0ng-s3cret-" + os.urandom(4).hex()
    dsn = pg_db.dsn
    if where == "PGPASSWORD":
        monkeypatch.setenv("PGPASSWORD", wrong)
    else:
        monkeypatch.delenv("PGPASSWORD", raising=False)
        dsn = dsn.replace(f"{pg_db.user}@", f"{pg_db.user}:{wrong}@")
    result = ping(dsn, samples=1, timeout=5)
    assert result.latencies_ms == []
    assert len(result.errors) == 1
    assert "password authentication failed" in result.errors[0]
    assert wrong not in result.errors[0]
    with pytest.raises(ProbeError) as raised, connect(dsn, connect_timeout=5):
        pass
    assert wrong not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_database_that_never_answers_times_out(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "unused-password")
    started = time.monotonic()
    result = ping(f"postgresql://maint@127.0.0.1:{silent_port}/clinical", samples=1, timeout=1)
    assert time.monotonic() - started < 10
    assert result.latencies_ms == []
    assert "timeout" in result.errors[0].lower(), result.errors


# ---------------------------------------------------------------------------- storage


def test_writable_folder_passes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = probe_storage(tmp_path, samples=3)
    assert result.errors == []
    assert len(result.latencies_ms) == 3
    assert list(tmp_path.iterdir()) == []
    st = os.statvfs(tmp_path)
    assert result.usage == pytest.approx(1 - st.f_bavail / st.f_blocks, abs=0.01)
    assert result.free_bytes is not None
    assert result.free_bytes > 0
    # this test's filesystem counts inodes (ext4, xfs, tmpfs do; btrfs would report none)
    assert st.f_files > 0
    assert result.inode_usage == pytest.approx(1 - st.f_favail / st.f_files, abs=0.01)
    assert 0 <= result.usage <= 1
    assert 0 <= result.inode_usage <= 1


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    result = probe_storage(tmp_path / "never-mounted", samples=2)
    assert (
        result.errors == [f"{tmp_path / 'never-mounted'} does not exist or is not a directory"] * 2
    )
    assert result.latencies_ms == []
    assert result.usage is None


def test_file_in_place_of_the_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ecg").write_text("not a directory")
    result = probe_storage(tmp_path / "ecg")
    assert result.errors
    assert "does not exist or is not a directory" in result.errors[0]


def test_folder_that_refuses_writes_is_an_error_even_for_root() -> None:
    """chmod does not stop root; sysfs does: nobody, root included, creates a file in /sys.

    (A read-only bind mount would be the operator's case but needs mount privileges; sysfs
    refuses the create with EACCES, or EROFS where /sys is mounted read-only.)
    """
    sysfs = Path("/sys")
    assert sysfs.is_dir()
    result = probe_storage(sysfs, samples=2)
    assert result.latencies_ms == []
    assert len(result.errors) == 2
    assert all(e.startswith("/sys is not writable: ") for e in result.errors), result.errors


# ---------------------------------------------------------------------------- the fleet


def test_fleet_probes_endpoints_concurrently(http_api: SandboxApi) -> None:
    http_api.latency_ms = 200
    checks = [api_check(f"svc-{i}", http_api.url(f"/health?svc={i}"), samples=2) for i in range(20)]
    started = time.monotonic()
    results = fleet(checks)
    elapsed = time.monotonic() - started
    assert http_api.request_count == 40
    assert all(r.error_rate == 0 and len(r.latencies_ms) == 2 for r in results.values())
    # one after another would keep at most 1 request in flight and take 20 x 2 x 200 ms = 8 s;
    # one host:port gets at most DEFAULT_PER_HOST connections at once (issue 8, point 29)
    assert 4 <= http_api.peak_in_flight <= DEFAULT_PER_HOST, http_api.peak_in_flight
    assert elapsed < 4, elapsed


def test_fleet_respects_its_concurrency_limit(http_api: SandboxApi) -> None:
    http_api.latency_ms = 50
    checks = [api_check(f"svc-{i}", http_api.url("/health")) for i in range(12)]
    results = fleet(checks, concurrency=3)
    assert len(results) == 12
    assert http_api.request_count == 12
    assert 1 <= http_api.peak_in_flight <= 3


def test_hung_target_does_not_hang_the_fleet(http_api: SandboxApi) -> None:
    checks = [api_check(f"ok-{i}", http_api.url("/health"), samples=2) for i in range(5)]
    checks.append(api_check("hung", http_api.url("/slow?ms=30000"), samples=2, timeout=0.5))
    started = time.monotonic()
    results = fleet(checks)
    assert time.monotonic() - started < 10  # the hung one alone would hold us for 60 s
    assert results["hung"].errors == ["timed out after 0.5s"] * 2
    assert not results["hung"].reachable
    assert all(results[f"ok-{i}"].error_rate == 0 for i in range(5))


def test_fleet_of_every_type(
    https_api: SandboxApi,
    pg_db: SandboxDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_db.password)
    ca = https_api.ca_file
    checks = [
        HealthCheck("api", "api", (https_api.url("/health"),), samples=2, ca_file=ca),
        HealthCheck(
            "sso",
            "authentication",
            (https_api.url("/.well-known/openid-configuration"),),
            ca_file=ca,
        ),
        HealthCheck("db", "database", (pg_db.dsn,), samples=2),
        HealthCheck("files", "storage", (str(tmp_path),)),
        HealthCheck("gone", "storage", (str(tmp_path / "gone"),)),
    ]
    results = fleet(checks)
    assert {name: r.error_rate for name, r in results.items()} == {
        "api": 0.0,
        "sso": 0.0,
        "db": 0.0,
        "files": 0.0,
        "gone": 1.0,
    }
    assert results["sso"].problems == []
    assert results["db"].samples == 2
    assert results["files"].endpoints[0].usage is not None


def test_unusable_ca_file_is_an_error_of_that_check(http_api: SandboxApi, tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("this is not a certificate\n")
    checks = [
        HealthCheck("pinned", "api", (http_api.url("/health"),), samples=2, ca_file=garbage),
        api_check("plain", http_api.url("/health")),
    ]
    results = fleet(checks)
    assert results["pinned"].errors
    assert "caFile" in results["pinned"].errors[0]
    assert results["plain"].error_rate == 0


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://127.0.0.1:99999/health",  # the config accepts it: urlsplit checks no port range
        "http://127.0.0.1:1/\x1b[2Jhealth",  # httpx refuses control codes with InvalidURL
    ],
)
def test_a_malformed_url_fails_its_own_check_not_the_fleet(
    http_api: SandboxApi, bad_url: str
) -> None:
    results = fleet(
        [api_check("bad", bad_url, samples=2), api_check("ok", http_api.url("/health"))]
    )
    assert results["ok"].error_rate == 0
    assert results["bad"].samples == 2
    assert results["bad"].error_rate == 1.0
    assert all("\x1b" not in e for e in results["bad"].errors)
