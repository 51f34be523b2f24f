"""The sandbox parts do what the demo and the suite rely on."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pytest_maintcheck.sandbox import (
    CertAuthority,
    PostgresCluster,
    SandboxApi,
    SandboxDatabase,
    SandboxError,
    make_ca,
    port_is_open,
    sha1_signing_supported,
)

# -- PostgreSQL ------------------------------------------------------------------------------


def test_cluster_is_up_with_the_settings_checks_rely_on(pg_cluster: PostgresCluster) -> None:
    with pg_cluster.connect() as conn:
        row = conn.execute(
            "SELECT current_user, current_setting('shared_preload_libraries'),"
            " current_setting('max_connections'), current_setting('listen_addresses')"
        ).fetchone()
    assert row == (pg_cluster.superuser, "pg_stat_statements", "100", "127.0.0.1")
    assert pg_cluster.host == "127.0.0.1"


def test_server_never_runs_as_root(pg_cluster: PostgresCluster) -> None:
    owner = pg_cluster.data_dir.stat().st_uid
    if os.geteuid() == 0:
        assert owner != 0
    else:
        assert owner == os.geteuid()


def test_dsn_carries_no_password(pg_cluster: PostgresCluster) -> None:
    dsn = pg_cluster.dsn("postgres")
    assert pg_cluster.password not in dsn
    with psycopg.connect(dsn, password=pg_cluster.password, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_wrong_password_is_refused(pg_cluster: PostgresCluster) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg_cluster.connect(password="not-the-password").close()


def test_pg_db_is_a_fresh_database(pg_db: SandboxDatabase) -> None:
    assert pg_db.password not in pg_db.dsn
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE patients (id int)")
        assert conn.execute("SELECT current_database()").fetchone() == (pg_db.name,)


def test_create_and_drop_database_even_with_a_session_open(pg_cluster: PostgresCluster) -> None:
    db = pg_cluster.create_database("Mixed Case db")
    conn = db.connect()
    try:
        pg_cluster.drop_database(db.name)
    finally:
        conn.close()
    with pg_cluster.connect() as admin:
        gone = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.name,))
        assert gone.fetchone() is None
    pg_cluster.drop_database(db.name)  # IF EXISTS: a second drop is fine


def test_monitor_role_reads_activity_but_cannot_write(
    pg_cluster: PostgresCluster, pg_db: SandboxDatabase
) -> None:
    pg_cluster.create_role("maint_monitor", "monitor-pw", "pg_monitor")
    try:
        with pg_cluster.connect(pg_db.name, user="maint_monitor", password="monitor-pw") as conn:
            rows = conn.execute("SELECT pid, query FROM pg_stat_activity").fetchall()
            assert rows
            # pg_monitor sees other sessions' query text, which plain roles cannot
            assert conn.execute("SELECT pg_has_role('pg_monitor', 'USAGE')").fetchone() == (True,)
            # PostgreSQL 15+ no longer lets every role create in public
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE public.nope (id int)")
    finally:
        pg_cluster.drop_role("maint_monitor")


def test_stop_removes_files_and_closes_the_port() -> None:
    cluster = PostgresCluster().start()
    data_dir, port = cluster.data_dir, cluster.port
    assert port_is_open("127.0.0.1", port)
    cluster.stop()
    cluster.stop()  # idempotent
    assert not data_dir.parent.exists()
    assert not port_is_open("127.0.0.1", port)
    assert not cluster.running


def test_failed_start_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(SandboxError):
        PostgresCluster(bindir=tmp_path).start()  # no initdb there
    bad = PostgresCluster(settings={"max_connections": "not-a-number"})
    with pytest.raises(SandboxError, match="max_connections"):
        bad.start()
    assert not bad.running
    bad.stop()


# -- TLS -------------------------------------------------------------------------------------


def _verify(ca: CertAuthority, cert_pem: bytes, host: str, when: dt.datetime | None = None) -> None:
    """Verify the chain and hostname the way a strict client would."""
    store = x509.verification.Store([ca.certificate])
    builder = x509.verification.PolicyBuilder().store(store)
    if when is not None:
        builder = builder.time(when)
    subject: x509.verification.Subject
    try:
        import ipaddress

        subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = builder.build_server_verifier(subject)
    verifier.verify(x509.load_pem_x509_certificate(cert_pem), [])


def test_issued_cert_verifies_against_the_ca(sandbox_ca: CertAuthority, tmp_path: Path) -> None:
    issued = sandbox_ca.issue(["127.0.0.1", "localhost"])
    _verify(sandbox_ca, issued.cert_pem, "127.0.0.1")
    _verify(sandbox_ca, issued.cert_pem, "localhost")
    with pytest.raises(x509.verification.VerificationError):
        _verify(sandbox_ca, issued.cert_pem, "other.example")
    san = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]

    cert_path, key_path = issued.write(tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    ctx = ssl.create_default_context(cafile=str(sandbox_ca.write_ca(tmp_path)))
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_expired_cert_is_expired(sandbox_ca: CertAuthority) -> None:
    issued = sandbox_ca.issue(["localhost"], expired=True, days_valid=30)
    cert = issued.certificate
    assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
    with pytest.raises(x509.verification.VerificationError):
        _verify(sandbox_ca, issued.cert_pem, "localhost")
    _verify(sandbox_ca, issued.cert_pem, "localhost", when=cert.not_valid_after_utc)


def test_key_types_and_sizes(sandbox_ca: CertAuthority) -> None:
    weak = sandbox_ca.issue(["localhost"], key_type="rsa", key_bits=1024).certificate.public_key()
    assert isinstance(weak, rsa.RSAPublicKey)
    assert weak.key_size == 1024
    strong = sandbox_ca.issue(["localhost"]).certificate.public_key()
    assert isinstance(strong, ec.EllipticCurvePublicKey)
    assert strong.curve.name == "secp256r1"


def test_not_before_and_validity(sandbox_ca: CertAuthority) -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    cert = sandbox_ca.issue(["localhost"], not_before=start, days_valid=10).certificate
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc == start + dt.timedelta(days=10)


def test_sha1_is_issued_or_refused_clearly(sandbox_ca: CertAuthority) -> None:
    if sha1_signing_supported():
        cert = sandbox_ca.issue(["localhost"], hash_alg="sha1").certificate
        assert cert.signature_hash_algorithm is not None
        assert cert.signature_hash_algorithm.name == "sha1"
    else:
        with pytest.raises(SandboxError, match="refuses to sign with sha1"):
            sandbox_ca.issue(["localhost"], hash_alg="sha1")


# -- HTTP(S) API -----------------------------------------------------------------------------


def test_https_health_verifies_against_the_ca_file(https_api: SandboxApi) -> None:
    assert https_api.ca_file is not None
    assert https_api.base_url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(https_api.ca_file))
    r = httpx.get(https_api.url("/health"), verify=ctx, timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "build": {"version": "1.0.0"}}
    with pytest.raises(httpx.ConnectError):
        httpx.get(https_api.url("/health"), timeout=5)  # system CAs do not know our CA


def test_tls_handshake_failure_does_not_stop_the_server(https_api: SandboxApi) -> None:
    with socket.create_connection(("127.0.0.1", https_api.port), timeout=2) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")  # plaintext to a TLS port
    ctx = ssl.create_default_context(cafile=str(https_api.ca_file))
    assert httpx.get(https_api.url("/health"), verify=ctx, timeout=5).status_code == 200


def test_slow_takes_at_least_the_asked_time(http_api: SandboxApi) -> None:
    started = time.monotonic()
    r = httpx.get(http_api.url("/slow?ms=150"), timeout=5)
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.15


def test_latency_applies_to_every_route(http_api: SandboxApi) -> None:
    http_api.latency_ms = 120
    started = time.monotonic()
    assert httpx.get(http_api.url("/health"), timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.12


def test_sixty_concurrent_slow_requests_overlap(https_api: SandboxApi) -> None:
    ctx = ssl.create_default_context(cafile=str(https_api.ca_file))
    barrier = threading.Barrier(60)

    def one(_: int) -> int:
        with httpx.Client(verify=ctx, timeout=20) as client:
            barrier.wait(timeout=20)
            return client.get(https_api.url("/slow?ms=200")).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=60) as pool:
        codes = list(pool.map(one, range(60)))
    elapsed = time.monotonic() - started
    assert codes == [200] * 60
    assert elapsed < 6, f"60 x 200 ms took {elapsed:.1f}s: requests were not served concurrently"


def test_status_routes_and_failing_health(http_api: SandboxApi) -> None:
    assert httpx.get(http_api.url("/status/503"), timeout=5).status_code == 503
    assert httpx.get(http_api.url("/status/204"), timeout=5).status_code == 204
    assert httpx.get(http_api.url("/nope"), timeout=5).status_code == 404
    http_api.fail_every = 3
    codes = [httpx.get(http_api.url("/health"), timeout=5).status_code for _ in range(6)]
    assert codes == [200, 200, 503, 200, 200, 503]
    http_api.fail_every = 0
    http_api.health_status = 503
    r = httpx.get(http_api.url("/health"), timeout=5)
    assert (r.status_code, r.json()["status"]) == (503, "unavailable")


def test_hostile_body(http_api: SandboxApi) -> None:
    r = httpx.get(http_api.url("/hostile"), timeout=5)
    assert r.status_code == 200
    assert "<script>alert(1)</script>" in r.text
    assert "\x1b[31m" in r.text
    assert len(r.content) > 10_000


def test_oidc_discovery_and_jwks(http_api: SandboxApi) -> None:
    doc = httpx.get(http_api.url("/.well-known/openid-configuration"), timeout=5).json()
    assert doc["issuer"] == http_api.base_url
    assert doc["jwks_uri"] == http_api.base_url + "/jwks.json"
    keys = httpx.get(doc["jwks_uri"], timeout=5).json()["keys"]
    assert len(keys) == 1
    jwk = keys[0]
    assert {jwk["kty"], jwk["crv"], jwk["alg"]} == {"EC", "P-256", "ES256"}
    assert "d" not in jwk  # public half only
    # the JWK is the server's real key: rebuild it and compare
    nums = http_api.signing_key.public_key().public_numbers()
    from base64 import urlsafe_b64decode

    def b64(s: str) -> int:
        return int.from_bytes(urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")

    assert (b64(jwk["x"]), b64(jwk["y"])) == (nums.x, nums.y)


def test_oidc_breakage_knobs(http_api: SandboxApi) -> None:
    http_api.oidc_empty_jwks = True
    http_api.oidc_missing_issuer = True
    doc = httpx.get(http_api.url("/.well-known/openid-configuration"), timeout=5).json()
    assert "issuer" not in doc
    assert json.loads(httpx.get(doc["jwks_uri"], timeout=5).text) == {"keys": []}


def test_api_stop_is_idempotent_and_closes_the_port() -> None:
    api = SandboxApi().start()
    port = api.port
    assert port_is_open("127.0.0.1", port)
    api.stop()
    api.stop()
    assert not port_is_open("127.0.0.1", port)


def test_make_ca_is_a_ca() -> None:
    ca = make_ca("another CA")
    bc = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca
    assert b"BEGIN CERTIFICATE" in ca.ca_cert_pem
